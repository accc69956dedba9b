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
   (``default_rng(seed)``), so runs at the median are shared between the halves rather than all
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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hotmess.tables import Table

from .analysis import analyze
from .common import json_float
from .incoherence import Incoherence, IncoherenceDifference, incoherence, incoherence_difference
from .results import Analysis

__all__ = ["LENGTHS", "MIN_SPLIT_RUNS", "Horizon", "HorizonGroup", "MedianSplit", "horizon", "run_lengths"]

#: Ways to measure a run's length and the runs columns they read.
LENGTHS: dict[str, tuple[str, ...]] = {
    "steps": ("n_steps",),
    "tool_calls": ("n_tool_calls",),
    "tokens": ("input_tokens", "output_tokens"),
}
#: Runs a task needs in each half of the median split to take part in it.
MIN_SPLIT_RUNS = 2


def _trend(low: float, high: float) -> str | None:
    """``rises`` / ``falls`` when the interval excludes 0, ``none`` when it holds it; None without one."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    if low > 0:
        return "rises"
    if high < 0:
        return "falls"
    return "none"


@dataclass(frozen=True)
class HorizonGroup:
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
class MedianSplit:
    """Each task's longer runs against its shorter ones, paired over tasks."""

    short: Incoherence
    long: Incoherence
    difference: IncoherenceDifference | None
    n_tasks: int
    n_short_runs: int
    n_long_runs: int
    success_short: float = float("nan")
    success_long: float = float("nan")
    diversity_short: float = float("nan")
    diversity_long: float = float("nan")
    #: failure diversity long − short, paired over tasks (computed as failure consistency
    #: short − long, the same number: both are ratios of sums of failed-run pairs)
    diversity_difference: IncoherenceDifference | None = None

    @property
    def trend(self) -> str | None:
        """``rises`` when the long half's incoherence is higher (interval above 0), and so on."""
        d = self.difference
        return None if d is None else _trend(d.ci_low, d.ci_high)

    @property
    def diversity_trend(self) -> str | None:
        d = self.diversity_difference
        return None if d is None else _trend(d.ci_low, d.ci_high)

    def to_dict(self) -> dict[str, Any]:
        diff, div = self.difference, self.diversity_difference
        return {
            "short": json_float(self.short.value),
            "long": json_float(self.long.value),
            "short_ci": [json_float(self.short.ci_low), json_float(self.short.ci_high)],
            "long_ci": [json_float(self.long.ci_low), json_float(self.long.ci_high)],
            "difference": None if diff is None else json_float(diff.value),
            "difference_ci": [None, None]
            if diff is None
            else [json_float(diff.ci_low), json_float(diff.ci_high)],
            "p_value": None if diff is None else json_float(diff.p_value),
            "trend": self.trend,
            "paired": True,
            "success_short": json_float(self.success_short),
            "success_long": json_float(self.success_long),
            "failure_diversity_short": json_float(self.diversity_short),
            "failure_diversity_long": json_float(self.diversity_long),
            "diversity_difference": None if div is None else json_float(div.value),
            "diversity_difference_ci": [None, None]
            if div is None
            else [json_float(div.ci_low), json_float(div.ci_high)],
            "diversity_trend": self.diversity_trend,
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
        return _trend(self.slope_low, self.slope_high)

    @property
    def diversity_trend(self) -> str | None:
        return _trend(self.diversity_low, self.diversity_high)

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


def _row_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of y on x in each row over its finite points; nan for a row with
    fewer than two of them or a single x."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=1)
    x0, y0 = np.where(ok, x, 0.0), np.where(ok, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = np.where(ok, x0 - (x0.sum(axis=1) / n)[:, None], 0.0)
        dy = np.where(ok, y0 - (y0.sum(axis=1) / n)[:, None], 0.0)
        spread = np.where(ok, x, -np.inf).max(axis=1) - np.where(ok, x, np.inf).min(axis=1)
        slope = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
    return np.where((n >= 2) & (spread > 0), slope, np.nan)


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def _group_curves(
    task: dict[str, np.ndarray], index: np.ndarray, groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``index`` (resampled task positions), the tasks sorted by mean length and cut
    into ``groups``: each group's mean length, incoherence and failure diversity (rows × groups)."""
    rows, size = index.shape
    order = np.argsort(task["length"][index], axis=1, kind="stable")
    ordered = np.take_along_axis(index, order, axis=1)
    cuts = np.cumsum([0] + [len(c) for c in np.array_split(np.arange(size), groups)])

    def sums(values: np.ndarray) -> np.ndarray:
        running = np.zeros((rows, size + 1))
        np.cumsum(values[ordered], axis=1, out=running[:, 1:])
        return running[:, cuts[1:]] - running[:, cuts[:-1]]

    length = sums(task["length"]) / np.diff(cuts)
    incoherence_g = _ratio(sums(task["variance"]), sums(task["error"]))
    diversity = 1.0 - _ratio(sums(task["same_pairs"]), sums(task["pairs"]))
    return length, incoherence_g, diversity


def _slopes(length: np.ndarray, incoherence_g: np.ndarray, diversity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (log-log incoherence slope, diversity slope per doubling of length)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = (length > 0) & (incoherence_g > 0)
        log_x = np.where(positive, np.log(np.where(positive, length, 1.0)), np.nan)
        log_y = np.where(positive, np.log(np.where(positive, incoherence_g, 1.0)), np.nan)
        log2_x = np.where(length > 0, np.log2(np.where(length > 0, length, 1.0)), np.nan)
    return _row_slopes(log_x, log_y), _row_slopes(log2_x, diversity)


#: Bootstrap index cells drawn at once (B × tasks), to bound memory on large task sets.
_CHUNK_CELLS = 2_000_000


def _bootstrap_slopes(
    task: dict[str, np.ndarray], groups: int, n_boot: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = task["length"].size
    rows = max(1, _CHUNK_CELLS // size)
    slope, diversity = np.empty(n_boot), np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        index = rng.integers(0, size, size=(stop - start, size))
        slope[start:stop], diversity[start:stop] = _slopes(*_group_curves(task, index, groups))
    return slope, diversity


def _percentile(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def _task_columns(whole: Analysis) -> dict[str, np.ndarray]:
    """Per task (analysis order): successes, runs, failed-run pairs and pairs sharing a cluster."""
    m = np.array([t.failures for t in whole.tasks], dtype=np.float64)
    consistency = np.array([t.failure_consistency for t in whole.tasks], dtype=np.float64)
    pairs = m * (m - 1)
    return {
        "successes": np.array([np.nan if t.successes is None else t.successes for t in whole.tasks], dtype=np.float64),
        "n": np.array([t.n for t in whole.tasks], dtype=np.float64),
        "pairs": pairs,
        "same_pairs": np.where(pairs > 0, np.nan_to_num(consistency) * pairs, 0.0),
    }


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
    columns = _task_columns(whole)
    columns["same_pairs"] = np.round(columns["same_pairs"])
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
                success_rate=float(_ratio(np.nansum(columns["successes"][members]),
                                          columns["n"][members].sum())),
                failure_diversity=float(1.0 - _ratio(columns["same_pairs"][members].sum(),
                                                     columns["pairs"][members].sum())),
            )
        )
    x = np.array([g.length_mean for g in result_groups])
    y = np.array([g.incoherence.value for g in result_groups])
    slope, intercept, r2, n_fit = _fit(x, y)
    diversity_slope = float(_slopes(x[None], y[None], np.array([[g.failure_diversity for g in result_groups]]))[1][0])
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
    n_boot_slopes = whole.incoherence.n_boot
    slope_ci = diversity_ci = (float("nan"), float("nan"))
    used = 0
    if n_boot_slopes and groups >= 2:
        per_task = {
            "length": mean_length[usable],
            "variance": arrays["variance"][usable],
            "error": arrays["error"][usable],
            "pairs": columns["pairs"][usable],
            "same_pairs": columns["same_pairs"][usable],
        }
        boot_slope, boot_diversity = _bootstrap_slopes(per_task, groups, n_boot_slopes, seed)
        used = int(np.isfinite(boot_slope).sum())
        confidence = whole.incoherence.confidence
        if math.isfinite(slope):
            slope_ci = _percentile(boot_slope, confidence)
        if math.isfinite(diversity_slope):
            diversity_ci = _percentile(boot_diversity, confidence)

    split = _median_split(runs, steps, task, lengths, n_tasks, options, whole)
    if split.n_tasks == 0:
        warnings.append(
            f"no task has {2 * MIN_SPLIT_RUNS}+ runs of different {length}: "
            "the median split is undefined"
        )
    note = _disagreement(_trend(*slope_ci), split.trend)
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
        n_tasks=n_tasks,
        n_runs=len(runs),
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
        n_boot=n_boot_slopes,
        n_boot_used=used,
    )


def _split_halves(
    task: np.ndarray, lengths: np.ndarray, n_tasks: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(short, long, kept tasks): each task's runs ranked by length, ties in random order, the
    lower n // 2 short and the upper n // 2 long, for tasks whose runs differ in length and give
    each half ``MIN_SPLIT_RUNS`` runs."""
    tie_break = np.random.default_rng(seed).random(len(task))
    order = np.lexsort((tie_break, lengths, task))
    counts = np.bincount(task, minlength=n_tasks)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(len(task), dtype=np.int64)
    rank[order] = np.arange(len(task)) - first[task[order]]
    half = counts // 2
    longest = np.full(n_tasks, -np.inf)
    shortest = np.full(n_tasks, np.inf)
    np.maximum.at(longest, task, lengths)
    np.minimum.at(shortest, task, lengths)
    kept = (half >= MIN_SPLIT_RUNS) & (longest > shortest)
    short = kept[task] & (rank < half[task])
    long = kept[task] & (rank >= (counts - half)[task])
    return short, long, kept


def _median_split(
    runs: Table,
    steps: Table | None,
    task: np.ndarray,
    lengths: np.ndarray,
    n_tasks: int,
    options: dict[str, Any],
    whole: Analysis,
) -> MedianSplit:
    short_mask, long_mask, kept = _split_halves(task, lengths, n_tasks, options.get("seed"))
    nan = float("nan")
    if not kept.any():
        empty = Incoherence(
            nan, nan, nan, whole.decomposition, 0, whole.incoherence.confidence,
            whole.incoherence.n_boot, 0, reason="no task can be split at its median",
        )
        return MedianSplit(empty, empty, None, 0, 0, 0)
    short_idx, long_idx = np.flatnonzero(short_mask), np.flatnonzero(long_mask)
    short = analyze(runs.take(short_idx), steps, **options)
    long_half = analyze(runs.take(long_idx), steps, **options)
    assert isinstance(short, Analysis) and isinstance(long_half, Analysis)
    kept_ids = [whole.tasks[t].task_id for t in np.flatnonzero(kept)]
    sides = [_aligned(half, kept_ids) for half in (long_half, short)]
    common = dict(
        paired=True,
        n_boot=whole.incoherence.n_boot,
        confidence=whole.incoherence.confidence,
        seed=options.get("seed"),
        method=whole.decomposition,
        labels=("long", "short"),
    )
    (long_cols, short_cols) = sides
    difference = incoherence_difference(
        (long_cols["variance"], long_cols["error"]), (short_cols["variance"], short_cols["error"]), **common
    )
    undefined = math.isnan(difference.value) and difference.reason is not None
    # failure consistency is a ratio of sums too (pairs sharing a cluster / all pairs); its paired
    # difference short − long is the diversity difference long − short
    diversity_difference = None
    if long_cols["pairs"].sum() > 0 and short_cols["pairs"].sum() > 0:
        diversity_difference = incoherence_difference(
            (short_cols["same_pairs"], short_cols["pairs"]), (long_cols["same_pairs"], long_cols["pairs"]),
            **common,
        )

    def pooled(cols: dict[str, np.ndarray]) -> tuple[float, float]:
        known = np.isfinite(cols["successes"])
        success = float(_ratio(cols["successes"][known].sum(), cols["n"][known].sum()))
        return success, float(1.0 - _ratio(cols["same_pairs"].sum(), cols["pairs"].sum()))

    success_long, diversity_long = pooled(long_cols)
    success_short, diversity_short = pooled(short_cols)
    return MedianSplit(
        short=short.incoherence,
        long=long_half.incoherence,
        difference=None if undefined else difference,
        n_tasks=int(kept.sum()),
        n_short_runs=len(short_idx),
        n_long_runs=len(long_idx),
        success_short=success_short,
        success_long=success_long,
        diversity_short=diversity_short,
        diversity_long=diversity_long,
        diversity_difference=diversity_difference,
    )


def _aligned(half: Analysis, task_ids: list[str]) -> dict[str, np.ndarray]:
    """A half's per-task columns in the order of ``task_ids`` (nan for a task it lacks)."""
    arrays = half.task_arrays()
    columns = _task_columns(half)
    columns["same_pairs"] = np.round(columns["same_pairs"])
    columns.update(variance=arrays["variance"], error=arrays["error"])
    position = {t.task_id: i for i, t in enumerate(half.tasks)}
    rows = np.array([position.get(t, -1) for t in task_ids])
    out = {}
    for name, values in columns.items():
        padded = np.append(values.astype(np.float64), np.nan)
        out[name] = padded[rows]
    for name in ("pairs", "same_pairs"):
        out[name] = np.nan_to_num(out[name])
    return out


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
