"""Horizon: does incoherence grow with run length?

``horizon(runs, steps)`` measures it two ways, both on the per-task decompositions that
:func:`hotmess.analyzers.analyze` computes (same outcome mappers, verdicts, Brier/other
decompositions and bootstrap; nothing is re-implemented here):

1. **Groups.** Each run's length is ``n_steps``, ``n_tool_calls`` or
   ``input_tokens + output_tokens`` (``length=``). A task's length is the mean over its complete
   runs. The tasks whose error is known (a reference or a verdict for every run: the tasks that
   count in incoherence) are sorted by that mean (ties in task order) and cut into ``groups``
   equal-size groups (sizes differ by at most one, ``numpy.array_split``). Per group,
   ``incoherence = Σ_i variance_i / Σ_i error_i`` over its tasks with a percentile bootstrap
   interval over tasks (:func:`hotmess.analyzers.incoherence`); ``length_mean`` is the mean of its
   tasks' mean lengths.

2. **Power law.** Least squares of ``log(incoherence_g)`` on ``log(length_mean_g)``:
   ``incoherence ≈ exp(intercept) · length^slope``, with ``R² = 1 − SS_res / SS_tot``. Groups whose
   incoherence is 0 or undefined (nan: every run correct, so no error) or whose mean length is 0
   have no logarithm and are left out of the fit (``n_fit`` says how many remain); with fewer than
   two points, or all points at one length, slope and R² are nan. When every fitted point has the
   same incoherence, SS_tot is 0: the slope is 0 and R² is nan.

3. **Median split.** Within each task, runs longer than the task's median length are "long";
   the others, including runs exactly at the median, are "short". Tasks with fewer than
   ``MIN_SPLIT_RUNS`` runs in either half (e.g. every run the same length) are left out of both
   halves, so both are measured on the same tasks. Each half is decomposed per task as its own
   set of runs (``analyze`` on the half) and its incoherence is the ratio of sums over tasks;
   ``difference`` = long − short with an independent bootstrap interval
   (:func:`hotmess.analyzers.incoherence_difference`).

Runs with ``status == "incomplete"`` are left out everywhere, as ``analyze`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hotmess.tables import Table

from ._common import json_float
from .analysis import Analysis, analyze
from .incoherence import Incoherence, IncoherenceDifference, incoherence, incoherence_difference

__all__ = ["LENGTHS", "MIN_SPLIT_RUNS", "Horizon", "HorizonGroup", "MedianSplit", "horizon", "run_lengths"]

#: Ways to measure a run's length and the runs columns they read.
LENGTHS: dict[str, tuple[str, ...]] = {
    "steps": ("n_steps",),
    "tool_calls": ("n_tool_calls",),
    "tokens": ("input_tokens", "output_tokens"),
}
#: Runs a task needs in each half of the median split to take part in it.
MIN_SPLIT_RUNS = 2


@dataclass(frozen=True)
class HorizonGroup:
    """One group of tasks of similar mean run length."""

    length_mean: float
    length_min: float
    length_max: float
    n_tasks: int
    n_runs: int
    incoherence: Incoherence

    def to_dict(self) -> dict[str, Any]:
        return {
            "length_mean": json_float(self.length_mean),
            "n_tasks": int(self.n_tasks),
            "incoherence": json_float(self.incoherence.value),
            "ci_low": json_float(self.incoherence.ci_low),
            "ci_high": json_float(self.incoherence.ci_high),
            "length_min": json_float(self.length_min),
            "length_max": json_float(self.length_max),
            "n_runs": int(self.n_runs),
        }


@dataclass(frozen=True)
class MedianSplit:
    """Incoherence of each task's longer-than-median runs against its other runs."""

    short: Incoherence
    long: Incoherence
    difference: IncoherenceDifference | None
    n_tasks: int
    n_short_runs: int
    n_long_runs: int

    def to_dict(self) -> dict[str, Any]:
        diff = self.difference
        return {
            "short": json_float(self.short.value),
            "long": json_float(self.long.value),
            "short_ci": [json_float(self.short.ci_low), json_float(self.short.ci_high)],
            "long_ci": [json_float(self.long.ci_low), json_float(self.long.ci_high)],
            "difference": None if diff is None else json_float(diff.value),
            "difference_ci": [None, None]
            if diff is None
            else [json_float(diff.ci_low), json_float(diff.ci_high)],
            "n_tasks": int(self.n_tasks),
            "n_short_runs": int(self.n_short_runs),
            "n_long_runs": int(self.n_long_runs),
        }


