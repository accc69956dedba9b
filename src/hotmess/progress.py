"""Progress callbacks: how importers, readers and analyzers say how far along they are.

A callback is a plain function ``progress(unit, done, total)``: ``done`` of ``total`` units
(``"bytes"``, ``"records"``, ``"traces"``, ``"steps read"``, ``"tasks"``, ...) are finished;
``total`` is None when unknown. Counts are absolute, so a caller may report as seldom as it likes
and a receiver never has to add up. Nothing here knows about terminals: the CLI turns these
calls into a bar, and callers pass ``progress=None`` (the default everywhere) when nobody
watches, which costs nothing: the helpers below then hand back the iterable untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

#: ``progress(unit, done, total)``: ``done`` of ``total`` units finished (``total`` None: unknown).
Progress = Callable[[str, int, "int | None"], None]

T = TypeVar("T")

#: Items between two reports of :func:`counted`.
EVERY = 1024
#: Bytes between two reports of :func:`reading`.
EVERY_BYTES = 1 << 20


def counted(
    items: Iterable[T], progress: Progress | None, unit: str, total: int | None, every: int = EVERY
) -> Iterable[T]:
    """``items`` as they are when ``progress`` is None; else the same items, reporting
    ``progress(unit, done, total)`` at the start, every ``every`` items, and at the end."""
    if progress is None:
        return items
    return _counted(items, progress, unit, total, every)


def _counted(items: Iterable[T], progress: Progress, unit: str, total: int | None, every: int) -> Iterator[T]:
    done = 0
    progress(unit, 0, total)
    for item in items:
        yield item
        done += 1
        if done % every == 0:
            progress(unit, done, total)
    progress(unit, done, total)


def reading(lines: IO[bytes], progress: Progress | None, total: int | None) -> Iterable[bytes]:
    """The lines of a binary file as they are when ``progress`` is None; else the same lines,
    reporting ``progress("bytes", position, total)`` about every MiB, ``position`` being that
    of the file on disk (for a gzip file its compressed position, so it ends at the file size)."""
    if progress is None:
        return lines
    return _reading(lines, progress, total)


def _reading(lines: IO[bytes], progress: Progress, total: int | None) -> Iterator[bytes]:
    raw: Any = getattr(lines, "fileobj", None) or lines  # gzip.GzipFile reads from .fileobj
    progress("bytes", 0, total)
    pending = 0
    for line in lines:
        yield line
        pending += len(line)
        if pending >= EVERY_BYTES:
            pending = 0
            progress("bytes", raw.tell(), total)
    if total is not None:
        progress("bytes", total, total)
