"""Incoherence over a set of tasks: the share of error that is variance, with a bootstrap CI.

    incoherence = Σ_i variance_i / Σ_i error_i        (a ratio of sums over tasks i)

not a mean of per-task ratios: a task with more error weighs more. A task with zero error
still counts: it adds 0 to both sums (variance ≤ error) but is one of the tasks the bootstrap
resamples. Tasks whose error is unknown (nan: no reference) are left out.

The confidence interval is a percentile bootstrap over tasks: ``n_boot`` resamples of the tasks
with replacement, drawn as one ``numpy.random.default_rng(seed).integers(0, T, (n_boot, T))``
matrix (generated in row chunks to bound memory, which yields the same numbers), the ratio of
sums in each; resamples whose Σ error is 0 are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import check_confidence, check_n_boot, json_float

__all__ = ["Incoherence", "IncoherenceDifference", "incoherence", "incoherence_difference"]

_CHUNK_CELLS = 4_000_000  # bootstrap index cells generated at once (32 MB of int64)


@dataclass(frozen=True)
class Incoherence:
    """``value = Σ variance / Σ error`` with a percentile bootstrap interval over tasks.

    ``value`` (and the interval) is nan when it is undefined; ``reason`` then says why.
    """

    value: float
    ci_low: float
    ci_high: float
    method: str
    n_tasks: int
    confidence: float = 0.95
    n_boot: int = 0
    n_boot_used: int = 0
    sum_variance: float = float("nan")
    sum_error: float = float("nan")
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": json_float(self.value),
            "ci_low": json_float(self.ci_low),
            "ci_high": json_float(self.ci_high),
            "method": self.method,
            "n_tasks": int(self.n_tasks),
            "confidence": float(self.confidence),
            "n_boot": int(self.n_boot),
            "n_boot_used": int(self.n_boot_used),
            "sum_variance": json_float(self.sum_variance),
            "sum_error": json_float(self.sum_error),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class IncoherenceDifference:
    """``value = incoherence(a) − incoherence(b)`` with a bootstrap interval.

    ``p_value`` is the two-sided bootstrap p-value ``min(1, 2·min(P*(d ≤ 0), P*(d ≥ 0)))`` over the
    resampled differences ``d`` (a rough guide, not an exact test).
    """

    value: float
    ci_low: float
    ci_high: float
    a: Incoherence
    b: Incoherence
    confidence: float = 0.95
    n_boot: int = 0
    n_boot_used: int = 0
    p_value: float = float("nan")
    label_a: str = "a"
    label_b: str = "b"
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.label_a,
            "b": self.label_b,
            "value": json_float(self.value),
            "ci_low": json_float(self.ci_low),
            "ci_high": json_float(self.ci_high),
            "p_value": json_float(self.p_value),
            "confidence": float(self.confidence),
            "n_boot": int(self.n_boot),
            "n_boot_used": int(self.n_boot_used),
            "incoherence_a": json_float(self.a.value),
            "incoherence_b": json_float(self.b.value),
            "reason": self.reason,
        }


def _clean(variance: Any, error: Any) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(variance, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    if v.ndim != 1 or e.ndim != 1:
        raise ValueError(
            f"variance and error must be 1-D (one per task), got {v.shape} and {e.shape}"
        )
    if v.shape != e.shape:
        raise ValueError(f"variance has {v.size} tasks but error has {e.size}")
    keep = np.isfinite(v) & np.isfinite(e)
    v, e = v[keep], e[keep]
    if (v < 0).any() or (e < 0).any():
        raise ValueError("variance and error must be non-negative")
    tol = 1e-9 * np.maximum(1.0, e)
    if (v > e + tol).any():
        raise ValueError("a task has variance > error; variance is one part of error")
    return v, e


def _bootstrap_sums(
    v: np.ndarray, e: np.ndarray, n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Σ variance and Σ error of each of ``n_boot`` resamples of the T tasks."""
    t = len(v)
    sum_v = np.empty(n_boot)
    sum_e = np.empty(n_boot)
    rows = max(1, _CHUNK_CELLS // max(t, 1))
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        index = rng.integers(0, t, size=(stop - start, t))
        sum_v[start:stop] = v[index].sum(axis=1)
        sum_e[start:stop] = e[index].sum(axis=1)
    return sum_v, sum_e


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    if samples.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _undefined_reason(v: np.ndarray, e: np.ndarray) -> str | None:
    if v.size == 0:
        return "no task has a known error (no reference or success): incoherence is undefined"
    if e.sum() == 0:
        return "total error is 0 (every run of every task is correct): incoherence is undefined"
    return None


def incoherence(
    variance: Any,
    error: Any,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: str = "brier",
) -> Incoherence:
    """Incoherence of a set of tasks: ``Σ_i variance_i / Σ_i error_i`` with a bootstrap CI.

    Parameters
    ----------
    variance, error : one value per task (tasks where either is nan are left out; tasks with
        error 0 count in the sums).
    n_boot : bootstrap resamples of the tasks (0: no interval).
    confidence : coverage of the percentile interval.
    seed : seed of ``numpy.random.default_rng`` (the same seed gives the same interval).
    method : the decomposition the values came from (reported as is).

    Example: variance (0.5, 0.3, 0), error (1, 0.5, 0) → (0.5 + 0.3) / (1 + 0.5) = 0.5333.
    """
    n_boot = check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    v, e = _clean(variance, error)
    reason = _undefined_reason(v, e)
    nan = float("nan")
    if reason is not None:
        return Incoherence(
            nan,
            nan,
            nan,
            method,
            int(v.size),
            confidence,
            n_boot,
            0,
            float(v.sum()),
            float(e.sum()),
            reason,
        )
    value = float(v.sum() / e.sum())
    low = high = nan
    used = 0
    if n_boot:
        sum_v, sum_e = _bootstrap_sums(v, e, n_boot, np.random.default_rng(seed))
        ok = sum_e > 0
        used = int(ok.sum())
        low, high = _interval(sum_v[ok] / sum_e[ok], confidence)
    return Incoherence(
        value,
        low,
        high,
        method,
        int(v.size),
        confidence,
        n_boot,
        used,
        float(v.sum()),
        float(e.sum()),
        None,
    )


def _pair(group: Any, name: str) -> tuple[Any, Any]:
    if hasattr(group, "variance") and hasattr(group, "error"):
        return group.variance, group.error
    try:
        variance, error = group
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a (variance, error) pair of per-task arrays or have .variance "
            "and .error (e.g. a TaskDecompositions)"
        ) from None
    return variance, error


