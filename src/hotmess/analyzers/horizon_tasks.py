"""Horizon per task: what :func:`hotmess.analyzers.horizon.horizon` needs of each task's runs.

``horizon_figures(runs, steps, options, length=..., seed=...)`` takes the runs of whole tasks
(one task, or many) and returns their :class:`HorizonFigures`: the task figures of all their
complete runs, of each task's short half and of its long half
(:func:`hotmess.analyzers.analysis.task_figures`, so every decomposition formula is the one of
``analyze``), and per task the sum and count of run lengths. The figures of tasks computed
apart (on the workers of an engine) put together by :func:`~hotmess.analyzers.horizon.horizon_combine`
are the horizon of all of them: the local :func:`~hotmess.analyzers.horizon.horizon` is
``horizon_combine([horizon_figures(runs, steps, ...)], ...)``.

The median split's ties are broken per task: the runs of task ``t`` (in the order given) draw
their tie-breaks from ``numpy.random.default_rng([seed, crc32(t)])``, so a task's halves depend
on its own runs only, whichever other tasks are analyzed with it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.tables import Table

from .analysis import task_figures
from .columns import column, split_runs
from .group import TaskFigures
from .inputs import AnalysisOptions
from .median_split import MIN_SPLIT_RUNS

__all__ = ["LENGTHS", "HorizonFigures", "grouped_horizon_figures", "horizon_figures", "run_lengths", "tie_breaks"]

#: Ways to measure a run's length and the runs columns they read.
LENGTHS: dict[str, tuple[str, ...]] = {
    "steps": ("n_steps",),
    "tool_calls": ("n_tool_calls",),
    "tokens": ("input_tokens", "output_tokens"),
}


@dataclass(frozen=True, eq=False)
class HorizonFigures:
    """The horizon's figures of a set of whole tasks: ``whole``, ``short`` and ``long`` task
    figures, per task id the sum of its complete runs' lengths and their count, the tasks that
    were split at their median, the runs in each half and the incomplete runs left out."""

    whole: TaskFigures
    short: TaskFigures
    long: TaskFigures
    length_sum: dict[str, float]
    length_count: dict[str, int]
    kept: tuple[str, ...]
    n_short_runs: int
    n_long_runs: int
    n_runs: int
    n_incomplete: int


def run_lengths(runs: Table, length: str = "steps") -> np.ndarray:
    """Each run's length as float64: ``n_steps``, ``n_tool_calls`` or input + output tokens."""
    if length not in LENGTHS:
        raise AnalysisError(f"length must be one of {', '.join(LENGTHS)}, got {length!r}")
    total = np.zeros(len(runs), dtype=np.float64)
    for name in LENGTHS[length]:
        if name not in runs:
            raise AnalysisError(
                f"length={length!r} needs the runs column {name!r}; columns are "
                f"{', '.join(runs.columns)}"
            )
        values = runs[name]
        if values.dtype == object:
            values = np.array([np.nan if v is None else float(v) for v in values])
        total += values.astype(np.float64, copy=False)
    return total


def tie_breaks(task_id: str, n: int, seed: int | None) -> np.ndarray:
    """The tie-breaks of one task's ``n`` runs: ``default_rng([seed, crc32(task_id)]).random(n)``
    (fresh entropy when ``seed`` is None)."""
    if seed is None:
        return np.random.default_rng().random(n)
    key = zlib.crc32(task_id.encode("utf-8", "backslashreplace"))
    return np.random.default_rng([int(seed), key]).random(n)


def _halves(task_ids: np.ndarray, lengths: np.ndarray, seed: int | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(short, long, kept task ids): each task's runs ranked by length, ties in random order,
    the lower n // 2 short and the upper n // 2 long, for tasks whose runs differ in length
    and give each half ``MIN_SPLIT_RUNS`` runs."""
    short = np.zeros(len(task_ids), dtype=bool)
    long = np.zeros(len(task_ids), dtype=bool)
    kept: list[str] = []
    for t in sorted(set(task_ids.tolist())):
        rows = np.flatnonzero(task_ids == t)
        n, half = len(rows), len(rows) // 2
        own = lengths[rows]
        if half < MIN_SPLIT_RUNS or not own.max() > own.min():
            continue
        order = rows[np.lexsort((tie_breaks(t, n, seed), own))]
        short[order[:half]] = True
        long[order[n - half:]] = True
        kept.append(t)
    return short, long, kept


def horizon_figures(runs: Table, steps: Table | None, options: AnalysisOptions, *,
                    length: str = "steps", seed: int | None = 0) -> HorizonFigures:
    """The :class:`HorizonFigures` of the runs of whole tasks (the module docstring).

    Raises AnalysisError for an unknown ``length`` or runs without a length count."""
    lengths_all = run_lengths(runs, length)
    complete = np.flatnonzero(column(runs, "status") != "incomplete")
    n_incomplete = len(runs) - len(complete)
    runs = runs.take(complete)
    lengths = lengths_all[complete]
    if np.isnan(lengths).any():
        raise AnalysisError(f"{int(np.isnan(lengths).sum())} runs have no {length} count")
    task_ids = np.array(["<none>" if t is None else str(t) for t in runs["task_id"]], dtype=object)
    length_sum: dict[str, float] = {}
    length_count: dict[str, int] = {}
    for t, value in zip(task_ids.tolist(), lengths.tolist(), strict=True):
        length_sum[t] = length_sum.get(t, 0.0) + value
        length_count[t] = length_count.get(t, 0) + 1
    short, long, kept = _halves(task_ids, lengths, seed)
    return HorizonFigures(
        whole=task_figures(runs, steps, options),
        short=task_figures(runs.take(np.flatnonzero(short)), steps, options),
        long=task_figures(runs.take(np.flatnonzero(long)), steps, options),
        length_sum=length_sum, length_count=length_count, kept=tuple(kept),
        n_short_runs=int(short.sum()), n_long_runs=int(long.sum()),
        n_runs=len(runs), n_incomplete=n_incomplete,
    )


def grouped_horizon_figures(runs: Table, steps: Table | None, by: str, options: AnalysisOptions, *,
                            length: str = "steps", seed: int | None = 0) -> dict[str, HorizonFigures]:
    """The :class:`HorizonFigures` of each ``by`` group of the runs of whole tasks, as
    ``horizon`` per group has them (:func:`~hotmess.analyzers.split_runs`, its check that some
    run has ``by`` left to the caller, who sees every task)."""
    return {name: horizon_figures(group_runs, group_steps, options, length=length, seed=seed)
            for name, (group_runs, group_steps) in split_runs(runs, steps, by, check=False).items()}
