"""Incoherence over a set of tasks: the share of error that is variance, with an interval over tasks.

    incoherence = R = Σ_i variance_i / Σ_i error_i        (a ratio of sums over tasks i)

not a mean of per-task ratios: a task with more error weighs more. A task with zero error
still counts: it adds 0 to both sums (variance ≤ error) but is one of the T tasks the interval
is computed over. Tasks whose error or variance is unknown (nan: no reference, a single run)
are left out.

**Interval** (``interval=``), over the T tasks as a sample from the tasks the agent could be given:

- ``"jackknife"`` (default): Student's t on the logit scale with the jackknife standard error
  over tasks, ``logit R ± t_{T−1, (1+c)/2} · SE_J / (R (1 − R))``, mapped back, where
  ``SE_J² = (T − 1)/T · Σ_i (R_(i) − R̄_(·))²`` and ``R_(i)`` is the ratio of sums without task i
  (the small-sample form of the ratio estimator's linearisation
  ``SE² = Σ_i (v_i − R e_i)² / (Σ e)²``). The logit keeps the interval inside (0, 1) and lets it
  lean away from the bound it is near, where the sampling distribution of R is skewed. When R is
  0 or 1 (or SE_J is 0), the interval is R ± t·SE_J clipped to [0, 1]. Simulated against
  populations with known incoherence (``bench/stats_coverage.py``, BENCHMARKS.md), it covers
  0.93–0.96 at 40 tasks with 2 to 30 runs each, against 0.87–0.94 for the plain linearised
  interval, 0.87–0.94 for the percentile bootstrap and BCa of the same figures, and 0.00–0.89
  for the plug-in percentile bootstrap (it resamples values already biased low). No resampling:
  the same data always give the same interval.
- ``"bootstrap"``: the percentile bootstrap over tasks: ``n_boot`` resamples of the tasks with
  replacement, drawn as one ``numpy.random.default_rng(seed).integers(0, T, (n_boot, T))``
  matrix (generated in row chunks to bound memory, which yields the same numbers), the ratio of
  sums in each; resamples whose Σ error is 0 are dropped.

``n_boot=0`` asks for no interval at all (either method).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from hotmess.errors import AnalysisError
from hotmess.results import Result

from .common import check_confidence, check_n_boot, json_float

__all__ = [
    "INTERVALS",
    "Incoherence",
    "IncoherenceDifference",
    "incoherence",
    "incoherence_difference",
]

#: Interval methods of :func:`incoherence` and :func:`incoherence_difference`.
INTERVALS = ("jackknife", "bootstrap")

_CHUNK_CELLS = 4_000_000  # bootstrap index cells generated at once (32 MB of int64)


@dataclass(frozen=True)
class Incoherence(Result):
    """``value = Σ variance / Σ error`` with an interval over tasks (``interval``: its method).

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
    interval: str = "jackknife"


@dataclass(frozen=True)
class IncoherenceDifference(Result):
    """``value = incoherence(a) − incoherence(b)`` with an interval (see :func:`incoherence_difference`).

    ``paired``: the two sides are the same tasks, compared task by task. ``p_value`` is two-sided:
    from Student's t for the linearised interval; for the bootstrap
    ``min(1, 2·min(P*(d ≤ 0), P*(d ≥ 0)))`` over the resampled differences (a rough guide).
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
    paired: bool = False
    interval: str = "jackknife"

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.label_a,
            "b": self.label_b,
            "paired": bool(self.paired),
            "interval": self.interval,
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
        raise AnalysisError(
            f"variance and error must be 1-D (one per task), got {v.shape} and {e.shape}"
        )
    if v.shape != e.shape:
        raise AnalysisError(f"variance has {v.size} tasks but error has {e.size}")
    keep = np.isfinite(v) & np.isfinite(e)
    v, e = v[keep], e[keep]
    if (v < 0).any() or (e < 0).any():
        raise AnalysisError("variance and error must be non-negative")
    tol = 1e-9 * np.maximum(1.0, e)
    if (v > e + tol).any():
        raise AnalysisError("a task has variance > error; variance is one part of error")
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


def _check_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise AnalysisError(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    return interval


def _jackknife_se(v: np.ndarray, e: np.ndarray) -> float:
    """Jackknife standard error of Σv/Σe over T ≥ 2 tasks (nan for fewer). Where leaving a task
    out leaves no error at all (one task holds all of it), the linearisation's own form."""
    t = v.size
    if t < 2:
        return float("nan")
    rest = e.sum() - e
    if (rest <= 0).any():
        ratio = v.sum() / e.sum()
        return float(np.sqrt((v - ratio * e) @ (v - ratio * e) * t / (t - 1)) / e.sum())
    left_out = (v.sum() - v) / rest
    return float(np.sqrt((t - 1) / t * ((left_out - left_out.mean()) ** 2).sum()))


