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

from hotmess.errors import AnalysisError, HotmessError
from hotmess.progress import Progress
from hotmess.store.database import connect, default_path
from hotmess.store.readers import read_for_analysis, read_instructions, read_runs, read_steps
from hotmess.store.tasks import TASK_SOURCES, read_inferred_tasks, save_inferred_tasks
from hotmess.tables import Table

from .platforms import PlatformImports
from .results import ExportReport, ImportReport, ReportResult, RunDetail, RunsOverTime
from .sources import check_exists

__all__ = ["Database", "ExportReport", "ImportReport", "ReportResult", "RunDetail", "RunsOverTime", "open"]

#: A run's status, as stored.
RUN_STATUSES = ("ok", "error", "incomplete")


def _check_tasks(tasks: str) -> str:
    if tasks not in TASK_SOURCES:
        raise HotmessError(f"tasks must be one of {', '.join(TASK_SOURCES)}, not {tasks!r}")
    return tasks


class Database(PlatformImports):
    """A hotmess SQLite database, opened for reading and analysis (``hotmess.open(path)``); its
    imports from tracing platforms are :class:`~hotmess.api.platforms.PlatformImports`'."""

    def __init__(self, db: str | os.PathLike[str] | sqlite3.Connection | None = None, *, create: bool = False):
        self._conn: sqlite3.Connection | None = None
        self._create = create
        if isinstance(db, sqlite3.Connection):
            self._conn, self.path, self._owned = db, "<connection>", False
        else:
            self.path = str(db) if db is not None else default_path()
            self._owned = True
            if not create:  # an existing database: opened (and checked) now
                self._conn = connect(Path(self.path), create=False)

    @property
    def conn(self) -> sqlite3.Connection:
        """The SQLite connection. A database opened with ``create=True`` is created on first
        use, so an import whose files cannot be read leaves no empty database behind."""
        if self._conn is None:
            self._conn = connect(Path(self.path), create=self._create)
        return self._conn

    def close(self) -> None:
        if self._owned and self._conn is not None:
            self._conn.close()
            self._conn = None

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

    def outcome_clusters(self, task: str) -> dict[str, str]:
        """Each run of ``task`` with the key of its exact-outcome cluster (``analyze``'s default
        ``outcome="exact"`` key: :func:`hotmess.analyzers.outcomes.exact_key`)."""
        from hotmess.analyzers.outcomes import exact_key

        rows = self.conn.execute("SELECT run_id, outcome FROM runs WHERE task_id = ?", (task,))
        return {run_id: exact_key(outcome) for run_id, outcome in rows}

    def agents(self, *, task: str | None = None, tasks: str = "recorded") -> list[str]:
        """The agents that have runs (of ``task``, when given), sorted."""
        names = read_runs(self.conn, task_id=task, tasks=_check_tasks(tasks), columns=["agent"])["agent"]
        return sorted({str(a) for a in names if a is not None})

    def steps(self, run_id: str) -> Table:
        """One run's steps, in order."""
        return read_steps(self.conn, run_ids=[run_id])

    def run(self, run_id: str) -> RunDetail:
        """One run and its steps as a tree (``hotmess show``); ``run_id`` may be a unique prefix."""
        from hotmess.store.readers import find_run

        full = find_run(self.conn, run_id)
        if full is None:
            raise HotmessError(f"no run {run_id!r} in {self.path} (or the prefix is ambiguous); `hotmess runs` lists them")
        run = read_runs(self.conn, run_ids=[full]).to_records()[0]
        steps = read_steps(self.conn, run_ids=[full]).to_records()
        return RunDetail(run=run, steps=steps)

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
        except AnalysisError as exc:  # the data or a parameter (an unknown by=): one line naming the database
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
        except AnalysisError as exc:
            raise HotmessError(str(exc)) from exc
        save_inferred_tasks(self.conn, run_ids, list(result.labels), result.tasks,
                            method=result.method + ("" if mask else ", numbers kept"),
                            threshold=result.threshold)
        return result

    def tasks(self) -> list[dict[str, Any]]:
        """The inferred tasks (``hotmess tasks``): id, runs, distinct requests, an example
        request, tightness, method and threshold; empty before ``infer_tasks``."""
        return read_inferred_tasks(self.conn)


    # ------------------------------------------------------------------ export

    def export_parquet(self, out: str | os.PathLike[str]) -> ExportReport:
        """All runs and steps as Parquet files under ``out``, partitioned by day
        (``hotmess export parquet``; the layout is in :mod:`hotmess.parquet`)."""
        from hotmess.parquet import write_parquet

        written = write_parquet(read_runs(self.conn), read_steps(self.conn), out)
        return ExportReport(**written)

    # ------------------------------------------------------------------ over time

    def horizon(
        self,
        *,
        length: str = "steps",
        groups: int | None = None,
        by: str | None = None,
        outcome: str = "exact",
        decomposition: str = "brier",
        correction: bool = True,
        n_boot: int = 2000,
        seed: int = 0,
        tasks: str = "recorded",
        progress: Progress | None = None,
    ):
        """Incoherence against run length (``hotmess horizon``): per length group, the slope per
        doubling with its interval, failure diversity, and each task's longer runs against its
        shorter ones; with ``by``, a :class:`~hotmess.analyzers.groups.GroupResults` of one per
        group. See :func:`hotmess.analyzers.horizon.horizon`."""
        from hotmess.analyzers.groups import per_group
        from hotmess.analyzers.horizon import horizon

        runs, steps = self.load(tasks=tasks, with_steps=outcome == "actions", progress=progress)
        _analyzing(progress)

        def one(r: Table, s: Table | None):
            return horizon(r, s, length=length, groups=groups, outcome=outcome, decomposition=decomposition,
                           correction=correction, n_boot=n_boot, seed=seed, progress=progress)

        return self._checked(lambda: one(runs, steps) if by is None else per_group(runs, steps, by, one))

    def goals(
        self,
        *,
        align: str = "index",
        method: str = "exact",
        task: str | None = None,
        tasks: str = "recorded",
        skip_read_only: bool = False,
        drift_threshold: float = 0.1,
        drift_from: str = "first",
        correction: bool = True,
        embed: Callable[[list[str]], Any] | None = None,
        progress: Progress | None = None,
    ):
        """Spread of intermediate goals across runs at each step, and each run's drift from its
        first goal or instruction (``hotmess goals``). See
        :func:`hotmess.analyzers.goals.goal_coherence`."""
        from hotmess.analyzers.goals import goal_coherence, no_goals_message
        from hotmess.analyzers.outcomes import DEFAULT_READ_ONLY
        from hotmess.store.readers import read_goal_steps

        runs = read_runs(self.conn, task_id=task, columns=_GOAL_RUN_COLUMNS, tasks=_check_tasks(tasks),
                         progress=progress)
        if len(runs) == 0:
            raise HotmessError(self._no_runs(task, tasks))
        steps = read_goal_steps(self.conn, task_id=task, tasks=tasks, progress=progress)
        instructions = read_instructions(self.conn, task_id=task, tasks=tasks) if drift_from == "instruction" else None
        _analyzing(progress)
        result = self._checked(lambda: goal_coherence(
            runs, steps, align=align, method=method, read_only=DEFAULT_READ_ONLY if skip_read_only else None,
            drift_threshold=drift_threshold, correction=correction, drift_from=drift_from,
            instructions=instructions, embed=embed, progress=progress,
        ))
        if result.n_goals == 0:
            raise HotmessError(no_goals_message(self.path, task, skip_read_only))
        return result

    def drift(
        self,
        *,
        window: str = "1d",
        by: str | None = None,
        alpha: float = 0.05,
        baseline: int = 0,
        n_perm: int = 1000,
        outcome: str = "exact",
        seed: int = 0,
        tasks: str = "recorded",
        progress: Progress | None = None,
    ):
        """Behaviour per window of runs and the change points where it changed (``hotmess
        drift``). See :func:`hotmess.analyzers.drift.drift`."""
        from hotmess.analyzers.drift import drift

        runs, steps = self.load(tasks=tasks, with_steps=outcome == "actions", progress=progress)
        _analyzing(progress)
        return self._checked(lambda: drift(runs, steps, window=window, by=by, baseline=baseline, alpha=alpha,
                                           n_perm=n_perm, outcome=outcome, seed=seed, progress=progress))

    def activity(self, *, unit: str | None = None) -> RunsOverTime:
        """Runs started per hour, day or week by status (``hotmess activity``); ``unit`` None
        chooses from the span of the runs' start times."""
        import datetime as dt

        from hotmess.store.readers import TIME_BUCKETS, read_runs_over_time

        if unit is not None and unit not in TIME_BUCKETS:
            raise HotmessError(f"unit must be one of {', '.join(TIME_BUCKETS)}, not {unit!r}")
        unit, counts = read_runs_over_time(self.conn, unit)
        if not counts:
            return RunsOverTime(unit, ())
        first, last = min(counts), max(counts)
        # a few stray timestamps far apart: only the buckets that have runs, not thousands of empty ones
        keys = sorted(counts) if last - first > 400 else range(first, last + 1)
        width = TIME_BUCKETS[unit]
        return RunsOverTime(unit, tuple(
            {"start": dt.datetime.fromtimestamp(k * width / 1e9, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
             **{s: counts.get(k, {}).get(s, 0) for s in RUN_STATUSES}} for k in keys))

    # ------------------------------------------------------------------ the report

    def report(
        self,
        out: str | os.PathLike[str] = "report.html",
        *,
        outcome: str = "exact",
        decomposition: str = "brier",
        window: str | None = None,
        max_runs: int = 500,
        n_boot: int = 2000,
        seed: int = 0,
        tasks: str = "recorded",
        progress: Callable[[], None] | None = None,
    ) -> ReportResult:
        """Write the self-contained HTML report (``hotmess report``): verdict, bias and variance
        per task, clusters, run length, goals, drift and the runs' step trees. ``window`` is the
        drift window (default: the shortest of 1h, 6h, 1d, 1w that makes at most 30 windows of
        typically 30 or more runs); ``max_runs`` step trees are listed (0: all). ``progress`` is
        called once per stage (:data:`hotmess.report.collect.STAGES` of them)."""
        import numpy as np

        from hotmess.report import build_report, collect
        from hotmess.tables import STEP_COLUMNS

        advance = progress or (lambda: None)
        runs, _ = self.load(tasks=tasks, with_steps=False)
        steps = read_steps(self.conn, columns=[c for c in STEP_COLUMNS if c != "output"])
        advance()
        sections = self._checked(lambda: collect.sections(
            runs, steps, outcome=outcome, decomposition=decomposition, window=window,
            n_boot=n_boot, seed=seed, advance=advance))
        shown = runs.take(np.arange(len(runs) if max_runs == 0 else min(max_runs, len(runs))))
        run_records = shown.to_records()
        tree_steps: dict[str, list[dict[str, Any]]] = {}
        for s in read_steps(self.conn, run_ids=[r["run_id"] for r in run_records]).to_records():
            tree_steps.setdefault(s["run_id"], []).append(s)
        advance()
        context = collect.task_context(runs, read_instructions(self.conn, tasks=tasks))
        page = build_report({
            "database": self.path, **sections, "runs": run_records, "runs_total": len(runs),
            "steps": tree_steps, "task_context": context,
        })
        advance()
        Path(out).write_text(page, encoding="utf-8")
        advance()
        return ReportResult(
            path=str(out), bytes=len(page.encode("utf-8")), runs=len(runs), tasks=sections["analysis"]["n_tasks"],
            agents=sections["agents"], sections=collect.included(sections),
            step_trees={"shown": len(run_records), "total": len(runs)},
        )

    # ------------------------------------------------------------------ imports

    def import_taubench(
        self,
        file: str | os.PathLike[str],
        *,
        agent: str | None = None,
        redact: bool = True,
        skip_invalid: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import a tau-bench results file (``hotmess import tau-bench``): one run per task trial.
        See :func:`hotmess.integrations.taubench.parse_taubench`."""
        from hotmess.integrations.taubench import parse_taubench
        from hotmess.store.writer import insert_runs

        check_exists(file)
        batch = parse_taubench(file, agent=agent, redact=redact, skip_invalid=skip_invalid, progress=progress)
        result = insert_runs(self.conn, batch.runs, batch.steps, source="tau-bench", path=file, progress=progress)
        return ImportReport(result=result, batch=batch, extra={
            "flagged": batch.flagged, "skipped": [str(e) for e in batch.skipped]})

    def import_otlp(
        self,
        files: str | os.PathLike[str] | list[str | os.PathLike[str]],
        *,
        task_attr: str = "hotmess.task.id",
        agent: str | None = None,
        redact: bool = True,
        max_chars: int = 8192,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import OTLP JSON trace files (``hotmess import otlp``) in one transaction: one run per
        trace, traces stored before merged with their new spans. See
        :func:`hotmess.integrations.otlp_json.parse_otlp_json`."""
        from hotmess.integrations.otlp_json import insert_otlp, parse_otlp_json

        paths = [files] if isinstance(files, str | os.PathLike) else list(files)
        if agent is not None and not agent.strip():
            raise HotmessError("agent must not be empty")
        for file in paths:
            check_exists(file)
        batch = parse_otlp_json(paths, task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars,
                                progress=progress)
        result = insert_otlp(self.conn, batch, progress=progress)
        details = batch.to_dict()
        return ImportReport(result=result, batch=batch, extra={
            "spans": details["spans"], "skipped": batch.skipped, "errors": details["errors"][:5],
            "ignored_traces": result.ignored_traces, "hashed_task_ids": batch.hashed_task_ids,
            "rootless": batch.rootless, "files": list(result.files),
        })

    def import_inspect(
        self,
        paths: str | os.PathLike[str] | list[str | os.PathLike[str]],
        *,
        scorer: str | None = None,
        threshold: float = 1.0,
        agent: str | None = None,
        redact: bool = True,
        max_chars: int = 8192,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import Inspect AI eval logs (``hotmess import inspect``): ``.eval`` or ``.json`` files,
        or directories of them, in one transaction; one run per sample and epoch. See
        :func:`hotmess.integrations.inspect_ai.parse_inspect` for the mapping."""
        from hotmess.integrations.inspect_ai import insert_inspect, parse_inspect

        batch = parse_inspect(paths, scorer=scorer, threshold=threshold, agent=agent, redact=redact,
                              max_chars=max_chars, progress=progress)
        result = insert_inspect(self.conn, batch, progress=progress)
        details = batch.to_dict()
        return ImportReport(result=result, batch=batch, extra={
            "files": details["files"], "flagged": details["flagged"], "skipped": details["skipped"],
            "duplicates": details["duplicates"], "notes": batch.notes(),
        })

    # ------------------------------------------------------------------ helpers

    def _checked(self, compute: Callable[[], Any]) -> Any:
        """``compute()``, its :class:`AnalysisError` (the data or a parameter cannot give the
        figure asked for) as one line naming the database. Other errors are bugs and propagate."""
        try:
            return compute()
        except AnalysisError as exc:
            raise HotmessError(f"{self.path}: {exc}") from exc

    def _no_runs(self, task: str | None, tasks: str) -> str:
        if task is None:
            return f"no runs in {self.path} (record some with @hotmess.trace, `hotmess import`, or `hotmess demo`)"
        from hotmess.analyzers.common import natural_key

        known = sorted({str(t) for t in read_runs(self.conn, columns=("task_id",), tasks=tasks)["task_id"]},
                       key=natural_key)
        shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
        return f"no task {task!r} in {self.path}" + (f" (its {len(known)} tasks: {shown})" if known else " (it has no runs)")


_GOAL_RUN_COLUMNS = ("run_id", "task_id", "status", "reference")


def _analyzing(progress: Progress | None) -> None:
    if progress is not None:
        progress("analyzing", 0, None)


def open(db: str | os.PathLike[str] | sqlite3.Connection | None = None, *, create: bool = False) -> Database:  # noqa: A001
    """Open a hotmess database for reading, analysis and imports: a path (default
    ``$HOTMESS_DB`` or ``./hotmess.db``; it must exist unless ``create``) or an open ``sqlite3``
    connection."""
    return Database(db, create=create)
