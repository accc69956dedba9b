"""Drift per task: what :func:`hotmess.analyzers.drift.drift` needs of each task's runs.

Both functions take the runs of whole tasks (one task, or many) and give what those runs
contribute, so they run where the runs are (on the workers of an engine) and the driver puts
the pieces together (:func:`hotmess.analyzers.drift.drift_combine`):

- :func:`drift_runs`: per complete run, in the order given, a few values: its run id, task id,
  start time, outcome key within its task (the mapper's key; ``outcome="text"`` clusters each
  task's outcomes among that task's runs only; a crash's key is its exception type), verdict
  and group under ``by``; and how many runs never ended. The driver needs these per run: it
  cuts the windows, numbers the (task, cluster) pairs, scans for change points and compares
  windows by shuffling runs.
- :func:`span_figures`: the task figures (:func:`~hotmess.analyzers.analysis.task_figures`)
  of the runs of each span of windows a :class:`SpanPlan` names: a window, or the windows on
  one side of a change point. The driver combines each span's figures over all tasks
  (:func:`~hotmess.analyzers.analysis.combine`): that is ``analyze`` of the span's runs, its
  success rate, tasks and incoherence. A span's runs are taken in the order the series puts
  them in (time windows: by window, then as given; count windows: start time, then run id),
  so a task's text clusters within a span are those ``analyze`` of the span finds.

The local :func:`~hotmess.analyzers.drift.drift` is ``drift_combine`` of one
``drift_runs`` of all the runs, whose spans are one ``span_figures`` of all the runs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.progress import Progress
from hotmess.tables import Table

from .analysis import task_figures
from .columns import NO_GROUP, column, group_values
from .group import TaskFigures
from .inputs import AnalysisOptions
from .windows import outcome_keys, run_verdicts

__all__ = ["DriftRuns", "SpanPlan", "drift_runs", "span_figures"]


@dataclass(frozen=True, eq=False)
class DriftRuns:
    """The complete runs of some tasks as drift sees them (one entry per run, in their order),
    the runs that never ended, and, when ``by`` is neither a runs column nor an attribute of
    any of these runs, the error that says so (``by_error``)."""

    run_id: np.ndarray
    task_id: np.ndarray
    start_ns: np.ndarray
    key: np.ndarray
    verdict: np.ndarray
    group: np.ndarray | None
    n_incomplete: int
    by_error: str | None = None

    def __len__(self) -> int:
        return len(self.run_id)

    @staticmethod
    def concat(parts: Sequence[DriftRuns]) -> DriftRuns:
        """The runs of ``parts`` one after the other; ``by_error`` when every part with runs has one."""
        def joined(name: str, dtype: object) -> np.ndarray:
            arrays = [getattr(p, name) for p in parts]
            return np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)

        with_runs = [p for p in parts if len(p)]
        errors = [p.by_error for p in with_runs]
        group = None
        if parts and parts[0].group is not None:
            group = joined("group", object)
        return DriftRuns(
            run_id=joined("run_id", object), task_id=joined("task_id", object),
            start_ns=joined("start_ns", np.int64), key=joined("key", object),
            verdict=joined("verdict", np.float64), group=group,
            n_incomplete=sum(p.n_incomplete for p in parts),
            by_error=errors[0] if errors and all(errors) else None,
        )


@dataclass(frozen=True)
class SpanPlan:
    """The spans whose figures the driver needs: windows cut ``kind`` (``"time"`` or
    ``"runs"``) of ``size``; per group, each window's start (time: its slot, ``start_ns //
    size``; runs: its first run's ``(start_ns, run id)``); and the spans as (group, first
    window, end window), the windows ``first ≤ i < end`` of that group."""

    kind: str
    size: int
    by: str | None
    starts: dict[str, tuple[object, ...]]
    spans: tuple[tuple[str, int, int], ...]


def _complete(runs: Table) -> tuple[Table, int]:
    complete = np.flatnonzero(column(runs, "status") != "incomplete")
    return runs.take(complete), len(runs) - len(complete)


def _run_ids(runs: Table) -> np.ndarray:
    if "run_id" in runs:
        return runs["run_id"]
    return np.arange(len(runs)).astype(str).astype(object)


def _task_ids(runs: Table) -> np.ndarray:
    return np.array(["<none>" if t is None else str(t) for t in runs["task_id"]], dtype=object)


def _groups(runs: Table, by: str | None) -> tuple[np.ndarray | None, str | None]:
    """Each run's group under ``by`` (None without), and the error when ``by`` names nothing
    these runs have (the driver raises it if no run anywhere has it)."""
    if by is None:
        return None, None
    try:
        return group_values(runs, by, column(runs, "attributes")), None
    except AnalysisError as exc:
        return np.full(len(runs), NO_GROUP, dtype=object), str(exc)


def drift_runs(runs: Table, steps: Table | None, options: AnalysisOptions, *, by: str | None = None,
               progress: Progress | None = None) -> DriftRuns:
    """The :class:`DriftRuns` of the runs of whole tasks (the module docstring); ``steps``
    are the tool steps, for ``outcome="actions"``; ``progress`` is told the tasks clustered."""
    runs, n_incomplete = _complete(runs)
    task_ids = _task_ids(runs)
    keys = outcome_keys(runs, steps, task_ids, options.outcome, options.read_only,
                        options.distance_threshold, progress)
    group, by_error = _groups(runs, by)
    return DriftRuns(
        run_id=np.asarray(_run_ids(runs), dtype=object), task_id=task_ids,
        start_ns=runs["start_ns"].astype(np.int64), key=keys,
        verdict=run_verdicts(runs, options.outcome), group=group,
        n_incomplete=n_incomplete, by_error=by_error,
    )


def _series_order(start_ns: np.ndarray, run_ids: np.ndarray, kind: str, size: int) -> np.ndarray:
    """The runs' order in their series: time windows by slot, ties as given; count windows by
    start time, then run id (:func:`~hotmess.analyzers.windows.window_index`)."""
    if kind == "time":
        return np.argsort(start_ns // size, kind="stable")
    return np.lexsort((run_ids.astype(str), start_ns))


def _windows_of(start_ns: np.ndarray, run_ids: np.ndarray, starts: tuple[object, ...], kind: str,
                size: int) -> np.ndarray:
    """The index of the window each run is in, among its group's window starts."""
    if kind == "time":
        return np.searchsorted(np.asarray(starts, dtype=np.int64), start_ns // size)
    bounds = list(starts)
    return np.fromiter((bisect_right(bounds, (s, r)) - 1 for s, r in  # type: ignore[arg-type]
                        zip(start_ns.tolist(), run_ids.astype(str).tolist(), strict=True)),
                       dtype=np.int64, count=len(start_ns))


def span_figures(runs: Table, steps: Table | None, plan: SpanPlan,
                 options: AnalysisOptions) -> dict[int, TaskFigures]:
    """Per span of ``plan`` (by its index) that has some of these runs, the task figures of
    those runs (the module docstring)."""
    runs, _ = _complete(runs)
    run_ids = np.asarray(_run_ids(runs), dtype=object)
    start_ns = runs["start_ns"].astype(np.int64)
    group, _ = _groups(runs, plan.by)
    index = {name: g for g, name in enumerate(plan.starts)}
    names = ["all"] * len(runs) if group is None else group.tolist()
    code = np.fromiter((index.get(name, -1) for name in names), dtype=np.int64, count=len(runs))
    width = max((len(w) for w in plan.starts.values()), default=0) + 1
    # each run's place: its group and window (one number), then its position in the series,
    # so that every span is one slice of the runs sorted by place
    place = np.full(len(runs), -1, dtype=np.int64)
    by_code = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[by_code], np.arange(len(plan.starts) + 1))
    for g, starts in enumerate(plan.starts.values()):
        rows = by_code[bounds[g]:bounds[g + 1]]
        if len(rows):
            place[rows] = g * width + _windows_of(start_ns[rows], run_ids[rows], starts, plan.kind, plan.size)
    position = np.empty(len(runs), dtype=np.int64)
    position[_series_order(start_ns, run_ids, plan.kind, plan.size)] = np.arange(len(runs))
    ranked = np.lexsort((position, place))
    placed = place[ranked]
    out: dict[int, TaskFigures] = {}
    for s, (name, lo, hi) in enumerate(plan.spans):
        g = index[name]
        first, end = np.searchsorted(placed, [g * width + lo, g * width + hi])
        if end > first:
            out[s] = task_figures(runs.take(ranked[first:end]), steps, options)
    return out