def _jackknife_interval(value: float, se: float, t_quantile: float) -> tuple[float, float]:
    if not np.isfinite(se * t_quantile):
        return float("nan"), float("nan")
    if 0.0 < value < 1.0 and se > 0:
        half = t_quantile * se / (value * (1.0 - value))
        centre = np.log(value / (1.0 - value))
        return float(1 / (1 + np.exp(-(centre - half)))), float(1 / (1 + np.exp(-(centre + half))))
    return max(0.0, value - t_quantile * se), min(1.0, value + t_quantile * se)


def _t_quantile(confidence: float, df: float) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2.0, df)) if df >= 1 else float("nan")


def incoherence(
    variance: Any,
    error: Any,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: str = "brier",
    interval: str = "jackknife",
) -> Incoherence:
    """Incoherence of a set of tasks: ``Σ_i variance_i / Σ_i error_i`` with an interval over tasks.

    Parameters
    ----------
    variance, error : one value per task (tasks where either is nan are left out; tasks with
        error 0 count in the sums).
    n_boot : bootstrap resamples of the tasks for ``interval="bootstrap"``; 0: no interval.
    confidence : coverage of the interval.
    seed : seed of ``numpy.random.default_rng`` for the bootstrap (same seed, same interval).
    method : the decomposition the values came from (reported as is).
    interval : ``"jackknife"`` (default) or ``"bootstrap"`` (module docstring).

    Example: variance (0.5, 0.3, 0), error (1, 0.5, 0) → R = (0.5 + 0.3) / (1 + 0.5) = 0.5333.
    Leaving each task out: 0.3/0.5 = 0.6, 0.5/1 = 0.5, 0.8/1.5 = 0.5333; SE_J = √(2/3 · 0.00519)
    = 0.0588; on the logit scale 0.1335 ± 4.303 · 0.0588 / (0.5333 · 0.4667) = 0.1335 ± 1.017,
    mapped back: [0.293, 0.759].
    """
    n_boot = check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    interval = _check_interval(interval)
    v, e = _clean(variance, error)
    reason = _undefined_reason(v, e)
    nan = float("nan")
    if reason is not None:
        return Incoherence(
            nan, nan, nan, method, int(v.size), confidence, n_boot, 0,
            float(v.sum()), float(e.sum()), reason, interval,
        )
    value = float(v.sum() / e.sum())
    low = high = nan
    used = 0
    if n_boot and interval == "jackknife":
        low, high = _jackknife_interval(
            value, _jackknife_se(v, e), _t_quantile(confidence, v.size - 1)
        )
    elif n_boot:
        sum_v, sum_e = _bootstrap_sums(v, e, n_boot, np.random.default_rng(seed))
        ok = sum_e > 0
        used = int(ok.sum())
        low, high = _interval(sum_v[ok] / sum_e[ok], confidence)
    return Incoherence(
        value, low, high, method, int(v.size), confidence, n_boot, used,
        float(v.sum()), float(e.sum()), None, interval,
    )


def _pair(group: Any, name: str) -> tuple[Any, Any]:
    if hasattr(group, "variance") and hasattr(group, "error"):
        return group.variance, group.error
    try:
        variance, error = group
    except (TypeError, ValueError):
        raise AnalysisError(
            f"{name} must be a (variance, error) pair of per-task arrays or have .variance "
            "and .error (e.g. a TaskDecompositions)"
        ) from None
    return variance, error


def _difference_se(
    va: np.ndarray, ea: np.ndarray, vb: np.ndarray, eb: np.ndarray, paired: bool
) -> tuple[float, float]:
    """Jackknife standard error and degrees of freedom of ``R_a − R_b`` (see
    :func:`incoherence_difference`): leave-one-task-out of both sides when paired, else each
    side's own with Welch–Satterthwaite degrees of freedom."""
    nan = float("nan")
    if paired:
        t = va.size
        rest_a, rest_b = ea.sum() - ea, eb.sum() - eb
        if t < 2 or (rest_a <= 0).any() or (rest_b <= 0).any():
            se = nan
        else:
            d = (va.sum() - va) / rest_a - (vb.sum() - vb) / rest_b
            se = float(np.sqrt((t - 1) / t * ((d - d.mean()) ** 2).sum()))
        return se, float(t - 1)
    se_a, se_b = _jackknife_se(va, ea), _jackknife_se(vb, eb)
    se = float(np.hypot(se_a, se_b))
    df = se**4 / (se_a**4 / max(va.size - 1, 1) + se_b**4 / max(vb.size - 1, 1)) if se > 0 else nan
    return se, df


