"""Jensen-Shannon divergence of two windows' outcome distributions, with a permutation p-value.

In :func:`~hotmess.analyzers.drift.drift` each window is compared with the previous one and
with the baseline window (descriptively, not as flags) by the Jensen-Shannon divergence of
their outcome-cluster distributions, base 2 (0 = identical, 1 = disjoint)::

    JS(P, Q) = ½ Σ_k P_k log2(P_k / M_k) + ½ Σ_k Q_k log2(Q_k / M_k),   M = (P + Q) / 2

with a permutation p-value of "the two windows' runs are exchangeable" (window labels of the
pooled runs shuffled up to ``n_perm`` times, ``p = (1 + #{JS* ≥ JS}) / (1 + n_perm)``, stopping
once ``STOP_AFTER`` (20) shuffles reach the observed JS at shuffle L, ``p = 20 / L``: Besag &
Clifford's sequential p-value). These p-values are per comparison, uncorrected: many windows
give small ones by chance, which is why the flags come from the scan. Shuffling labels leaves
the pooled counts fixed, so a shuffle's first-window counts are a multivariate hypergeometric
draw (numpy), with every pair seen once in the pool collapsed into one colour.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hotmess.errors import AnalysisError

__all__ = ["STOP_AFTER", "js_divergence", "js_permutation_test"]

_CHUNK_CELLS = 4_000_000  # permutation-matrix cells drawn at once (32 MB of int64)
#: Shuffles reaching the observed JS after which a test stops (Besag-Clifford); see the test.
STOP_AFTER = 20
_FIRST_BATCH = 64


def js_divergence(a: Any, b: Any) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two count (or probability) vectors."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise AnalysisError(f"a and b must be 1-D of one length, got {a.shape} and {b.shape}")
    if a.sum() <= 0 or b.sum() <= 0:
        return float("nan")
    return float(_js_rows(a[None, :], b[None, :], a.sum(), b.sum())[0])


def _js_rows(a: np.ndarray, b: np.ndarray, n_a: float, n_b: float) -> np.ndarray:
    """JS divergence of each row pair of count matrices (rows sum to n_a and n_b)."""
    p = a / n_a
    q = b / n_b
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        tp = np.where(p > 0, p * np.log2(p / m), 0.0)
        tq = np.where(q > 0, q * np.log2(q / m), 0.0)
    return np.clip(0.5 * (tp.sum(axis=1) + tq.sum(axis=1)), 0.0, 1.0)


def js_permutation_test(
    codes_a: np.ndarray,
    codes_b: np.ndarray,
    n_perm: int,
    rng: np.random.Generator,
    stop_after: int | None = STOP_AFTER,
) -> tuple[float, float]:
    """(JS divergence, permutation p-value) of two samples of category codes.

    Shuffling the labels of the pooled runs keeps the pooled count of every category; sample a's
    counts under a shuffle are multivariate hypergeometric. Categories seen once in the pool are
    one colour: a singleton in a adds ``½/n_a`` to JS, in b ``½/n_b``, whichever it is.

    ``p = (1 + #{JS* ≥ JS}) / (1 + n_perm)``; with ``stop_after = h``, shuffles stop at the h-th
    one reaching the observed JS, at shuffle L, and ``p = h / L`` (Besag & Clifford's sequential
    p-value, as valid as the full one; it only stops early where p is far from significant).
    """
    n_a, n_b = len(codes_a), len(codes_b)
    if n_a == 0 or n_b == 0:
        return float("nan"), float("nan")
    cats, inverse = np.unique(np.concatenate([codes_a, codes_b]), return_inverse=True)
    k = len(cats)
    a = np.bincount(inverse[:n_a], minlength=k)
    b = np.bincount(inverse[n_a:], minlength=k)
    observed = float(_js_rows(a[None, :], b[None, :], n_a, n_b)[0])
    if n_perm == 0:
        return observed, float("nan")
    pooled = a + b
    single = pooled == 1
    n_single = int(single.sum())
    colors = pooled[~single]
    if n_single:
        colors = np.append(colors, n_single)
    total = int(colors.sum())
    # 'count' walks the pooled runs, 'marginals' the colours: pick the shorter walk.
    method = "count" if total <= 4 * len(colors) else "marginals"
    max_rows = max(1, _CHUNK_CELLS // max(len(colors), 1))
    exceed = done = 0
    size = _FIRST_BATCH if stop_after else max_rows
    while done < n_perm:
        size = min(size, max_rows, n_perm - done)
        draw = rng.multivariate_hypergeometric(colors, n_a, size=size, method=method)
        if n_single:
            s = draw[:, -1].astype(np.float64)
            multi_a = draw[:, :-1]
        else:
            s = np.zeros(size)
            multi_a = draw
        js = (
            _js_rows(multi_a, colors[: multi_a.shape[1]] - multi_a, n_a, n_b)
            + 0.5 * (s / n_a + (n_single - s) / n_b)
        )
        hits = np.flatnonzero(js >= observed - 1e-12)
        if stop_after and exceed + len(hits) >= stop_after:
            stopped_at = done + int(hits[stop_after - exceed - 1]) + 1
            return observed, stop_after / stopped_at
        exceed += len(hits)
        done += size
        size *= 2
    return observed, (1 + exceed) / (1 + n_perm)