@dataclass(frozen=True)
class Horizon:
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": [g.to_dict() for g in self.groups],
            "slope": json_float(self.slope),
            "r2": json_float(self.r2),
            "median_split": self.median_split.to_dict(),
            "intercept": json_float(self.intercept),
            "n_fit": int(self.n_fit),
            "length": self.length,
            "n_tasks": int(self.n_tasks),
            "n_runs": int(self.n_runs),
            "n_incomplete": int(self.n_incomplete),
            "outcome": self.outcome,
            "decomposition": self.decomposition,
            "warnings": list(self.warnings),
        }


def run_lengths(runs: Table, length: str = "steps") -> np.ndarray:
    """Each run's length as float64: ``n_steps``, ``n_tool_calls`` or input + output tokens."""
    if length not in LENGTHS:
        raise ValueError(f"length must be one of {', '.join(LENGTHS)}, got {length!r}")
    total = np.zeros(len(runs), dtype=np.float64)
    for name in LENGTHS[length]:
        if name not in runs:
            raise ValueError(
                f"length={length!r} needs the runs column {name!r}; columns are "
                f"{', '.join(runs.columns)}"
            )
        column = runs[name]
        if column.dtype == object:
            column = np.array([np.nan if v is None else float(v) for v in column])
        total += column.astype(np.float64, copy=False)
    return total


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, int]:
    """(slope, intercept, R², points) of log y on log x over the points where both are > 0."""
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    n = int(ok.sum())
    nan = float("nan")
    if n < 2 or np.ptp(lx) == 0:
        return nan, nan, nan, n
    dx, dy = lx - lx.mean(), ly - ly.mean()
    slope = float(np.dot(dx, dy) / np.dot(dx, dx))
    intercept = float(ly.mean() - slope * lx.mean())
    residual = float(np.sum((dy - slope * dx) ** 2))
    r2 = 1.0 - residual / float(np.dot(dy, dy)) if np.ptp(ly) > 0 else nan
    return slope, intercept, r2, n