def incoherence_difference(
    a: Any,
    b: Any,
    *,
    paired: bool = False,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: str = "brier",
    labels: tuple[str, str] = ("a", "b"),
    interval: str = "jackknife",
) -> IncoherenceDifference:
    """Difference ``D = R_a − R_b`` of the incoherence of two groups of tasks, with an interval.

    ``a`` and ``b`` are ``(variance, error)`` pairs of per-task arrays (or objects with
    ``.variance`` and ``.error``).

    ``paired=True``: entry i of ``a`` and of ``b`` is the same task (two agents, or two halves of
    the runs, on shared tasks); a task unknown on either side is left out of both. Each task's
    own difficulty then cancels: the jackknife leaves task i out of both sides at once,
    ``D_(i) = R_a(i) − R_b(i)``, ``SE² = (T−1)/T Σ (D_(i) − D̄)²``, with t_{T−1}; the bootstrap
    resamples the same tasks on both sides. ``paired=False``: the sides are independent samples
    of tasks, ``SE² = SE_a² + SE_b²`` (each side's jackknife) with Welch–Satterthwaite degrees of
    freedom; the bootstrap resamples group a with ``default_rng(seed)`` and group b with
    ``default_rng([seed, 1])``. Bootstrap resamples where either Σ error is 0 are dropped.
    """
    n_boot = check_n_boot(n_boot)
    confidence = check_confidence(confidence)
    interval = _check_interval(interval)
    va, ea = (np.asarray(x, dtype=np.float64) for x in _pair(a, "a"))
    vb, eb = (np.asarray(x, dtype=np.float64) for x in _pair(b, "b"))
    if paired:
        if va.shape != vb.shape or ea.shape != eb.shape:
            raise AnalysisError(
                f"paired groups need one value per shared task on both sides, got {va.size} and {vb.size}"
            )
        both = np.isfinite(va) & np.isfinite(ea) & np.isfinite(vb) & np.isfinite(eb)
        va, ea, vb, eb = va[both], ea[both], vb[both], eb[both]
    va, ea = _clean(va, ea)
    vb, eb = _clean(vb, eb)
    common = dict(n_boot=n_boot, confidence=confidence, method=method, interval=interval)
    inc_a = incoherence(va, ea, seed=seed, **common)
    inc_b = incoherence(vb, eb, seed=None if seed is None else [int(seed), 1], **common)
    nan = float("nan")

    def result(value: float, low: float, high: float, used: int, p: float, reason: str | None):
        return IncoherenceDifference(
            value, low, high, inc_a, inc_b, confidence, n_boot, used, p, labels[0], labels[1],
            reason, bool(paired), interval,
        )

    if inc_a.reason or inc_b.reason:
        reason = "; ".join(
            f"{lab}: {r}" for lab, r in zip(labels, (inc_a.reason, inc_b.reason), strict=True) if r
        )
        return result(nan, nan, nan, 0, nan, reason)
    value = inc_a.value - inc_b.value
    if not n_boot:
        return result(value, nan, nan, 0, nan, None)
    if interval == "jackknife":
        se, df = _difference_se(va, ea, vb, eb, paired)
        if not np.isfinite(se) or not np.isfinite(df):
            return result(value, nan, nan, 0, nan, None)
        if se == 0:
            return result(value, value, value, 0, 0.0 if value else 1.0, None)
        half = _t_quantile(confidence, df) * se
        p_value = float(2.0 * stats.t.sf(abs(value) / se, df))
        return result(value, value - half, value + half, 0, p_value, None)
    rng_a = np.random.default_rng(seed)
    sva, sea = _bootstrap_sums(va, ea, n_boot, rng_a)
    if paired:
        # the same resampled tasks on both sides: one index matrix, drawn again from the seed
        svb, seb = _bootstrap_sums(vb, eb, n_boot, np.random.default_rng(seed))
    else:
        seed_b = None if seed is None else [int(seed), 1]
        svb, seb = _bootstrap_sums(vb, eb, n_boot, np.random.default_rng(seed_b))
    ok = (sea > 0) & (seb > 0)
    used = int(ok.sum())
    diff = sva[ok] / sea[ok] - svb[ok] / seb[ok]
    low, high = _interval(diff, confidence)
    p_value = float(min(1.0, 2.0 * min(np.mean(diff <= 0), np.mean(diff >= 0)))) if used else nan
    return result(value, low, high, used, p_value, None)
