"""Inferred tasks in the store: written beside the recorded task ids (never over them), replaced
whole by each ``hotmess tasks infer``, and read back as a run's task when asked for
(``tasks="inferred"`` in :mod:`hotmess.store.readers`)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from hotmess.store.database import transaction

#: Where a run's task comes from: the id it was recorded with, or the one inferred from its request.
TASK_SOURCES = ("recorded", "inferred")

#: SQL for a run's inferred task id (``runs`` in scope as ``runs``), None when not inferred.
INFERRED_TASK_SQL = "(SELECT i.task_id FROM inferred_tasks i WHERE i.run_id = runs.run_id)"


def task_expression(tasks: str, table: str = "runs") -> str:
    """The SQL expression of a run's task id: recorded, or inferred (runs without an inferred
    task, those without a request, keep their recorded id)."""
    if tasks not in TASK_SOURCES:
        raise ValueError(f"tasks must be one of {', '.join(TASK_SOURCES)}, got {tasks!r}")
    if tasks == "recorded":
        return f"{table}.task_id"
    inferred = INFERRED_TASK_SQL.replace("runs.run_id", f"{table}.run_id")
    return f"COALESCE({inferred}, {table}.task_id)"


def save_inferred_tasks(
    conn: sqlite3.Connection, run_ids: Sequence[str], labels: Sequence[str | None],
    groups: Sequence[Any], *, method: str, threshold: float,
) -> int:
    """Replace every stored inference with this one, in one transaction; returns the runs assigned.

    ``groups`` are :class:`hotmess.analyzers.tasks.InferredTask` (or objects with the same fields).
    """
    now = time.time_ns()
    assigned = [(r, t) for r, t in zip(run_ids, labels, strict=True) if t is not None]
    with transaction(conn):
        conn.execute("DELETE FROM inferred_tasks")
        conn.execute("DELETE FROM inferred_task_groups")
        conn.executemany("INSERT INTO inferred_tasks (run_id, task_id) VALUES (?, ?)", assigned)
        conn.executemany(
            "INSERT INTO inferred_task_groups VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(g.task_id, g.n_runs, g.n_distinct, g.example, g.tightness, method, float(threshold), now)
             for g in groups],
        )
    return len(assigned)


def read_inferred_tasks(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The stored inferred tasks, most runs first: id, runs, distinct requests, an example
    request, tightness, and how they were inferred (method, threshold, when)."""
    columns = ("task_id", "n_runs", "n_distinct", "example", "tightness", "method", "threshold", "inferred_ns")
    rows = conn.execute(
        f"SELECT {', '.join(columns)} FROM inferred_task_groups ORDER BY n_runs DESC, task_id"
    ).fetchall()
    return [dict(zip(columns, row, strict=True)) for row in rows]