def horizon(
    runs: Table,
    steps: Table | None = None,
    *,
    length: str = "steps",
    groups: int = 5,
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

    Raises ValueError for an unknown ``length``, ``groups`` < 1, or fewer tasks with a known
    error than ``groups``.
    """
    if not isinstance(runs, Table):
        raise ValueError(f"runs must be a hotmess.tables.Table, got {type(runs).__name__}")
    if isinstance(groups, bool) or int(groups) != groups or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    groups = int(groups)
    if "by" in analyze_options:
        raise ValueError("horizon takes no by=: call it on each group's runs")
    lengths_all = run_lengths(runs, length)
    options = dict(
        outcome=outcome,
        decomposition=decomposition,
        correction=correction,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        **analyze_options,
    )
    if "task_id" not in runs:
        raise ValueError(f"runs has no 'task_id' column; columns are {', '.join(runs.columns)}")
    status = runs["status"] if "status" in runs else np.full(len(runs), None, dtype=object)
    complete = np.flatnonzero(status != "incomplete")
    n_incomplete = len(runs) - len(complete)
    runs = runs.take(complete)
    lengths = lengths_all[complete]
    if np.isnan(lengths).any():
        raise ValueError(f"{int(np.isnan(lengths).sum())} runs have no {length} count")

    whole = analyze(runs, steps, **options)
    assert isinstance(whole, Analysis)
    warnings = list(whole.warnings)
    task_ids = np.array(["<none>" if t is None else str(t) for t in runs["task_id"]], dtype=object)
    position = {t.task_id: i for i, t in enumerate(whole.tasks)}
    task = np.fromiter((position[t] for t in task_ids), dtype=np.int64, count=len(task_ids))
    n_tasks = len(whole.tasks)
    arrays = whole.task_arrays()
    runs_per_task = np.bincount(task, minlength=n_tasks)
    mean_length = np.bincount(task, weights=lengths, minlength=n_tasks) / np.maximum(
        runs_per_task, 1
    )

    usable = np.flatnonzero(np.isfinite(arrays["error"]) & np.isfinite(arrays["variance"]))
    if len(usable) == 0:
        raise ValueError(
            "no task has a known error (a reference or success for every run): incoherence, "
            "and so its curve over length, needs one"
        )
    if len(usable) < groups:
        raise ValueError(
            f"{len(usable)} tasks with a known error (a reference or success for every run) "
            f"cannot make {groups} groups: use {max(len(usable), 1)} groups or fewer"
        )
    ordered = usable[np.argsort(mean_length[usable], kind="stable")]
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
        task_lengths = mean_length[members]
        result_groups.append(
            HorizonGroup(
                length_mean=float(task_lengths.mean()),
                length_min=float(task_lengths.min()),
                length_max=float(task_lengths.max()),
                n_tasks=len(members),
                n_runs=int(runs_per_task[members].sum()),
                incoherence=inc,
            )
        )
    x = np.array([g.length_mean for g in result_groups])
    y = np.array([g.incoherence.value for g in result_groups])
    slope, intercept, r2, n_fit = _fit(x, y)
    left_out = groups - n_fit
    if left_out:
        warnings.append(
            f"{left_out} of {groups} groups have zero or undefined incoherence or zero length: "
            "left out of the power-law fit"
        )
    if len(usable) < 2 * groups:
        warnings.append(
            f"only {len(usable)} tasks for {groups} groups: each group's incoherence rests on "
            "one or two tasks"
        )

    split = _median_split(runs, steps, task, lengths, n_tasks, options, whole)
    if split.n_tasks == 0:
        warnings.append(
            f"no task has {MIN_SPLIT_RUNS}+ runs both above and at-or-below its median {length}: "
            "the median split is undefined"
        )
    return Horizon(
        length=length,
        groups=tuple(result_groups),
        slope=slope,
        intercept=intercept,
        r2=r2,
        n_fit=n_fit,
        median_split=split,
        n_tasks=n_tasks,
        n_runs=len(runs),
        n_incomplete=n_incomplete,
        outcome=whole.outcome,
        decomposition=whole.decomposition,
        warnings=tuple(warnings),
    )


def _median_split(
    runs: Table,
    steps: Table | None,
    task: np.ndarray,
    lengths: np.ndarray,
    n_tasks: int,
    options: dict[str, Any],
    whole: Analysis,
) -> MedianSplit:
    order = np.lexsort((lengths, task))
    bounds = np.searchsorted(task[order], np.arange(n_tasks + 1))
    median = np.full(n_tasks, np.nan)
    for t in range(n_tasks):
        sorted_lengths = lengths[order[bounds[t] : bounds[t + 1]]]
        if sorted_lengths.size:
            median[t] = float(np.median(sorted_lengths))
    long = lengths > median[task]
    n_long = np.bincount(task, weights=long, minlength=n_tasks)
    n_short = np.bincount(task, weights=~long, minlength=n_tasks)
    kept = (n_long >= MIN_SPLIT_RUNS) & (n_short >= MIN_SPLIT_RUNS)
    in_kept = kept[task]
    short_idx = np.flatnonzero(in_kept & ~long)
    long_idx = np.flatnonzero(in_kept & long)
    nan = float("nan")
    if not kept.any():
        empty = Incoherence(
            nan, nan, nan, whole.decomposition, 0, whole.incoherence.confidence,
            whole.incoherence.n_boot, 0, reason="no task can be split at its median",
        )
        return MedianSplit(empty, empty, None, 0, 0, 0)
    short = analyze(runs.take(short_idx), steps, **options)
    long_half = analyze(runs.take(long_idx), steps, **options)
    assert isinstance(short, Analysis) and isinstance(long_half, Analysis)
    a, b = long_half.task_arrays(), short.task_arrays()
    difference = incoherence_difference(
        (a["variance"], a["error"]),
        (b["variance"], b["error"]),
        n_boot=whole.incoherence.n_boot,
        confidence=whole.incoherence.confidence,
        seed=options.get("seed"),
        method=whole.decomposition,
        labels=("long", "short"),
    )
    undefined = math.isnan(difference.value) and difference.reason is not None
    return MedianSplit(
        short=short.incoherence,
        long=long_half.incoherence,
        difference=None if undefined else difference,
        n_tasks=int(kept.sum()),
        n_short_runs=len(short_idx),
        n_long_runs=len(long_idx),
    )
