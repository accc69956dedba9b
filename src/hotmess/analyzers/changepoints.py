"""Change points in a series of windows: when did behaviour change, within tasks?

Runs fall in windows ``0..W−1`` (in time order); each run has a task and an outcome cluster.
For a split before window ``s`` (windows ``< s`` against ``≥ s``), the **within-task multinomial
likelihood-ratio statistic** sums one G-test per task over its clusters::

    G(s) = Σ_task 2 Σ_side Σ_cluster n·log(n / E),   E = n_side · n_cluster / n_task

so a task's outcomes are compared only with the same task's outcomes; a shift in the mix of
tasks (more of task A after s, each task behaving as before) adds nothing. Each split is scored
by ``Z(s) = (G(s) − df(s)) / √(2·df(s))``, df(s) = Σ over the tasks seen on both sides of
(clusters of that task − 1): G's null mean and spread, so splits near the ends, where few tasks
are seen on both sides, are not favoured.

**Calibration.** The scan's statistic is ``max_s Z(s)``; its p-value is a stratified
permutation test of "within each task, the runs' outcomes are exchangeable across windows":
outcomes are shuffled among the runs of each task (each window keeps its runs and its mix of
tasks), ``p = (1 + #{max Z* ≥ max Z}) / (1 + n_perm)``.

**Several changes.** Binary segmentation: the best split of the whole series is tested; when
significant, each side is scanned again (its own permutations), and so on, down to segments of
``min_size`` windows. Under no change at all, the first test is the only one that can flag, so
the chance of any false change point is ``alpha`` (the family-wise error rate over everything
flagged; with several groups the first tests share ``alpha`` by Bonferroni).

**Location.** The scan *tests* with Z (the split where a change is most surprising) and
*locates* with G: the change is at the allowed split with the largest G (the likelihood's
maximum); its interval is the contiguous set of splits whose G is within ``chi2(1).ppf(confidence)`` of that
maximum (a profile-likelihood set; approximate: its coverage is not yet measured).

Why not ``ruptures``: its costs are per-signal (mean shifts, kernels, a penalty chosen by the
user), with no stratification by task and no calibrated p-value; the scan here is a few numpy
lines over a (windows × clusters) count table, and the permutation test gives the error level
the rest of hotmess reports.

:func:`mix_change_points` runs the same scan on the task of each run (no strata): it finds
where the *traffic* changed, which is reported as a mix shift, never as a behaviour change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import chi2

__all__ = ["ChangePoint", "behaviour_change_points", "mix_change_points", "split_statistics"]

MIN_SIZE = 2  # windows on each side of a split (a single window is too noisy to call a segment)


@dataclass(frozen=True)
class ChangePoint:
    """A change before ``window`` (the index of the first window after it), located in
    ``[low, high]``; ``p_value`` from the permutation scan of its segment ``[start, stop)``."""

    window: int
    low: int
    high: int
    p_value: float
    statistic: float
    start: int
    stop: int


def split_statistics(
    window: np.ndarray, stratum: np.ndarray, code: np.ndarray, n_windows: int, n_codes: int, n_strata: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(G, Z)`` for every split ``s = 1..n_windows−1`` (index ``s − 1``), from one assignment
    of codes to runs. ``code`` values are global (one per (stratum, cluster) pair); ``stratum``
    of a code is given by the caller through ``stratum`` per run."""
    counts = np.bincount(window * n_codes + code, minlength=n_windows * n_codes).reshape(n_windows, n_codes)
    before = np.cumsum(counts, axis=0)[:-1]  # (W−1, C): counts in windows < s
    total = counts.sum(axis=0)
    after = total[None, :] - before
    code_stratum = np.zeros(n_codes, dtype=np.int64)
    code_stratum[code] = stratum
    # per stratum totals on each side, per split
    onehot = np.zeros((n_codes, n_strata))
    onehot[np.arange(n_codes), code_stratum] = 1.0
    before_s = before @ onehot  # (W−1, S)
    after_s = after @ onehot
    n_s = before_s + after_s
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n_s > 0, 1.0 / n_s, 0.0)  # 1 / n_task
        e_before = before_s[:, code_stratum] * total[None, :] * share[:, code_stratum]
        e_after = after_s[:, code_stratum] * total[None, :] * share[:, code_stratum]
        g_before = np.where(before > 0, before * np.log(before / e_before), 0.0)
        g_after = np.where(after > 0, after * np.log(after / e_after), 0.0)
    g = 2.0 * (g_before + g_after).sum(axis=1)
    # df: per stratum seen on both sides, (clusters of the stratum − 1)
    clusters_per_stratum = np.bincount(code_stratum[total > 0], minlength=n_strata)
    both = (before_s > 0) & (after_s > 0)
    df = (both * np.maximum(clusters_per_stratum - 1, 0)[None, :]).sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(df > 0, (g - df) / np.sqrt(2.0 * df), -np.inf)
    return np.maximum(g, 0.0), z


