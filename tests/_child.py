"""A child Python process for the tests that SIGKILL an agent: started without the parent's
HOTMESS_DB, killed for certain, and reaped whatever the test asserts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def python_child(
    script: Path, *args: object, stderr: bool = False, unbuffered: bool = False,
) -> Iterator[subprocess.Popen]:
    """``python script args...`` with text pipes (stdout, and stderr if asked); killed and its
    pipes closed on the way out, so a failing test leaves no process behind."""
    env = {k: v for k, v in os.environ.items() if k != "HOTMESS_DB"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr else None,
        text=True,
        env=env,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def sigkill(proc: subprocess.Popen) -> None:
    """SIGKILL the child and check that this is what ended it."""
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
