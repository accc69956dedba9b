"""The columnar form of the store: runs and steps as Parquet files, partitioned by day.

Layout of a directory ``DIR`` (what ``hotmess export parquet --out DIR`` writes and what the
distributed engine, :mod:`hotmess.engine`, reads)::

    DIR/runs/day=YYYY-MM-DD/part-00000.parquet   one row per run, the RUN_COLUMNS
    DIR/steps/day=YYYY-MM-DD/part-00000.parquet  one row per step, the STEP_COLUMNS

``day`` is the UTC date of the run's ``start_ns`` (a step is filed under its run's day, so a
day's runs and their steps are read together; a run that has not started, ``start_ns == 0``,
is under 1970-01-01). Each file holds exactly the columns of
:data:`hotmess.tables.RUN_COLUMNS` / :data:`hotmess.tables.STEP_COLUMNS`, in that order, with
the Arrow types of :data:`ARROW_TYPES` (text as ``string``, counts and nanosecond times as
``int64``, ``success`` and ``score`` as ``float64``; a missing value is null). The ``day``
is only in the directory name (Hive partitioning), not a column. Data that never touched
SQLite can be written in this layout by anything that writes Parquet.

pyarrow is an optional dependency (``pip install 'hotmess[parquet]'``), imported only here and
only when a function is called.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hotmess.errors import HotmessError
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS, Table

__all__ = [
    "ARROW_TYPES",
    "arrow_schema",
    "check_empty",
    "day_of",
    "read_parquet",
    "read_parquet_runs",
    "read_parquet_steps",
    "write_parquet",
    "write_parquet_part",
]

#: The Arrow type of each numpy dtype of the tables.
ARROW_TYPES = {"O": "string", "int64": "int64", "float64": "float64"}


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the install
        raise HotmessError(
            "Parquet needs pyarrow: pip install 'hotmess[parquet]'"
        ) from None
    return pyarrow


def arrow_schema(columns: Mapping[str, str]) -> Any:
    """The Arrow schema of a table with these columns (``RUN_COLUMNS`` or ``STEP_COLUMNS``)."""
    pa = _pyarrow()
    return pa.schema([(name, getattr(pa, ARROW_TYPES[dtype])()) for name, dtype in columns.items()])


def day_of(start_ns: int) -> str:
    """The UTC date of a time in nanoseconds since the epoch, as ``YYYY-MM-DD``."""
    seconds = int(start_ns) // 1_000_000_000
    return _dt.datetime.fromtimestamp(max(seconds, 0), _dt.UTC).strftime("%Y-%m-%d")


def _arrow_table(table: Table, columns: Mapping[str, str], index: np.ndarray) -> Any:
    pa = _pyarrow()
    arrays = []
    for name, dtype in columns.items():
        values = table[name][index]
        if dtype == "O":
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
        elif dtype == "float64":
            arrays.append(pa.array(values.astype(np.float64), pa.float64(), from_pandas=True))
        else:
            arrays.append(pa.array(values.astype(np.int64), pa.int64()))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(columns))


def check_empty(out: Path) -> None:
    """HotmessError unless ``out/runs`` and ``out/steps`` are missing or empty."""
    for part in ("runs", "steps"):
        folder = out / part
        if folder.exists() and any(folder.iterdir()):
            raise HotmessError(
                f"{folder} is not empty: export into a new directory (or remove it first)"
            )


def write_parquet(runs: Table, steps: Table, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write ``runs`` and ``steps`` (all their ``RUN_COLUMNS`` / ``STEP_COLUMNS``) under ``out``
    in the layout of the module docstring; returns what was written (runs, steps, days, files).
    ``out/runs`` and ``out/steps`` must not hold files already."""
    out = Path(out)
    check_empty(out)
    days, files = write_parquet_part(runs, steps, out, 0)
    return {
        "out": str(out),
        "runs": len(runs),
        "steps": len(steps),
        "days": days,
        "files": files,
    }


