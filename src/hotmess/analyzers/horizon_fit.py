"""The curves of :func:`~hotmess.analyzers.horizon.horizon`: tasks cut into length groups,
incoherence and failure diversity per group, their slopes over length and bootstrap intervals.

The definitions (groups, the log-log fit, the diversity slope per doubling, the percentile
bootstrap over tasks, the trend read from an interval) are in :mod:`.horizon`.
"""

from __future__ import annotations

import math

import numpy as np

from .results import Analysis

__all__ = [
    "bootstrap_slopes",
    "curve_slopes",
    "fit_power_law",
    "group_curves",
    "percentile",
    "ratio",
    "task_columns",
    "interval_trend",
]


def interval_trend(low: float, high: float) -> str | None:
    """``rises`` / ``falls`` when the interval excludes 0, ``none`` when it holds it; None without one."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    if low > 0:
        return "rises"
    if high < 0:
        return "falls"
    return "none"


def fit_power_law(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, int]:
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


def ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def group_curves(
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
    incoherence_g = ratio(sums(task["variance"]), sums(task["error"]))
    diversity = 1.0 - ratio(sums(task["same_pairs"]), sums(task["pairs"]))
    return length, incoherence_g, diversity


def curve_slopes(length: np.ndarray, incoherence_g: np.ndarray, diversity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of (log-log incoherence slope, diversity slope per doubling of length)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = (length > 0) & (incoherence_g > 0)
        log_x = np.where(positive, np.log(np.where(positive, length, 1.0)), np.nan)
        log_y = np.where(positive, np.log(np.where(positive, incoherence_g, 1.0)), np.nan)
        log2_x = np.where(length > 0, np.log2(np.where(length > 0, length, 1.0)), np.nan)
    return _row_slopes(log_x, log_y), _row_slopes(log2_x, diversity)


#: Bootstrap index cells drawn at once (B × tasks), to bound memory on large task sets.
_CHUNK_CELLS = 2_000_000


def bootstrap_slopes(
    task: dict[str, np.ndarray], groups: int, n_boot: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = task["length"].size
    rows = max(1, _CHUNK_CELLS // size)
    slope, diversity = np.empty(n_boot), np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        index = rng.integers(0, size, size=(stop - start, size))
        slope[start:stop], diversity[start:stop] = curve_slopes(*group_curves(task, index, groups))
    return slope, diversity


def percentile(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def task_columns(whole: Analysis) -> dict[str, np.ndarray]:
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
