"""Horizon: does incoherence grow with run length?

``horizon(runs, steps)`` measures it two ways, both on the per-task decompositions that
:func:`hotmess.analyzers.analyze` computes (same outcome mappers, verdicts, Brier/other
decompositions and small-sample correction; nothing is re-implemented here):

1. **Groups.** Each run's length is ``n_steps``, ``n_tool_calls`` or
   ``input_tokens + output_tokens`` (``length=``). A task's length is the mean over its complete
   runs. The tasks whose error is known (a reference or a verdict for every run: the tasks that
   count in incoherence) are sorted by that mean (ties in task order) and cut into ``groups``
   equal-size groups (sizes differ by at most one, ``numpy.array_split``). Per group:
   ``incoherence = Σ_i variance_i / Σ_i error_i`` over its tasks with its interval over tasks
   (:func:`hotmess.analyzers.incoherence`); ``length_mean``, the mean of its tasks' mean lengths;
   ``success_rate = Σ_i successes_i / Σ_i n_i``; and ``failure_diversity = 1 − Σ_i s_i / Σ_i
   m_i (m_i − 1)``, the chance that two failed runs of one task land in different clusters
   (``s_i`` the pairs of failed runs sharing a cluster, ``m_i`` the failed runs;
   :mod:`hotmess.analyzers.failures`).

2. **Slopes.** Least squares of ``log(incoherence_g)`` on ``log(length_mean_g)``:
   ``incoherence ≈ exp(intercept) · length^slope``, with ``R² = 1 − SS_res / SS_tot``. Groups whose
   incoherence is 0 or undefined (nan: every run correct, so no error) or whose mean length is 0
   have no logarithm and are left out of the fit (``n_fit`` says how many remain); with fewer than
   two points, or all points at one length, slope and R² are nan. When every fitted point has the
   same incoherence, SS_tot is 0: the slope is 0 and R² is nan. ``diversity_slope`` is the least
   squares slope of ``failure_diversity_g`` on ``log2(length_mean_g)``: the change in failure
   diversity when length doubles (diversity can be 0, so it is not logged).

   **Intervals.** A percentile bootstrap over tasks of the whole procedure: ``n_boot`` resamples
   of the usable tasks with replacement (``numpy.random.default_rng(seed)``), each sorted into
   groups and fitted as above; resamples with no slope (fewer than two fittable groups) are
   dropped. ``trend`` is ``"rises"`` when the interval lies above 0, ``"falls"`` below, else
   ``"none"`` (``None`` without an interval). R² on a handful of points is no evidence, so it
   decides nothing.

   **Reading it.** Under Brier with one correct cluster a task's incoherence is
   ``p + (1 − p) · d / 2`` (p its success rate, d its failure diversity): if success changes with
   length, incoherence moves with it even when failures scatter no more. The failure diversity
   slope is the one success cannot drive; the verdict reads both.

3. **Median split.** Within each task the runs are ranked by length, ties in a random order
   (per task: ``default_rng([seed, crc32(task_id)])``, :func:`~.horizon_tasks.tie_breaks`), so runs at the median are shared between the halves rather than all
   put on one side: the lower ``n // 2`` are "short", the upper ``n // 2`` "long" (the middle run
   of an odd count is left out). Tasks whose runs all have one length, or with fewer than
   ``MIN_SPLIT_RUNS`` runs per half, are left out of both halves. Each half is decomposed per
   task as its own set of runs (``analyze`` on the half) and its incoherence is the ratio of sums
   over tasks; ``difference`` = long − short is **paired over tasks**
   (:func:`hotmess.analyzers.incoherence_difference` with ``paired=True``: each task's difficulty
   cancels). The halves' success rates and failure diversities are reported beside it, with the
   paired difference of failure diversity: longer runs are often the failing ones, so the
   incoherence difference can follow success alone.

Runs with ``status == "incomplete"`` are left out everywhere.

**Per task.** Everything above that needs a task's runs is in
:func:`~.horizon_tasks.horizon_figures` (the task figures of all runs and of each half, the
length sums); :func:`horizon_combine` forms the groups, fits, bootstrap and split from them.
``horizon(runs, steps)`` is ``horizon_combine([horizon_figures(runs, steps, ...)])``, and an
engine computes ``horizon_figures`` task by task on its workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.results import Result
from hotmess.tables import Table

from .analysis import analysis_options, combine
from .common import json_float, natural_key
from .groups import GroupResults, each_group
from .horizon_fit import (
    bootstrap_slopes,
    curve_slopes,
    fit_power_law,
    interval_trend,
    percentile,
    ratio,
    task_columns,
)
from .horizon_tasks import (
    LENGTHS,
    HorizonFigures,
    grouped_horizon_figures,
    horizon_figures,
    run_lengths,
)
from .incoherence import Incoherence, incoherence
from .inputs import AnalysisOptions
from .median_split import MIN_SPLIT_RUNS, MedianSplit, median_split
from .results import Analysis

__all__ = [
    "LENGTHS", "MIN_SPLIT_RUNS", "Horizon", "HorizonFigures", "HorizonGroup", "MedianSplit", "horizon",
    "grouped_horizon_figures", "horizon_combine", "horizon_combine_groups", "horizon_figures", "run_lengths",
]

@dataclass(frozen=True)
class HorizonGroup(Result):
    """One group of tasks of similar mean run length."""

    length_mean: float
    length_min: float
    length_max: float
    n_tasks: int
    n_runs: int
    incoherence: Incoherence
    success_rate: float = float("nan")
    failure_diversity: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "length_mean": json_float(self.length_mean),
            "n_tasks": int(self.n_tasks),
            "incoherence": json_float(self.incoherence.value),
            "ci_low": json_float(self.incoherence.ci_low),
            "ci_high": json_float(self.incoherence.ci_high),
            "success_rate": json_float(self.success_rate),
            "failure_diversity": json_float(self.failure_diversity),
            "length_min": json_float(self.length_min),
            "length_max": json_float(self.length_max),
            "n_runs": int(self.n_runs),
        }


@dataclass(frozen=True)
class Horizon(Result):
    """The result of :func:`horizon`. ``to_dict()`` is JSON-safe (nan → None)."""

    length: str
    groups: tuple[HorizonGroup, ...]
    slope: float
    intercept: float
    r2: float
    n_fit: int
    median_split: MedianSplit
    n_tasks: int
    n_runs: int
    n_incomplete: int
    outcome: str
    decomposition: str
    warnings: tuple[str, ...] = field(default_factory=tuple)
    slope_low: float = float("nan")
    slope_high: float = float("nan")
    diversity_slope: float = float("nan")
    diversity_low: float = float("nan")
    diversity_high: float = float("nan")
    confidence: float = 0.95
    n_boot: int = 0
    n_boot_used: int = 0

    @property
    def trend(self) -> str | None:
        """``rises`` / ``falls`` when the slope's interval excludes 0, ``none`` when it holds 0."""
        return interval_trend(self.slope_low, self.slope_high)

    @property
    def diversity_trend(self) -> str | None:
        return interval_trend(self.diversity_low, self.diversity_high)

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": [g.to_dict() for g in self.groups],
            "slope": json_float(self.slope),
            "slope_ci": [json_float(self.slope_low), json_float(self.slope_high)],
            "trend": self.trend,
            "r2": json_float(self.r2),
            "diversity_slope": json_float(self.diversity_slope),
            "diversity_slope_ci": [json_float(self.diversity_low), json_float(self.diversity_high)],
            "diversity_trend": self.diversity_trend,
            "median_split": self.median_split.to_dict(),
            "intercept": json_float(self.intercept),
            "n_fit": int(self.n_fit),
            "confidence": json_float(self.confidence),
            "n_boot": int(self.n_boot),
            "n_boot_used": int(self.n_boot_used),
            "length": self.length,
            "n_tasks": int(self.n_tasks),
            "n_runs": int(self.n_runs),
            "n_incomplete": int(self.n_incomplete),
            "outcome": self.outcome,
            "decomposition": self.decomposition,
            "warnings": list(self.warnings),
        }


