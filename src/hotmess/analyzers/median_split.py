"""The median split of :func:`~hotmess.analyzers.horizon.horizon`: within each task, its longer
runs against its shorter ones, paired over tasks (the definition is in :mod:`.horizon`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotmess.results import Result

from .common import json_float
from .horizon_fit import interval_trend, ratio, task_columns
from .incoherence import Incoherence, IncoherenceDifference, incoherence_difference
from .results import Analysis

__all__ = ["MIN_SPLIT_RUNS", "MedianSplit", "median_split"]

#: Runs a task needs in each half of the median split to take part in it.
MIN_SPLIT_RUNS = 2


@dataclass(frozen=True)
class MedianSplit(Result):
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
        return None if d is None else interval_trend(d.ci_low, d.ci_high)

    @property
    def diversity_trend(self) -> str | None:
        d = self.diversity_difference
        return None if d is None else interval_trend(d.ci_low, d.ci_high)

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


def median_split(
    short: Analysis | None,
    long_half: Analysis | None,
    kept_ids: list[str],
    n_short_runs: int,
    n_long_runs: int,
    seed: int | None,
    whole: Analysis,
) -> MedianSplit:
    """The median split from the analyses of the short and the long halves of the tasks in
    ``kept_ids`` (in ``whole``'s task order; :func:`~.horizon_tasks.horizon_figures` makes
    the halves): incoherence of each half, their paired difference, success and diversity."""
    kept = np.array(kept_ids, dtype=object)
    nan = float("nan")
    if len(kept) == 0 or short is None or long_half is None:
        empty = Incoherence(
            nan, nan, nan, whole.decomposition, 0, whole.incoherence.confidence,
            whole.incoherence.n_boot, 0, reason="no task can be split at its median",
        )
        return MedianSplit(empty, empty, None, 0, 0, 0)
    sides = [_aligned(half, kept_ids) for half in (long_half, short)]
    common = dict(
        paired=True,
        n_boot=whole.incoherence.n_boot,
        confidence=whole.incoherence.confidence,
        seed=seed,
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
        success = float(ratio(cols["successes"][known].sum(), cols["n"][known].sum()))
        return success, float(1.0 - ratio(cols["same_pairs"].sum(), cols["pairs"].sum()))

    success_long, diversity_long = pooled(long_cols)
    success_short, diversity_short = pooled(short_cols)
    return MedianSplit(
        short=short.incoherence,
        long=long_half.incoherence,
        difference=None if undefined else difference,
        n_tasks=len(kept),
        n_short_runs=int(n_short_runs),
        n_long_runs=int(n_long_runs),
        success_short=success_short,
        success_long=success_long,
        diversity_short=diversity_short,
        diversity_long=diversity_long,
        diversity_difference=diversity_difference,
    )


def _aligned(half: Analysis, task_ids: list[str]) -> dict[str, np.ndarray]:
    """A half's per-task columns in the order of ``task_ids`` (nan for a task it lacks)."""
    arrays = half.task_arrays()
    columns = task_columns(half)
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
