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

**Success too.** Beside the clusters, with verdicts given, two statistics of success: the same
G-test per task on (success, failure, no verdict), and the Cochran–Mantel–Haenszel statistic of
success before against after, pooled over tasks (:class:`_MantelHaenszel`; one degree of
freedom, so a fall of success shared by 50 tasks is not diluted over 50). Each is standardised
the same way (CMH: ``(X − 1)/√2``) and the scan takes the largest over splits and statistics.

**Calibration.** The scan's statistic is that maximum; its p-value is a stratified
permutation test of "within each task, the runs' outcomes are exchangeable across windows":
outcomes (cluster and verdict together) are shuffled among the runs of each task (each window
keeps its runs and its mix of tasks), ``p = (1 + #{max Z* ≥ max Z}) / (1 + n_perm)``, the
maximum taken the same way in each shuffle, so looking at three statistics costs no level.

**Several changes.** Binary segmentation: the best split of the whole series is tested at
``alpha``; when significant, each side is scanned again (its own permutations) at half its
parent's level, and so on, down to segments of ``min_size`` windows. Under no change at all the
first test is the only one that can flag, so the chance of any false change point is ``alpha``;
after a real change, the chance of a false one in its two sides is again at most ``alpha``
(with several groups the first tests share ``alpha`` by Bonferroni).

**Location.** The scan *tests* with Z (the split where a change is most surprising) and
*locates* with the G (or CMH X) of the statistic that reached the largest Z: the change is at the
allowed split where it is largest (the likelihood's maximum); its interval is the contiguous set of splits whose G is within ``chi2(1).ppf(confidence)`` of that
maximum (a profile-likelihood set; approximate: its coverage is measured in ``bench/stats_drift.py``).

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

__all__ = ["ChangePoint", "behaviour_change_points", "mix_change_points"]

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


def _xlogx(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


class _Statistic:
    """The G and Z of every split for one way of labelling the runs of a segment.

    Writing f(x) = x·log x, the G statistic of a split is ::

        G(s)/2 = Σ_label [f(before_l) + f(after_l)] − Σ_task [f(before_t) + f(after_t)]
                 − Σ_label f(n_l) + Σ_task f(n_t)

    A stratified shuffle keeps each run's window and task, so only the first sum changes; it is
    a sum over runs of f's increments at each run's rank within its label (in window order),
    so a shuffle costs a sort of the runs, never a (windows × labels) table.
    """

    def __init__(self, window: np.ndarray, stratum: np.ndarray, label: np.ndarray, n_windows: int) -> None:
        self.window, self.n_windows = window, n_windows
        _, label = np.unique(label, return_inverse=True)
        # Labels of 16 bits or fewer make numpy's stable argsort a radix sort: the same order,
        # an order of magnitude faster on a shuffle of 50,000 runs (bench/stats_drift.py).
        self.label = label.astype(np.uint16) if len(label) and label.max() < 2**16 else label
        n_strata = int(stratum.max()) + 1
        by_window = np.bincount(window * n_strata + stratum, minlength=n_windows * n_strata)
        by_window = by_window.reshape(n_windows, n_strata)
        before = np.cumsum(by_window, axis=0)[:-1]
        after = by_window.sum(axis=0)[None, :] - before
        self.label_total = np.bincount(self.label)
        label_stratum = np.zeros(len(self.label_total), dtype=np.int64)
        label_stratum[self.label] = stratum
        self.fixed = (
            -(_xlogx(before).sum(axis=1) + _xlogx(after).sum(axis=1))
            - _xlogx(self.label_total).sum() + _xlogx(by_window.sum(axis=0)).sum()
        )
        labels_per_stratum = np.bincount(label_stratum, minlength=n_strata)
        both = (before > 0) & (after > 0)
        self.df = (both * np.maximum(labels_per_stratum - 1, 0)[None, :]).sum(axis=1).astype(np.float64)
        self.step = np.diff(_xlogx(np.arange(int(self.label_total.max()) + 2)))  # f(k+1) − f(k)

    def statistics(self, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(G, Z)`` per split, for each row of ``runs`` (B, n): run j takes the label of run
        ``runs[b, j]`` (the identity row is the observed series)."""
        labels = self.label[runs]
        b, n = labels.shape
        order = np.argsort(labels, axis=1, kind="stable")  # by label, then window order
        sorted_labels = np.take_along_axis(labels, order, axis=1)
        positions = np.broadcast_to(np.arange(n), (b, n))
        starts = np.ones((b, n), dtype=bool)
        starts[:, 1:] = sorted_labels[:, 1:] != sorted_labels[:, :-1]
        rank_sorted = positions - np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
        rank = np.empty_like(rank_sorted)
        np.put_along_axis(rank, order, rank_sorted, axis=1)
        forward = self.step[rank]  # f(k+1) − f(k): the run joins "before"
        backward = self.step[self.label_total[labels] - 1 - rank]  # ... "after", from the end
        w = self.n_windows
        offsets = (np.arange(b)[:, None] * w + self.window[None, :]).ravel()
        fwd = np.bincount(offsets, weights=forward.ravel(), minlength=b * w).reshape(b, w)
        bwd = np.bincount(offsets, weights=backward.ravel(), minlength=b * w).reshape(b, w)
        a_before = np.cumsum(fwd, axis=1)[:, :-1]
        a_after = np.cumsum(bwd[:, ::-1], axis=1)[:, ::-1][:, 1:]
        g = np.maximum(2.0 * (a_before + a_after + self.fixed[None, :]), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(self.df > 0, (g - self.df) / np.sqrt(2.0 * self.df), -np.inf)
        return g, z


class _MantelHaenszel:
    """The Cochran–Mantel–Haenszel statistic of success before against after each split, over
    tasks: one degree of freedom for a shift of success in the same direction across tasks,
    which the per-task G (one df per task) dilutes when there are many tasks ::

        X(s) = (Σ_t O_t − Σ_t E_t)² / Σ_t V_t,   Z(s) = (X(s) − 1) / √2

    O_t: task t's successes before s; E_t = b_t·S_t/n_t; V_t = b_t·a_t·S_t·(n_t − S_t) / (n_t²·(n_t − 1))
    (b_t, a_t: its runs before and after, S_t its successes). A shuffle within tasks changes only Σ O_t."""

    def __init__(self, window: np.ndarray, stratum: np.ndarray, success: np.ndarray, n_windows: int) -> None:
        self.window, self.n_windows, self.success = window, n_windows, success
        n_strata = int(stratum.max()) + 1
        by_window = np.bincount(window * n_strata + stratum, minlength=n_windows * n_strata)
        before = np.cumsum(by_window.reshape(n_windows, n_strata), axis=0)[:-1].astype(np.float64)
        n_t = np.bincount(stratum, minlength=n_strata).astype(np.float64)
        s_t = np.bincount(stratum, weights=success, minlength=n_strata)
        after = n_t[None, :] - before
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(n_t > 0, s_t / n_t, 0.0)
            spread = np.where(n_t > 1, s_t * (n_t - s_t) / (n_t**2 * (n_t - 1)), 0.0)
        self.expected = (before * share[None, :]).sum(axis=1)
        self.variance = (before * after * spread[None, :]).sum(axis=1)

    def statistics(self, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b = runs.shape[0]
        w = self.n_windows
        offsets = (np.arange(b)[:, None] * w + self.window[None, :]).ravel()
        per_window = np.bincount(offsets, weights=self.success[runs].ravel(), minlength=b * w).reshape(b, w)
        observed = np.cumsum(per_window, axis=1)[:, :-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(self.variance > 0, (observed - self.expected) ** 2 / self.variance, 0.0)
            z = np.where(self.variance > 0, (x - 1.0) / np.sqrt(2.0), -np.inf)
        return x, z


class _Series:
    """One segment's runs sorted by window, its statistics, and the shuffles within tasks."""

    def __init__(self, window: np.ndarray, stratum: np.ndarray, labels: list[np.ndarray], n_windows: int,
                 success: np.ndarray | None = None) -> None:
        order = np.argsort(window, kind="stable")
        window = window[order]
        _, stratum = np.unique(stratum[order], return_inverse=True)
        self.statistics: list[_Statistic | _MantelHaenszel] = [
            _Statistic(window, stratum, label[order], n_windows) for label in labels
        ]
        if success is not None and len(np.unique(success)) > 1:
            self.statistics.append(_MantelHaenszel(window, stratum, success[order].astype(np.float64), n_windows))
        self.n = len(order)
        self.by_stratum = np.argsort(stratum, kind="stable")
        self.sorted_stratum = stratum[self.by_stratum].astype(np.float64)

    def observed(self) -> list[tuple[np.ndarray, np.ndarray]]:
        identity = np.arange(self.n)[None, :]
        return [(g[0], z[0]) for g, z in (s.statistics(identity) for s in self.statistics)]

    def shuffled(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` shuffles within strata: row b says whose outcome each run takes."""
        keys = self.sorted_stratum[None, :] + rng.random((size, self.n))
        out = np.empty((size, self.n), dtype=np.int64)
        out[:, self.by_stratum] = self.by_stratum[np.argsort(keys, axis=1)]
        return out


#: Shuffles reaching the observed statistic after which a scan stops (Besag & Clifford).
STOP_AFTER = 20
_CHUNK_CELLS = 2_000_000


def _scan(
    window: np.ndarray, stratum: np.ndarray, labels: list[np.ndarray], success: np.ndarray | None,
    start: int, stop: int, n_perm: int, rng: np.random.Generator, min_size: int,
) -> tuple[float, float, np.ndarray] | None:
    """For windows ``[start, stop)``: the permutation p-value of the largest Z (over splits and
    statistics), that Z, and the G of the statistic that reached it at every split (−inf where a
    side would have fewer than ``min_size`` windows).

    ``p = (1 + #{max Z* ≥ max Z}) / (1 + n_perm)``; shuffles stop at the ``STOP_AFTER``-th one
    reaching the observed maximum, at shuffle L, with ``p = STOP_AFTER / L`` (Besag & Clifford's
    sequential p-value: as valid, and it saves work only where p is far from significant)."""
    if stop - start < 2 * min_size:
        return None
    inside = (window >= start) & (window < stop)
    kept = [label[inside] for label in labels if len(np.unique(label[inside])) > 1]
    if not kept:
        return None
    n_w = stop - start
    series = _Series(window[inside] - start, stratum[inside], kept, n_w,
                     None if success is None else success[inside])
    allowed = np.zeros(n_w - 1, dtype=bool)
    allowed[min_size - 1 : n_w - min_size] = True  # split s keeps min_size windows each side
    observed_all = series.observed()
    best = [float(np.max(z[allowed])) for _, z in observed_all]
    which = int(np.argmax(best))
    observed = best[which]
    if not np.isfinite(observed):
        return None
    g = np.where(allowed, observed_all[which][0], -np.inf)
    exceed = done = 0
    size = 32
    max_rows = max(1, _CHUNK_CELLS // max(series.n, 1))
    while done < n_perm:
        size = min(size, max_rows, n_perm - done)
        shuffles = series.shuffled(size, rng)
        z_max = np.max([z[:, allowed].max(axis=1) for _, z in (s.statistics(shuffles) for s in series.statistics)], axis=0)
        hits = np.flatnonzero(z_max >= observed - 1e-9)
        if exceed + len(hits) >= STOP_AFTER:
            return STOP_AFTER / (done + int(hits[STOP_AFTER - exceed - 1]) + 1), observed, g
        exceed += len(hits)
        done += size
        size *= 2
    return (1 + exceed) / (1 + n_perm), observed, g


def _segment(
    window: np.ndarray, stratum: np.ndarray, labels: list[np.ndarray], n_windows: int, *,
    success: np.ndarray | None = None, alpha: float,
    n_perm: int, rng: np.random.Generator, confidence: float, min_size: int, max_changes: int,
) -> list[ChangePoint]:
    found: list[ChangePoint] = []
    pending = [(0, n_windows, alpha)]
    threshold = float(chi2.ppf(confidence, 1))
    while pending and len(found) < max_changes:
        start, stop, level = pending.pop(0)
        scanned = _scan(window, stratum, labels, success, start, stop, n_perm, rng, min_size)
        if scanned is None:
            continue
        p, statistic, g = scanned
        if p > level:
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
        # the two sides share the level of their parent (Bonferroni), so a real change does
        # not raise the chance of a false one beside it above alpha
        pending += [(start, split, level / 2), (split, stop, level / 2)]
    return sorted(found, key=lambda c: c.window)


def behaviour_change_points(
    window: Any, task: Any, cluster: Any, n_windows: int, *, success: Any = None, alpha: float = 0.05,
    n_perm: int = 999, seed: int | None = 0, confidence: float = 0.95, min_size: int = MIN_SIZE,
    max_changes: int = 5,
) -> list[ChangePoint]:
    """Where behaviour changed within tasks (module docstring).

    ``window``: each run's window index (0..n_windows−1); ``task``: its task (any hashable);
    ``cluster``: its outcome key (compared within the task only); ``success``: its verdict
    (1, 0, or nan for none), scanned as a second statistic beside the clusters.
    """
    window = np.asarray(window, dtype=np.int64)
    if not len(window):
        return []
    task = np.asarray(task, dtype=object).astype(str)
    _, stratum = np.unique(task, return_inverse=True)
    labels = [_within(task, np.asarray(cluster, dtype=object).astype(str))]
    succeeded = None
    if success is not None:
        verdict = np.asarray(success, dtype=np.float64)
        labels.append(_within(task, np.where(np.isfinite(verdict), verdict, -1.0).astype(str)))
        succeeded = (verdict == 1.0).astype(np.float64)
    return _segment(window, stratum.astype(np.int64), labels, n_windows, success=succeeded, alpha=alpha, n_perm=n_perm,
                    rng=np.random.default_rng(seed), confidence=confidence, min_size=min_size,
                    max_changes=max_changes)


def mix_change_points(
    window: Any, task: Any, n_windows: int, *, alpha: float = 0.05, n_perm: int = 999,
    seed: int | None = 0, confidence: float = 0.95, min_size: int = MIN_SIZE, max_changes: int = 5,
) -> list[ChangePoint]:
    """Where the mix of tasks changed (the same scan with one stratum: the task is the outcome)."""
    window = np.asarray(window, dtype=np.int64)
    if not len(window):
        return []
    _, code = np.unique(np.asarray(task, dtype=object).astype(str), return_inverse=True)
    return _segment(window, np.zeros(len(window), dtype=np.int64), [code.astype(np.int64)], n_windows,
                    alpha=alpha, n_perm=n_perm, rng=np.random.default_rng(seed),
                    confidence=confidence, min_size=min_size, max_changes=max_changes)


def _within(task: np.ndarray, label: np.ndarray) -> np.ndarray:
    """A code per run for its (task, label) pair: labels are compared within their task."""
    return np.unique(np.char.add(np.char.add(task, "\x00"), label), return_inverse=True)[1].astype(np.int64)
