"""The checks an import makes of what it was given before it reads or creates anything."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hotmess.errors import HotmessError


def check_source(file: Any, server: str | None, what: str, agent: str | None, since: Any, resume: bool) -> None:
    """A platform import reads a file or a server, not both; resume continues a server's import."""
    if agent is not None and not agent.strip():
        raise HotmessError("agent must not be empty")
    if (file is None) == (server is None):
        raise HotmessError(f"give a file or a {what}, not both" if file is not None else f"give a file or a {what}")
    if resume and (since is not None or server is None):
        raise HotmessError(f"resume continues reading a {what}; it takes no since, and no file")
    if file is not None:
        check_exists(file)


def check_exists(file: str | os.PathLike[str]) -> None:
    if not Path(file).exists():
        raise HotmessError(f"{file}: no such file")