#: The most length groups horizon chooses by itself.
DEFAULT_GROUPS = 5


def _usable_count(whole: Analysis) -> int:
    arrays = whole.task_arrays()
    return int((np.isfinite(arrays["error"]) & np.isfinite(arrays["variance"])).sum())


def chosen_groups(whole: Analysis) -> int:
    """The number of length groups for these tasks: up to DEFAULT_GROUPS, each of two or more
    tasks with a known error (at least 1; 2 whenever there are 3 tasks or more)."""
    usable = _usable_count(whole)
    if usable >= 4:
        return min(DEFAULT_GROUPS, usable // 2)
    return max(1, min(usable, 2))


def horizon(
    runs: Table,
    steps: Table | None = None,
    *,
    length: str = "steps",
    groups: int | None = None,
    outcome: str | Callable[[Any], Hashable] = "exact",
    decomposition: str = "brier",
    correction: bool = True,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    **analyze_options: Any,
) -> Horizon:
    """Incoherence against run length: per length group, a log-log power-law fit, a median split.

    See the module docstring for the definitions. ``outcome``, ``decomposition``,
    ``correction``, ``n_boot``, ``confidence``, ``seed`` and any other keyword
    (``read_only``, ``distance_threshold``, ``embed``) are passed to
    :func:`hotmess.analyzers.analyze`, which computes the per-task decompositions.

    ``groups`` None (the default) chooses for the data: up to :data:`DEFAULT_GROUPS` groups of
    at least two tasks each (2 groups for 3 tasks, 4 for 8, 5 from 10), and says so in the
    warnings; a number given is used as it is.

    Raises AnalysisError for an unknown ``length``, ``groups`` < 1, or fewer tasks with a known
    error than ``groups``.
    """
    if not isinstance(runs, Table):
        raise AnalysisError(f"runs must be a hotmess.tables.Table, got {type(runs).__name__}")
    if groups is not None and (isinstance(groups, bool) or int(groups) != groups or groups < 1):
        raise AnalysisError(f"groups must be a positive integer, got {groups!r}")
    if "by" in analyze_options:
        raise AnalysisError("horizon takes no by=: call it on each group's runs")
    if "task_id" not in runs:
        raise AnalysisError(f"runs has no 'task_id' column; columns are {', '.join(runs.columns)}")
    run_lengths(runs, length)  # an unknown length or a missing column, before anything else
    opts = analysis_options(runs, steps, outcome=outcome, decomposition=decomposition, correction=correction,
                            n_boot=n_boot, confidence=confidence, seed=seed, **analyze_options)
    figures = horizon_figures(runs, steps, opts, length=length, seed=seed)
    return horizon_combine([figures], opts, length=length, groups=groups, seed=seed)


def horizon_combine_groups(by: str, parts: Sequence[Mapping[str, HorizonFigures]], options: AnalysisOptions, *,
                           length: str = "steps", groups: int | None = None,
                           seed: int | None = 0) -> GroupResults:
    """The horizon per ``by`` group (:class:`~hotmess.analyzers.groups.GroupResults`, as
    ``horizon`` on each group's runs gives) of the tasks of several
    :func:`~hotmess.analyzers.horizon_tasks.grouped_horizon_figures` (each task in one of them)."""
    names = sorted({name for part in parts for name in part}, key=natural_key)
    return each_group(by, {name: partial(horizon_combine, [p[name] for p in parts if name in p], options,
                                         length=length, groups=groups, seed=seed) for name in names})


def horizon_combine(figures: list[HorizonFigures], options: AnalysisOptions, *, length: str = "steps",
                    groups: int | None = None, seed: int | None = 0) -> Horizon:
    """The :class:`Horizon` of the tasks of several :func:`horizon_figures` (each task in one
    of them): the analysis of all tasks, the length groups, the fits and their bootstrap over
    tasks, and the median split, formed from the per-task figures."""
    whole = combine([f.whole for f in figures], options)
    n_runs = sum(f.n_runs for f in figures)
    n_incomplete = sum(f.n_incomplete for f in figures)
    warnings = list(whole.warnings)
    if groups is None:
        groups = chosen_groups(whole)
        warnings.append(f"{groups} length groups, chosen for {_usable_count(whole)} tasks with a known error "
                        f"(up to {DEFAULT_GROUPS}, two tasks or more each; --groups sets it)")
    groups = int(groups)
    length_sum: dict[str, float] = {}
    length_count: dict[str, int] = {}
    for f in figures:
        length_sum.update(f.length_sum)
        length_count.update(f.length_count)
    tasks = _Tasks.of(whole, length_sum, length_count, groups)
    result_groups = _length_groups(whole, tasks, groups, seed)
    slope, intercept, r2, n_fit, diversity_slope = _fit_groups(result_groups, len(tasks.usable), warnings)
    slope_ci, diversity_ci, used = _slope_intervals(whole, tasks, groups, seed, slope, diversity_slope)

    kept = {t for f in figures for t in f.kept}
    kept_ids = [t.task_id for t in whole.tasks if t.task_id in kept]
    short = long_half = None
    if kept_ids:
        short = combine([f.short for f in figures], options)
        long_half = combine([f.long for f in figures], options)
    split = median_split(short, long_half, kept_ids, sum(f.n_short_runs for f in figures),
                         sum(f.n_long_runs for f in figures), seed, whole)
    if split.n_tasks == 0:
        warnings.append(
            f"no task has {2 * MIN_SPLIT_RUNS}+ runs of different {length}: "
            "the median split is undefined"
        )
    note = _disagreement(interval_trend(*slope_ci), split.trend)
    if note:
        warnings.append(note)
    return Horizon(
        length=length,
        groups=tuple(result_groups),
        slope=slope,
        intercept=intercept,
        r2=r2,
        n_fit=n_fit,
        median_split=split,
        n_tasks=len(whole.tasks),
        n_runs=n_runs,
        n_incomplete=n_incomplete,
        outcome=whole.outcome,
        decomposition=whole.decomposition,
        warnings=tuple(warnings),
        slope_low=slope_ci[0],
        slope_high=slope_ci[1],
        diversity_slope=diversity_slope,
        diversity_low=diversity_ci[0],
        diversity_high=diversity_ci[1],
        confidence=whole.incoherence.confidence,
        n_boot=whole.incoherence.n_boot,
        n_boot_used=used,
    )


@dataclass(frozen=True)
class _Tasks:
    """Per task (analysis order): runs per task, mean run length, the task columns of
    :func:`~.horizon_fit.task_columns`; the usable tasks (a known error), in order."""

    runs_per_task: np.ndarray
    mean_length: np.ndarray
    arrays: dict[str, np.ndarray]
    columns: dict[str, np.ndarray]
    usable: np.ndarray

    @staticmethod
    def of(whole: Analysis, length_sum: dict[str, float], length_count: dict[str, int],
           groups: int) -> _Tasks:
        arrays = whole.task_arrays()
        runs_per_task = np.array([length_count.get(t.task_id, 0) for t in whole.tasks], dtype=np.int64)
        mean_length = np.array([length_sum.get(t.task_id, 0.0) for t in whole.tasks],
                               dtype=np.float64) / np.maximum(runs_per_task, 1)
        usable = np.flatnonzero(np.isfinite(arrays["error"]) & np.isfinite(arrays["variance"]))
        if len(usable) == 0:
            raise AnalysisError(
                "no task has a known error (a reference or success for every run): incoherence, "
                "and so its curve over length, needs one"
            )
        if len(usable) < groups:
            raise AnalysisError(
                f"{len(usable)} tasks with a known error (a reference or success for every run) "
                f"cannot make {groups} groups: use {max(len(usable), 1)} groups or fewer"
            )
        columns = task_columns(whole)
        columns["same_pairs"] = np.round(columns["same_pairs"])
        return _Tasks(runs_per_task, mean_length, arrays, columns, usable)


def _length_groups(whole: Analysis, tasks: _Tasks, groups: int, seed: int | None) -> list[HorizonGroup]:
    """The usable tasks sorted by mean length (ties in task order), cut into ``groups``."""
    ordered = tasks.usable[np.argsort(tasks.mean_length[tasks.usable], kind="stable")]
    columns, arrays = tasks.columns, tasks.arrays
    result_groups = []
    for members in np.array_split(ordered, groups):
        inc = incoherence(
            arrays["variance"][members],
            arrays["error"][members],
            n_boot=whole.incoherence.n_boot,
            confidence=whole.incoherence.confidence,
            seed=seed,
            method=whole.decomposition,
        )
        task_lengths = tasks.mean_length[members]
        result_groups.append(
            HorizonGroup(
                length_mean=float(task_lengths.mean()),
                length_min=float(task_lengths.min()),
                length_max=float(task_lengths.max()),
                n_tasks=len(members),
                n_runs=int(tasks.runs_per_task[members].sum()),
                incoherence=inc,
                success_rate=float(ratio(np.nansum(columns["successes"][members]),
                                         columns["n"][members].sum())),
                failure_diversity=float(1.0 - ratio(columns["same_pairs"][members].sum(),
                                                    columns["pairs"][members].sum())),
            )
        )
    return result_groups


def _fit_groups(
    result_groups: list[HorizonGroup], n_usable: int, warnings: list[str]
) -> tuple[float, float, float, int, float]:
    """The power-law fit over the groups and the diversity slope, with warnings about them."""
    groups = len(result_groups)
    x = np.array([g.length_mean for g in result_groups])
    y = np.array([g.incoherence.value for g in result_groups])
    slope, intercept, r2, n_fit = fit_power_law(x, y)
    diversity = np.array([[g.failure_diversity for g in result_groups]])
    diversity_slope = float(curve_slopes(x[None], y[None], diversity)[1][0])
    left_out = groups - n_fit
    if left_out:
        warnings.append(
            f"{left_out} of {groups} groups have zero or undefined incoherence or zero length: "
            "left out of the power-law fit"
        )
    if n_usable < 2 * groups:
        warnings.append(
            f"only {n_usable} tasks for {groups} groups: each group's incoherence rests on "
            "one or two tasks"
        )
    return slope, intercept, r2, n_fit, diversity_slope


def _slope_intervals(
    whole: Analysis, tasks: _Tasks, groups: int, seed: int | None, slope: float, diversity_slope: float
) -> tuple[tuple[float, float], tuple[float, float], int]:
    """Bootstrap intervals of the slope and the diversity slope, and the resamples that had one."""
    n_boot_slopes = whole.incoherence.n_boot
    slope_ci = diversity_ci = (float("nan"), float("nan"))
    used = 0
    if n_boot_slopes and groups >= 2:
        usable = tasks.usable
        per_task = {
            "length": tasks.mean_length[usable],
            "variance": tasks.arrays["variance"][usable],
            "error": tasks.arrays["error"][usable],
            "pairs": tasks.columns["pairs"][usable],
            "same_pairs": tasks.columns["same_pairs"][usable],
        }
        boot_slope, boot_diversity = bootstrap_slopes(per_task, groups, n_boot_slopes, seed)
        used = int(np.isfinite(boot_slope).sum())
        confidence = whole.incoherence.confidence
        if math.isfinite(slope):
            slope_ci = percentile(boot_slope, confidence)
        if math.isfinite(diversity_slope):
            diversity_ci = percentile(boot_diversity, confidence)
    return slope_ci, diversity_ci, used


_ACROSS = {"rises": "rises with length", "falls": "falls with length", "none": "shows no clear trend with length"}
_WITHIN = {"rises": "are more incoherent", "falls": "are less incoherent", "none": "are not clearly different"}


def _disagreement(slope_trend: str | None, split_trend: str | None) -> str | None:
    """A sentence when the slope across tasks and the split within tasks point different ways."""
    if slope_trend is None or split_trend is None or slope_trend == split_trend:
        return None
    return (
        f"across tasks incoherence {_ACROSS[slope_trend]}, but within tasks the longer runs "
        f"{_WITHIN[split_trend]}: the slope compares longer tasks with shorter ones, the split "
        "one task's longer runs with its shorter ones (often its failing runs against its passing ones)"
    )
