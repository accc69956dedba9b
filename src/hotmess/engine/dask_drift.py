"""``drift`` on Dask distributed: each task's runs on the workers, the series on the driver.

Two passes over the runs grouped by task (each one ``compute``, as in :mod:`.dask_engine`):

1. on the workers, :func:`~hotmess.analyzers.drift_tasks.drift_runs` of each task: per
   complete run its id, start time, outcome key within its task (``outcome="text"`` clusters
   each task's outcomes there), verdict and group under ``by``. These few values per run come
   back to the driver, which puts the tasks in the order of the SQLite readers (by task id),
   cuts the windows, numbers the outcome clusters, runs the change-point scans and the window
   tests: they shuffle runs, so they need each run's code;
2. on the workers, :func:`~hotmess.analyzers.drift_tasks.span_figures` of each task: the task
   figures of its runs in each window and on each side of each change point (the plan of
   window starts and spans is sent from the driver); the driver combines them per span
   (:func:`~hotmess.analyzers.analysis.combine`) into each window's success, tasks and
   incoherence, and each change's success before and after.

:func:`~hotmess.analyzers.drift.drift_combine` on the driver is the one the local
:func:`~hotmess.analyzers.drift.drift` calls: the same :class:`~hotmess.analyzers.drift.Drift`,
the same JSON, the same permutation p-values for the same seed.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

from hotmess.analyzers.drift import drift_combine, drift_options, parse_window
from hotmess.analyzers.drift_tasks import DriftRuns, SpanPlan, drift_runs, span_figures
from hotmess.analyzers.inputs import AnalysisOptions
from hotmess.errors import AnalysisError, HotmessError
from hotmess.progress import Progress
from hotmess.tables import Table

from .dask_engine import checked_source, per_task_records, reader_order, refuse_inferred, session

__all__ = ["drift"]

#: The outcome mappers the engine runs (a callable would have to be sent to the workers).
OUTCOMES = ("exact", "actions", "text")


def drift(
    source: str | os.PathLike[str],
    *,
    scheduler: str | None = None,
    client: Any = None,
    window: str = "1d",
    by: str | None = None,
    baseline: int = 0,
    alpha: float = 0.05,
    n_perm: int = 1000,
    outcome: str = "exact",
    seed: int = 0,
    tasks: str = "recorded",
    n_workers: int | None = None,
    processes: bool = True,
    progress: Progress | None = None,
) -> Any:
    """The drift of the Parquet directory ``source`` on Dask (the module docstring), equal to
    ``hotmess.open(db).drift(...)`` of the database it was exported from, with the same
    parameters (:func:`hotmess.analyzers.drift.drift`). ``client``, ``scheduler``,
    ``n_workers``, ``processes`` and ``progress`` are as in :func:`hotmess.engine.dask_engine.analyze`
    (each pass in its unit)."""
    refuse_inferred(tasks)
    if outcome not in OUTCOMES:
        raise HotmessError(f"outcome must be one of {', '.join(OUTCOMES)} on the engine, not {outcome!r}")
    try:
        parse_window(window)
        options = drift_options(outcome, seed)
    except AnalysisError as exc:
        raise HotmessError(str(exc)) from exc
    source = checked_source(source)
    with_steps = outcome == "actions"
    with session(scheduler, client, n_workers, processes) as client:
        keyed = per_task_records(source, None, client, None, True, None,
                                 partial(_keyed_runs, options=options, by=by), with_steps=with_steps,
                                 progress=progress, unit="Dask tasks: runs")
        records = [record for _, record in sorted(keyed, key=lambda item: item[0])]
        if sum(len(r) + r.n_incomplete for r in records) == 0:
            raise HotmessError(f"no runs in {source}")

        def figures_of(plan: SpanPlan) -> list[Any]:
            return per_task_records(source, None, client, None, True, None,
                                    partial(span_figures, plan=plan, options=options), with_steps=with_steps,
                                    progress=progress, unit="Dask tasks: windows")

        try:
            return drift_combine(records, figures_of, options, window=window, by=by, baseline=baseline,
                                 alpha=alpha, n_perm=n_perm, seed=seed)
        except AnalysisError as exc:
            raise HotmessError(f"{source}: {exc}") from exc


def _keyed_runs(runs: Table, steps: Table | None, options: AnalysisOptions,
                by: str | None) -> tuple[tuple[int, str], DriftRuns]:
    """On a worker: one task's :func:`drift_runs`, with the key that puts the tasks in the
    readers' order (``ORDER BY task_id``: a run without a task first, then by id)."""
    return reader_order(runs["task_id"][0] if len(runs) else None), drift_runs(runs, steps, options, by=by)
