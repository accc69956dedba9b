"""``hotmess import otlp FILES --to parquet DIR``: OTLP JSON to the Parquet layout, no database.

:func:`import_otlp_parquet` streams the files through
:func:`hotmess.integrations.otlp_stream.stream_otlp_json` (bounded batches of closed traces;
its docstring says when a trace is written and the limits) and writes each batch as one part
of the layout of :mod:`hotmess.parquet` (``DIR/runs/day=.../part-NNNNN.parquet`` and the same
under ``steps``), so the directory is what ``hotmess import otlp`` into SQLite followed by
``hotmess export parquet`` writes, and the engine (``--engine dask --source DIR``) reads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hotmess.errors import HotmessError
from hotmess.integrations.otlp_stream import BATCH_SPANS, OtlpStream, stream_otlp_json
from hotmess.parquet import check_empty, write_parquet_part
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS, Table

__all__ = ["import_otlp_parquet"]


def _table(rows: list[dict[str, Any]], columns: dict[str, str]) -> Table:
    return Table({name: [r.get(name) for r in rows] for name in columns}, columns)


def import_otlp_parquet(
    files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    task_attr: str = "hotmess.task.id",
    agent: str | None = None,
    redact: bool = True,
    max_chars: int = 8192,
    batch_spans: int = BATCH_SPANS,
) -> dict[str, Any]:
    """Stream OTLP JSON ``files`` into the Parquet directory ``out`` (the module docstring);
    returns the counts of :class:`~hotmess.integrations.otlp_stream.OtlpStream` with ``out``,
    the days and the files written. ``out/runs`` and ``out/steps`` must hold no files."""

    paths = [files] if isinstance(files, str | os.PathLike) else list(files)
    for path in paths:
        if not os.path.exists(path):
            raise HotmessError(f"{path}: no such file")
    if agent is not None and not agent.strip():
        raise HotmessError("agent must not be empty")
    check_empty(Path(out))
    stats = OtlpStream()
    days: set[str] = set()
    n_files = 0
    for part, batch in enumerate(stream_otlp_json(paths, stats, task_attr=task_attr, agent=agent, redact=redact,
                                                  max_chars=max_chars, batch_spans=batch_spans)):
        written, count = write_parquet_part(_table(batch.runs, RUN_COLUMNS), _table(batch.steps, STEP_COLUMNS),
                                            out, part)
        days.update(written)
        n_files += count
    if stats.runs == 0:
        raise HotmessError(f"{', '.join(map(str, paths))}: no agent trace to import"
                           + (f" ({stats.skipped} records skipped: {stats.errors[0]})" if stats.errors else ""))
    return {"out": os.fspath(out), **stats.to_dict(), "days": sorted(days), "files": n_files}
