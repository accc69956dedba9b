"""pass^k and pass@k (tau-bench): unbiased estimators from n runs with c successes per task.

    pass^k = E_task [ C(c, k) / C(n, k) ]        all k runs drawn without replacement succeed
    pass@k = E_task [ 1 − C(n − c, k) / C(n, k) ] at least one of the k runs succeeds

Computed as products of ratios, ``C(c, k) / C(n, k) = Π_{j<k} (c − j) / (n − j)``, which is the
exact ratio of binomial coefficients with every factor in [0, 1] (no overflow, no log-gamma
cancellation; relative rounding error ≤ k·2⁻⁵³). Every k asked for is averaged over the same
tasks, those with at least max(k) runs, so pass^k never rises with k and the figures for
different k are comparable; ``k=None`` asks for 1..min(n), which uses every task.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError

__all__ = ["pass_at_k", "pass_hat_k", "pass_ratios"]


def _validate(n: Any, c: Any) -> tuple[np.ndarray, np.ndarray]:
    n_arr = np.asarray(n)
    c_arr = np.asarray(c)
    if n_arr.ndim != 1 or c_arr.ndim != 1:
        raise AnalysisError(f"n and c must be 1-D (one per task), got {n_arr.shape} and {c_arr.shape}")
    if n_arr.shape != c_arr.shape:
        raise AnalysisError(f"n has {n_arr.size} tasks but c has {c_arr.size}")
    for name, a in (("n", n_arr), ("c", c_arr)):
        if a.size and not np.all(np.asarray(a, dtype=np.float64) == np.round(a.astype(np.float64))):
            raise AnalysisError(f"{name} must hold whole numbers")
    n_arr = n_arr.astype(np.int64)
    c_arr = c_arr.astype(np.int64)
    if (n_arr < 1).any():
        raise AnalysisError("every task needs n >= 1 runs")
    if (c_arr < 0).any() or (c_arr > n_arr).any():
        raise AnalysisError("successes c must satisfy 0 <= c <= n")
    return n_arr, c_arr


def _ks(k: int | Iterable[int] | None, n: np.ndarray) -> list[int]:
    if k is None:
        return list(range(1, int(n.min()) + 1)) if n.size else []
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    out = []
    for value in ks:
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise AnalysisError(f"k must be a positive integer, got {value!r}")
        out.append(int(value))
    return sorted(set(out))


def pass_ratios(n: Any, c: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per task ``C(c, k)/C(n, k)`` and ``C(n − c, k)/C(n, k)`` (nan where n < k)."""
    n_arr, c_arr = _validate(n, c)
    k = _ks(k, n_arr)[0]
    all_pass, none_pass = _ratio_tables(n_arr, c_arr, k)
    return all_pass[:, k - 1], none_pass[:, k - 1]


def _ratio_tables(n: np.ndarray, c: np.ndarray, k_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Column k−1: C(c, k)/C(n, k) and C(n − c, k)/C(n, k) for k = 1..k_max (nan where n < k)."""
    j = np.arange(k_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = (n[:, None] - j).astype(np.float64)
        all_pass = np.cumprod(np.clip(c[:, None] - j, 0, None) / denominator, axis=1)
        none_pass = np.cumprod(np.clip((n - c)[:, None] - j, 0, None) / denominator, axis=1)
    short = n[:, None] < j + 1
    all_pass[short] = np.nan
    none_pass[short] = np.nan
    return all_pass, none_pass


def _estimate(n: Any, c: Any, k: int | Iterable[int] | None, at: bool) -> dict[int, float]:
    n_arr, c_arr = _validate(n, c)
    ks = _ks(k, n_arr)
    if not ks:
        return {}
    all_pass, none_pass = _ratio_tables(n_arr, c_arr, max(ks))
    table = 1.0 - none_pass if at else all_pass
    out: dict[int, float] = {}
    ok = n_arr >= max(ks)
    for kk in ks:
        column = table[:, kk - 1]
        out[kk] = float(column[ok].mean()) if ok.any() else float("nan")
    return out


def pass_hat_k(n: Any, c: Any, k: int | Iterable[int] | None = None) -> dict[int, float]:
    """pass^k = mean over tasks (with n ≥ max k asked) of C(c, k) / C(n, k).

    ``n`` runs and ``c`` successes per task; ``k`` an int, several, or ``None`` for 1..min(n).
    A k no task reaches maps to nan. Example: n = 4, c = 2: pass^1 = 1/2, pass^2 = 1/6, pass^3 = 0.
    """
    return _estimate(n, c, k, at=False)


def pass_at_k(n: Any, c: Any, k: int | Iterable[int] | None = None) -> dict[int, float]:
    """pass@k = mean over tasks (with n ≥ max k asked) of 1 − C(n − c, k) / C(n, k).

    Example: n = 4, c = 1: pass@1 = 1/4, pass@2 = 1 − C(3,2)/C(4,2) = 1/2, pass@4 = 1.
    """
    return _estimate(n, c, k, at=True)