def incoherence_difference(
    a: Any,
    b: Any,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: str = "brier",
    labels: tuple[str, str] = ("a", "b"),
) -> IncoherenceDifference:
    """Difference ``incoherence(a) − incoherence(b)`` of two groups of tasks, with a bootstrap CI.

    ``a`` and ``b`` are ``(variance, error)`` pairs of per-task arrays (or objects with
    ``.variance`` and ``.error``). Each group's tasks are resampled independently: group a with
    ``default_rng(seed)`` (the very resamples :func:`incoherence` uses for it), group b with
    ``default_rng([seed, 1])``; resamples where either Σ error is 0 are dropped. The interval is
    the percentile interval of the resampled differences.
    """
    n_boot = check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    va, ea = _clean(*_pair(a, "a"))
    vb, eb = _clean(*_pair(b, "b"))
    inc_a = incoherence(va, ea, n_boot=n_boot, confidence=confidence, seed=seed, method=method)
    seed_b = None if seed is None else [int(seed), 1]
    inc_b = incoherence(vb, eb, n_boot=n_boot, confidence=confidence, seed=seed_b, method=method)
    nan = float("nan")
    reason = None
    if inc_a.reason or inc_b.reason:
        reason = "; ".join(
            f"{lab}: {r}" for lab, r in zip(labels, (inc_a.reason, inc_b.reason), strict=True) if r
        )
        return IncoherenceDifference(
            nan, nan, nan, inc_a, inc_b, confidence, n_boot, 0, nan, labels[0], labels[1], reason
        )
    value = inc_a.value - inc_b.value
    low = high = p_value = nan
    used = 0
    if n_boot:
        sva, sea = _bootstrap_sums(va, ea, n_boot, np.random.default_rng(seed))
        svb, seb = _bootstrap_sums(vb, eb, n_boot, np.random.default_rng(seed_b))
        ok = (sea > 0) & (seb > 0)
        used = int(ok.sum())
        diff = sva[ok] / sea[ok] - svb[ok] / seb[ok]
        low, high = _interval(diff, confidence)
        if used:
            p_value = float(min(1.0, 2.0 * min(np.mean(diff <= 0), np.mean(diff >= 0))))
    return IncoherenceDifference(
        value,
        low,
        high,
        inc_a,
        inc_b,
        confidence,
        n_boot,
        used,
        p_value,
        labels[0],
        labels[1],
        None,
    )