def write_parquet_part(runs: Table, steps: Table, out: str | os.PathLike[str], part: int) -> tuple[list[str], int]:
    """Write one part of a directory written in parts (a stream of batches): the rows of
    ``runs`` and of their ``steps`` as ``part-NNNNN.parquet`` (``NNNNN`` = ``part``) in each
    day's folder (a step in its run's day); returns the days written and the files. Each
    part is a file of its own, so parts can be added while nothing reads them."""
    pq = _pyarrow().parquet
    out = Path(out)
    run_days = np.array([day_of(s) for s in runs["start_ns"]], dtype=object)
    day_of_run = dict(zip(runs["run_id"].tolist(), run_days.tolist(), strict=True))
    step_days = np.array(
        [day_of_run.get(r, "1970-01-01") for r in steps["run_id"]], dtype=object
    )
    files = 0
    for name, table, columns, days in (
        ("runs", runs, RUN_COLUMNS, run_days),
        ("steps", steps, STEP_COLUMNS, step_days),
    ):
        (out / name).mkdir(parents=True, exist_ok=True)
        for day in sorted(set(days.tolist())):
            folder = out / name / f"day={day}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(_arrow_table(table, columns, np.flatnonzero(days == day)),
                           folder / f"part-{part:05d}.parquet")
            files += 1
    return sorted(set(run_days.tolist())), files


def _files(source: Path, part: str) -> list[Path]:
    folder = source / part
    if not folder.is_dir():
        raise HotmessError(f"{source}: no {part}/ directory (write one with hotmess export parquet)")
    return sorted(folder.glob("day=*/*.parquet"))


def _table(arrow: Any, columns: Mapping[str, str], names: Iterable[str]) -> Table:
    data = {}
    for name in names:
        values = arrow.column(name).to_pylist()
        dtype = columns[name]
        if dtype == "float64":
            values = [math.nan if v is None else v for v in values]
        data[name] = values
    return Table(data, {n: columns[n] for n in data})


def _read(source: Path, part: str, columns: Mapping[str, str], names: list[str],
          filters: Any = None) -> Any:
    pa = _pyarrow()
    pq = pa.parquet
    tables = [pq.read_table(f, columns=names, filters=filters) for f in _files(source, part)]
    if not tables:
        return pa.Table.from_arrays(
            [pa.array([], arrow_schema(columns).field(n).type) for n in names], names=names
        )
    return pa.concat_tables(tables)


def _sorted(arrow: Any, keys: list[str]) -> Any:
    """Rows ordered by ``keys`` ascending, nulls first (as SQLite orders them); text by its
    UTF-8 bytes (SQLite's BINARY collation)."""
    try:
        return arrow.sort_by([(k, "ascending", "at_start") for k in keys])
    except (TypeError, ValueError):  # pyarrow before 25: one null placement for all keys
        return arrow.sort_by([(k, "ascending") for k in keys], null_placement="at_start")


def read_parquet_runs(source: str | os.PathLike[str], *, columns: Iterable[str] | None = None,
                      task_id: str | None = None) -> Table:
    """The runs table of a Parquet directory, in the order of the SQLite reader
    (:func:`hotmess.store.readers.read_runs`: by task, then start time, then instance, then
    run id; missing values first)."""
    names = list(columns or RUN_COLUMNS)
    keys = ["task_id", "start_ns", "instance", "run_id"]
    read = list(dict.fromkeys(names + keys))
    filters = None if task_id is None else [("task_id", "==", task_id)]
    arrow = _read(Path(source), "runs", RUN_COLUMNS, read, filters)
    return _table(_sorted(arrow, keys), RUN_COLUMNS, names)


def read_parquet_steps(source: str | os.PathLike[str], *, columns: Iterable[str] | None = None,
                       kinds: Iterable[str] | None = None,
                       run_ids: Iterable[str] | None = None) -> Table:
    """The steps table of a Parquet directory, in the order of the SQLite reader (by run, then
    step order, then start time); ``kinds`` and ``run_ids`` filter."""
    names = list(columns or STEP_COLUMNS)
    keys = ["run_id", "step_index", "start_ns"]
    read = list(dict.fromkeys(names + keys))
    filters = []
    if kinds is not None:
        filters.append(("kind", "in", list(kinds)))
    if run_ids is not None:
        filters.append(("run_id", "in", list(run_ids)))
    arrow = _read(Path(source), "steps", STEP_COLUMNS, read, filters or None)
    return _table(_sorted(arrow, keys), STEP_COLUMNS, names)


def read_parquet(source: str | os.PathLike[str]) -> tuple[Table, Table]:
    """All runs and all steps of a Parquet directory (:func:`write_parquet`'s layout), as the
    same :class:`~hotmess.tables.Table`\\ s the SQLite readers return."""
    return read_parquet_runs(source), read_parquet_steps(source)