def _scan(
    window: np.ndarray, stratum: np.ndarray, code: np.ndarray, start: int, stop: int,
    n_codes: int, n_strata: int, n_perm: int, rng: np.random.Generator, min_size: int,
) -> tuple[float, float, np.ndarray] | None:
    """For windows ``[start, stop)``: the permutation p-value of the largest Z, that Z, and
    G at every split (−inf where a side would have fewer than ``min_size`` windows)."""
    if stop - start < 2 * min_size:
        return None
    inside = (window >= start) & (window < stop)
    w, s, c = window[inside] - start, stratum[inside], code[inside]
    if len(np.unique(c)) < 2:
        return None
    n_w = stop - start
    g, z = split_statistics(w, s, c, n_w, n_codes, n_strata)
    allowed = np.zeros(n_w - 1, dtype=bool)
    allowed[min_size - 1 : n_w - min_size] = True  # split s keeps min_size windows each side
    if not np.isfinite(z[allowed]).any():
        return None
    z_allowed = np.where(allowed, z, -np.inf)
    observed = float(z_allowed.max())
    # Stratified shuffles: outcomes move between runs of the same stratum only.
    order = np.argsort(s, kind="stable")
    s_sorted, c_sorted = s[order], c[order]
    exceed = 0
    for _ in range(n_perm):
        shuffled = np.lexsort((rng.random(len(s_sorted)), s_sorted))  # a random order within strata
        perm_codes = np.empty_like(c)
        perm_codes[order] = c_sorted[shuffled]
        _, z_perm = split_statistics(w, s, perm_codes, n_w, n_codes, n_strata)
        if np.max(np.where(allowed, z_perm, -np.inf)) >= observed - 1e-12:
            exceed += 1
    p = (1 + exceed) / (1 + n_perm)
    return p, observed, np.where(allowed, g, -np.inf)


def _segment(
    window: np.ndarray, stratum: np.ndarray, code: np.ndarray, n_windows: int, n_codes: int,
    n_strata: int, *, alpha: float, n_perm: int, rng: np.random.Generator, confidence: float,
    min_size: int, max_changes: int,
) -> list[ChangePoint]:
    found: list[ChangePoint] = []
    pending = [(0, n_windows)]
    threshold = float(chi2.ppf(confidence, 1))
    while pending and len(found) < max_changes:
        start, stop = pending.pop(0)
        scanned = _scan(window, stratum, code, start, stop, n_codes, n_strata, n_perm, rng, min_size)
        if scanned is None:
            continue
        p, statistic, g = scanned
        if p > alpha:
            continue
        # profile-likelihood set of the location, contiguous around the maximum of G
        peak = int(np.argmax(g))  # g is −inf at splits too near the segment's ends
        close = g >= g[peak] - threshold
        low = high = peak
        while low > 0 and close[low - 1]:
            low -= 1
        while high < len(g) - 1 and close[high + 1]:
            high += 1
        split = peak + 1 + start
        found.append(ChangePoint(window=split, low=low + 1 + start, high=high + 1 + start,
                                 p_value=p, statistic=statistic, start=start, stop=stop))
        pending += [(start, split), (split, stop)]
    return sorted(found, key=lambda c: c.window)


def behaviour_change_points(
    window: Any, task: Any, cluster: Any, n_windows: int, *, alpha: float = 0.05, n_perm: int = 999,
    seed: int | None = 0, confidence: float = 0.95, min_size: int = MIN_SIZE, max_changes: int = 5,
) -> list[ChangePoint]:
    """Where the outcome-cluster distribution changed within tasks (module docstring).

    ``window``: each run's window index (0..n_windows−1); ``task``: its task (any hashable);
    ``cluster``: its outcome key (compared within the task only).
    """
    window = np.asarray(window, dtype=np.int64)
    task = np.asarray(task, dtype=object).astype(str)
    tasks, stratum = np.unique(task, return_inverse=True)
    pairs = np.char.add(np.char.add(task, "\x00"), np.asarray(cluster, dtype=object).astype(str))
    _, code = np.unique(pairs, return_inverse=True)
    if not len(window):
        return []
    return _segment(window, stratum.astype(np.int64), code.astype(np.int64), n_windows, int(code.max()) + 1,
                    len(tasks), alpha=alpha, n_perm=n_perm, rng=np.random.default_rng(seed),
                    confidence=confidence, min_size=min_size, max_changes=max_changes)


def mix_change_points(
    window: Any, task: Any, n_windows: int, *, alpha: float = 0.05, n_perm: int = 999,
    seed: int | None = 0, confidence: float = 0.95, min_size: int = MIN_SIZE, max_changes: int = 5,
) -> list[ChangePoint]:
    """Where the mix of tasks changed (the same scan with one stratum: the task is the outcome)."""
    window = np.asarray(window, dtype=np.int64)
    _, code = np.unique(np.asarray(task, dtype=object).astype(str), return_inverse=True)
    if not len(window):
        return []
    return _segment(window, np.zeros(len(window), dtype=np.int64), code.astype(np.int64), n_windows,
                    int(code.max()) + 1, 1, alpha=alpha, n_perm=n_perm, rng=np.random.default_rng(seed),
                    confidence=confidence, min_size=min_size, max_changes=max_changes)
