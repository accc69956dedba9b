"""The Python API over a hotmess database: the same verbs, parameters and defaults as the CLI.

>>> import hotmess
>>> db = hotmess.open("hotmess-demo.db")            # doctest: +SKIP
>>> print(db.analyze(by="agent").incoherence)      # doctest: +SKIP

Each method reads what it needs from the store, calls the analyzers (pure functions over the
tables) and returns their typed result; the CLI is these calls plus rendering.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from hotmess.errors import HotmessError
from hotmess.progress import Progress
from hotmess.store.database import connect, default_path
from hotmess.store.readers import read_for_analysis, read_instructions, read_runs, read_steps
from hotmess.store.tasks import TASK_SOURCES, read_inferred_tasks, save_inferred_tasks
from hotmess.tables import Table

__all__ = ["Database", "open"]


def _check_tasks(tasks: str) -> str:
    if tasks not in TASK_SOURCES:
        raise HotmessError(f"tasks must be one of {', '.join(TASK_SOURCES)}, not {tasks!r}")
    return tasks


class Database:
    """A hotmess SQLite database, opened for reading and analysis (``hotmess.open(path)``)."""

    def __init__(self, db: str | os.PathLike[str] | sqlite3.Connection | None = None, *, create: bool = False):
        if isinstance(db, sqlite3.Connection):
            self.conn, self.path, self._owned = db, "<connection>", False
        else:
            self.path = str(db) if db is not None else default_path()
            self.conn, self._owned = connect(Path(self.path), create=create), True

    def close(self) -> None:
        if self._owned:
            self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"hotmess.Database({self.path!r})"

    # ------------------------------------------------------------------ reading

    def runs(self, *, task: str | None = None, agent: str | None = None, tasks: str = "recorded") -> Table:
        """The runs (one row per run, ``hotmess runs``), with the task inferred from each request
        as ``inferred_task_id`` (None until ``infer_tasks``)."""
        from hotmess.store.readers import DERIVED_RUN_COLUMNS
        from hotmess.tables import RUN_COLUMNS

        return read_runs(self.conn, task_id=task, agent=agent, tasks=_check_tasks(tasks),
                         columns=[*RUN_COLUMNS, *DERIVED_RUN_COLUMNS])

    def agents(self, *, task: str | None = None, tasks: str = "recorded") -> list[str]:
        """The agents that have runs (of ``task``, when given), sorted."""
        names = read_runs(self.conn, task_id=task, tasks=_check_tasks(tasks), columns=["agent"])["agent"]
        return sorted({str(a) for a in names if a is not None})

    def steps(self, run_id: str) -> Table:
        """One run's steps, in order (``hotmess show``)."""
        return read_steps(self.conn, run_ids=[run_id])

    def load(
        self, *, task: str | None = None, tasks: str = "recorded", with_steps: bool = True,
        progress: Progress | None = None,
    ) -> tuple[Table, Table | None]:
        """The runs and their tool steps as the analyzers read them; an error if there are none."""
        runs, steps = read_for_analysis(self.conn, task_id=task, with_steps=with_steps,
                                        tasks=_check_tasks(tasks), progress=progress)
        if len(runs) == 0:
            raise HotmessError(
                f"no runs in {self.path}" + (f" for task {task!r}" if task else "")
                + " (record some with @hotmess.trace, `hotmess import`, or `hotmess demo`)"
            )
        return runs, steps

    # ------------------------------------------------------------------ analysis

    def analyze(
        self,
        *,
        outcome: str | Callable[[Any], Hashable] = "exact",
        decomposition: str = "brier",
        by: str | None = None,
        task: str | None = None,
        tasks: str = "recorded",
        correction: bool = True,
        interval: str = "jackknife",
        incomplete: str = "drop",
        n_boot: int = 2000,
        seed: int = 0,
        embed: Callable[[list[str]], Any] | None = None,
        progress: Progress | None = None,
    ):
        """Bias, variance, incoherence, failure consistency, pass^k (``hotmess analyze``); see
        :func:`hotmess.analyzers.analyze` for the parameters and the formulas."""
        from hotmess.analyzers import analyze

        needs_steps = outcome == "actions" or decomposition == "checks"
        runs, steps = self.load(task=task, tasks=tasks, with_steps=needs_steps, progress=progress)
        if progress is not None:
            progress("analyzing", 0, None)
        try:
            return analyze(runs, steps, outcome=outcome, decomposition=decomposition, by=by,
                           correction=correction, interval=interval, incomplete=incomplete,
                           n_boot=n_boot, seed=seed, embed=embed, progress=progress)
        except ValueError as exc:  # the user's input (an unknown --by): one line naming the database
            raise HotmessError(f"{self.path}: {exc}") from exc

    # ------------------------------------------------------------------ tasks

    def infer_tasks(
        self,
        *,
        threshold: float | None = None,
        method: str = "text",
        embed: Callable[[list[str]], Any] | None = None,
        mask: bool = True,
    ):
        """Group runs whose request is the same task in other words, and store the grouping
        beside the recorded task ids (``hotmess tasks infer``); returns the
        :class:`hotmess.analyzers.tasks.TaskInference`. Replaces an earlier inference."""
        from hotmess.analyzers.tasks import DEFAULT_THRESHOLD, infer_tasks

        run_ids = list(read_runs(self.conn, columns=["run_id"])["run_id"])
        if not run_ids:
            raise HotmessError(f"no runs in {self.path} to infer tasks for")
        requests = read_instructions(self.conn)
        try:
            result = infer_tasks([requests.get(r) for r in run_ids],
                                 threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                                 method=method, embed=embed, mask=mask)
        except ValueError as exc:
            raise HotmessError(str(exc)) from exc
        save_inferred_tasks(self.conn, run_ids, list(result.labels), result.tasks,
                            method=result.method + ("" if mask else ", numbers kept"),
                            threshold=result.threshold)
        return result

    def tasks(self) -> list[dict[str, Any]]:
        """The inferred tasks (``hotmess tasks``): id, runs, distinct requests, an example
        request, tightness, method and threshold; empty before ``infer_tasks``."""
        return read_inferred_tasks(self.conn)


def open(db: str | os.PathLike[str] | sqlite3.Connection | None = None) -> Database:  # noqa: A001
    """Open a hotmess database for reading and analysis: a path (default ``$HOTMESS_DB`` or
    ``./hotmess.db``; it must exist) or an open ``sqlite3`` connection."""
    return Database(db)

