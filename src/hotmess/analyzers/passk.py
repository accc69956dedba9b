"""pass^k and pass@k (tau-bench): unbiased estimators from n runs with c successes per task.

    pass^k = E_task [ C(c, k) / C(n, k) ]        all k runs drawn without replacement succeed
    pass@k = E_task [ 1 − C(n − c, k) / C(n, k) ] at least one of the k runs succeeds

Computed as products of ratios, ``C(c, k) / C(n, k) = Π_{j<k} (c − j) / (n − j)``, which is the
exact ratio of binomial coefficients with every factor in [0, 1] (no overflow, no log-gamma
cancellation; relative rounding error ≤ k·2⁻⁵³). Tasks with n < k are left out of that k.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["pass_at_k", "pass_hat_k", "pass_ratios"]


def _validate(n: Any, c: Any) -> tuple[np.ndarray, np.ndarray]:
    n_arr = np.asarray(n)
    c_arr = np.asarray(c)
    if n_arr.ndim != 1 or c_arr.ndim != 1:
        raise ValueError(f"n and c must be 1-D (one per task), got {n_arr.shape} and {c_arr.shape}")
    if n_arr.shape != c_arr.shape:
        raise ValueError(f"n has {n_arr.size} tasks but c has {c_arr.size}")
    for name, a in (("n", n_arr), ("c", c_arr)):
        if a.size and not np.all(np.asarray(a, dtype=np.float64) == np.round(a.astype(np.float64))):
            raise ValueError(f"{name} must hold whole numbers")
    n_arr = n_arr.astype(np.int64)
    c_arr = c_arr.astype(np.int64)
    if (n_arr < 1).any():
        raise ValueError("every task needs n >= 1 runs")
    if (c_arr < 0).any() or (c_arr > n_arr).any():
        raise ValueError("successes c must satisfy 0 <= c <= n")
    return n_arr, c_arr


def _ks(k: int | Iterable[int] | None, n: np.ndarray) -> list[int]:
    if k is None:
        return list(range(1, int(n.min()) + 1)) if n.size else []
    ks = [k] if isinstance(k, (int, np.integer)) else list(k)
    out = []
    for value in ks:
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"k must be a positive integer, got {value!r}")
        out.append(int(value))
    return sorted(set(out))


def pass_ratios(n: Any, c: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per task ``C(c, k)/C(n, k)`` and ``C(n − c, k)/C(n, k)`` (nan where n < k)."""
    n_arr, c_arr = _validate(n, c)
    j = np.arange(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = n_arr[:, None] - j
        all_pass = np.clip((c_arr[:, None] - j) / denominator, 0.0, None).prod(axis=1)
        none_pass = np.clip((n_arr - c_arr)[:, None] - j, 0, None) / denominator
        none_pass = none_pass.prod(axis=1)
    short = n_arr < k
    all_pass[short] = np.nan
    none_pass[short] = np.nan
    return all_pass, none_pass


def pass_hat_k(n: Any, c: Any, k: int | Iterable[int] | None = None) -> dict[int, float]:
    """pass^k = mean over tasks (with n ≥ k) of C(c, k) / C(n, k).

    ``n`` runs and ``c`` successes per task; ``k`` an int, several, or ``None`` for 1..min(n).
    A k no task reaches maps to nan. Example: n = 4, c = 2: pass^1 = 1/2, pass^2 = 1/6, pass^3 = 0.
    """
    n_arr, c_arr = _validate(n, c)
    out: dict[int, float] = {}
    for kk in _ks(k, n_arr):
        ratio, _ = pass_ratios(n_arr, c_arr, kk)
        out[kk] = float(np.nanmean(ratio)) if np.isfinite(ratio).any() else float("nan")
    return out


def pass_at_k(n: Any, c: Any, k: int | Iterable[int] | None = None) -> dict[int, float]:
    """pass@k = mean over tasks (with n ≥ k) of 1 − C(n − c, k) / C(n, k).

    Example: n = 4, c = 1: pass@1 = 1/4, pass@2 = 1 − C(3,2)/C(4,2) = 1/2, pass@4 = 1.
    """
    n_arr, c_arr = _validate(n, c)
    out: dict[int, float] = {}
    for kk in _ks(k, n_arr):
        _, none = pass_ratios(n_arr, c_arr, kk)
        out[kk] = float(np.nanmean(1.0 - none)) if np.isfinite(none).any() else float("nan")
    return out
