"""Writing imported runs: all of a file in one transaction, existing runs left as they are."""

from __future__ import annotations

import hashlib
import operator
import sqlite3
import time
from collections.abc import Sequence
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
    runs: int  # runs in the file
    new: int  # runs not already in the database
    steps: int  # steps written

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "source": self.source, "runs": self.runs, "new": self.new,
                "already_stored": self.runs - self.new, "steps": self.steps}


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
    try:
        return _insert(conn, runs, steps, source=source, path=path, spans=spans, progress=progress)
    except sqlite3.IntegrityError as exc:
        raise StoreError(f"{path}: nothing imported, a run or step breaks the schema: {exc}") from exc


def _insert(conn, runs, steps, *, source, path, spans, progress) -> ImportResult:  # noqa: ANN001
    from hotmess.store.rows import SPAN_INSERT

    with transaction(conn):
        ids = [r["run_id"] for r in runs]
        existing: set[str] = set()
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            existing.update(
                row[0]
                for row in conn.execute(f"SELECT run_id FROM runs WHERE run_id IN ({', '.join('?' * len(chunk))})", chunk)
            )
        new_runs = [r for r in runs if r["run_id"] not in existing]
        new_ids = {r["run_id"] for r in new_runs}
        new_steps = [s for s in steps if s["run_id"] in new_ids]
        conn.executemany(_RUN_INSERT, _tuples(new_runs, RUN_COLUMNS, _RUN_VALUES))
        conn.executemany(_STEP_INSERT, counted(
            _tuples(new_steps, STEP_COLUMNS, _STEP_VALUES), progress, "steps stored", len(new_steps)))
        if spans:
            new_spans = [s for s in spans if s[0] in new_ids]
            conn.executemany(SPAN_INSERT, counted(new_spans, progress, "spans stored", len(new_spans)))
        conn.execute(
            "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?)",
            (source, str(path), file_sha256(path), time.time_ns(), len(runs), len(new_runs)),
        )
    return ImportResult(str(path), source, len(runs), len(new_runs), len(new_steps))
