"""What an importer may read: regular files only, each record within a size cap.

A FIFO or a device (``/dev/zero``) passed as a log would hang the import or grow without end,
and a small gzip file can hold one line of gigabytes; so importers check the path first and
read lines (and whole files) through the caps here. The caps are settable with the
environment variables ``HOTMESS_MAX_RECORD_BYTES`` (one line or record, default 256 MiB) and
``HOTMESS_MAX_FILE_BYTES`` (a file read whole, after decompression, default 4 GiB).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from hotmess.errors import InputError

__all__ = ["LongLine", "capped_lines", "max_file_bytes", "max_record_bytes", "read_capped", "regular_file"]

_DEFAULT_RECORD = 256 * 2**20
_DEFAULT_FILE = 4 * 2**30


def _limit(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(name, None, f"must be a number of bytes, not {raw!r}") from None
    if value < 1:
        raise InputError(name, None, f"must be at least 1 byte, not {value}")
    return value


def max_record_bytes() -> int:
    return _limit("HOTMESS_MAX_RECORD_BYTES", _DEFAULT_RECORD)


def max_file_bytes() -> int:
    return _limit("HOTMESS_MAX_FILE_BYTES", _DEFAULT_FILE)


def regular_file(path: str | os.PathLike[str]) -> Path:
    """``path`` if it is a regular file (a symlink to one is fine); else an InputError naming
    it: a FIFO, socket or device would block the import or never end."""
    where = str(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InputError(where, None, f"cannot read the file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InputError(where, None, "a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise InputError(where, None, f"{kind}, not a regular file: hotmess imports files (write the stream to one first)")
    return Path(path)


class LongLine(bytes):
    """A line cut at the record cap: the part read, so the caller can name and skip it."""

    size: int = 0


def capped_lines(f: IO[bytes], limit: int | None = None) -> Iterator[bytes]:
    """The lines of a binary file, none longer than ``limit`` bytes held in memory: a longer
    line is yielded as a :class:`LongLine` (its first ``limit`` bytes, ``.size`` its length)
    and the rest of it is read past without keeping it."""
    limit = max_record_bytes() if limit is None else limit
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        size = len(line)
        while True:  # skip the rest of the line, a chunk at a time
            rest = f.readline(1 << 20)
            size += len(rest)
            if not rest or rest.endswith(b"\n"):
                break
        long = LongLine(line[:limit])
        long.size = size
        yield long


def read_capped(f: IO[bytes], where: str, limit: int | None = None) -> bytes:
    """All of ``f``, or an InputError when it holds more than ``limit`` bytes (decompressed)."""
    limit = max_file_bytes() if limit is None else limit
    data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(where, None, f"more than {limit:,} bytes to read whole (HOTMESS_MAX_FILE_BYTES)")
    return data
