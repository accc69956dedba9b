"""Writing imported runs: all of an import in one transaction, existing runs left as they are
(:func:`insert_runs`), and the pieces an importer that merges uses inside its own transaction."""

from __future__ import annotations

import hashlib
import operator
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotmess.errors import StoreError
from hotmess.progress import Progress, counted
from hotmess.store.database import transaction
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS

# ON CONFLICT DO NOTHING skips only duplicates (a run repeated in the file); unlike OR IGNORE it
# does not silently drop a row that breaks NOT NULL, which must fail the import instead.
_RUN_INSERT = f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))}) ON CONFLICT DO NOTHING"
_STEP_INSERT = f"INSERT INTO steps ({', '.join(STEP_COLUMNS)}) VALUES ({', '.join('?' * len(STEP_COLUMNS))}) ON CONFLICT DO NOTHING"


_RUN_VALUES = operator.itemgetter(*RUN_COLUMNS)
_STEP_VALUES = operator.itemgetter(*STEP_COLUMNS)


def _tuples(rows: Sequence[dict[str, Any]], columns: Any, values: operator.itemgetter) -> list[tuple]:
    """Each row's values in column order; a column a row lacks is NULL."""
    try:
        return list(map(values, rows))  # rows with every column: one C call each
    except KeyError:
        return [tuple(r.get(c) for c in columns) for r in rows]


@dataclass(frozen=True)
class ImportResult:
    path: str
    source: str
    runs: int  # runs in the file(s)
    new: int  # runs not already in the database
    steps: int  # steps written
    merged: int = 0  # runs already stored that new spans completed: rebuilt and replaced

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "source": self.source, "runs": self.runs, "new": self.new,
                "already_stored": self.runs - self.new - self.merged, "steps": self.steps}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def insert_runs(
    conn: sqlite3.Connection,
    runs: Sequence[dict[str, Any]],
    steps: Sequence[dict[str, Any]],
    *,
    source: str,
    path: str | Path,
    spans: Sequence[tuple] = (),
    progress: Progress | None = None,
) -> ImportResult:
    """Insert runs (and the steps and spans of the new ones) in one transaction.

    A run already stored (same ``run_id``) is left untouched with its steps, so importing a
    file twice adds nothing; an error anywhere rolls the whole file back. ``progress``
    (:mod:`hotmess.progress`) is told the steps and spans stored as they go in.
    """
    with import_transaction(conn, path):
        existing = stored_runs(conn, [r["run_id"] for r in runs])
        new_runs = [r for r in runs if r["run_id"] not in existing]
        new_ids = {r["run_id"] for r in new_runs}
        new_steps = [s for s in steps if s["run_id"] in new_ids]
        new_spans = [s for s in spans if s[0] in new_ids] if spans else []
        write_rows(conn, new_runs, new_steps, new_spans, progress=progress)
        log_import(conn, source, path, len(runs), len(new_runs))
    return ImportResult(str(path), source, len(runs), len(new_runs), len(new_steps))


@contextmanager
def import_transaction(conn: sqlite3.Connection, path: str | Path) -> Iterator[None]:
    """One transaction for a whole import: an error anywhere rolls it all back, and a row that
    breaks the schema (NOT NULL, CHECK) is a :class:`StoreError` naming the import."""
    try:
        with transaction(conn):
            yield
    except sqlite3.IntegrityError as exc:
        raise StoreError(f"{path}: nothing imported, a run or step breaks the schema: {exc}") from exc


# The helpers below run inside the caller's transaction (:func:`hotmess.store.database.transaction`).


def _chunks(ids: Sequence[str], size: int = 900) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def stored_runs(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, str]:
    """The source of each of ``ids`` already stored as a run (``trace``, ``otlp``, ``tau-bench``...)."""
    found: dict[str, str] = {}
    for chunk in _chunks(ids):
        found.update(conn.execute(
            f"SELECT run_id, source FROM runs WHERE run_id IN ({', '.join('?' * len(chunk))})", chunk))
    return found


def stored_spans(conn: sqlite3.Connection, trace_ids: Sequence[str]) -> dict[str, list[tuple]]:
    """The ``spans`` rows of each trace, as stored (see :func:`hotmess.store.rows.record_from_row`)."""
    found: dict[str, list[tuple]] = {t: [] for t in trace_ids}
    for chunk in _chunks(trace_ids):
        for row in conn.execute(
            f"SELECT * FROM spans WHERE trace_id IN ({', '.join('?' * len(chunk))}) ORDER BY trace_id, span_id", chunk,
        ):
            found[row[0]].append(row)
    return found


def delete_runs(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    """Remove runs with their steps and spans (a run's spans are its trace's: trace id = run id)."""
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        for table, key in (("steps", "run_id"), ("spans", "trace_id"), ("runs", "run_id")):
            conn.execute(f"DELETE FROM {table} WHERE {key} IN ({marks})", chunk)


def write_rows(
    conn: sqlite3.Connection,
    runs: Sequence[dict[str, Any]],
    steps: Sequence[dict[str, Any]],
    spans: Sequence[tuple] = (),
    *,
    progress: Progress | None = None,
) -> None:
    """Insert runs, steps and ``spans`` rows that are not stored yet (a duplicate is skipped)."""
    from hotmess.store.rows import SPAN_INSERT

    conn.executemany(_RUN_INSERT, _tuples(runs, RUN_COLUMNS, _RUN_VALUES))
    conn.executemany(_STEP_INSERT, counted(_tuples(steps, STEP_COLUMNS, _STEP_VALUES), progress, "steps stored", len(steps)))
    if spans:
        conn.executemany(SPAN_INSERT, counted(spans, progress, "spans stored", len(spans)))


def log_import(conn: sqlite3.Connection, source: str, path: str | Path, n_runs: int, n_new: int) -> None:
    """One row of the ``imports`` table: what file (and its sha256) was imported when."""
    conn.execute(
        "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?)",
        (source, str(path), file_sha256(path), time.time_ns(), n_runs, n_new),
    )
