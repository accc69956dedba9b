"""Drift in production: does the agent's behaviour change from one window of runs to the next?

``drift(runs, window="1d")`` cuts the complete runs (``status != "incomplete"``) into windows by
their ``start_ns``:

- **time windows** ``"Nd"``, ``"Nh"``, ``"Nm"`` (also ``"Nw"``): ``[k·width, (k+1)·width)`` in UTC
  nanoseconds since the epoch, so ``1d`` windows are calendar days (UTC) and ``6h`` windows start
  at 00, 06, 12 and 18 UTC. Windows without runs are not listed; a window is compared to the
  previous *listed* one.
- **count windows** ``"Nruns"``: consecutive blocks of N runs in start order (ties by run id);
  the last block may be smaller. ``start``/``end`` are the first and the last run's start time.

Per window: ``n_runs``; ``success_rate`` and ``incoherence`` exactly as
:func:`hotmess.analyzers.analyze` reports them for the window's runs (verdicts from ``success`` or
the reference; incoherence ``Σ variance / Σ error`` over the window's tasks, nan when undefined);
and the **outcome-cluster distribution**: each run's outcome is mapped once, over all runs, with
the chosen mapper (``exact``, ``actions``, ``text`` clusters per task, or a callable), so clusters
mean the same in every window; the distribution is over (task, cluster) pairs. A change in the mix
of tasks therefore also shows as drift.

**When behaviour changed** (the flags). Over the whole series of windows, a change-point scan
within tasks (:mod:`hotmess.analyzers.changepoints`): for each split, a G-test per task of its
outcome clusters before against after, summed over tasks and standardised; the largest is
calibrated by shuffling outcomes among the runs of each task (each window keeps its runs and its
mix of tasks); binary segmentation finds further changes; each change has a location interval.
A window's ``changed`` says a behaviour change starts at it; ``changed_from_baseline`` that a
change lies between it and the baseline window. The same scan over the task of each run finds
where the *mix of tasks* changed: ``mix_changed``, never ``changed``.

**False alarms.** Everything flagged shares one family-wise level ``alpha``: the first scan of
each series (behaviour per group, and the task mix per group with two tasks or more) gets
``alpha / m`` (Bonferroni over the m scans), so when nothing changed the chance of any flag is at
most ``alpha``. ``n_perm`` is raised to at least ``2·m/alpha`` so the smallest attainable
p-value can pass.

**Window against window** (descriptive, not flags). Each window is compared with the previous
one and with the baseline window by the Jensen-Shannon divergence of their distributions, base 2
(0 = identical, 1 = disjoint)::

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

import math
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from hotmess.progress import Progress, counted
from hotmess.tables import Table

from .actions import collect_actions
from .analysis import analyze
from .changepoints import MIN_SIZE, ChangePoint, behaviour_change_points, mix_change_points
from .columns import BY_COLUMNS, group_values
from .common import factorize, json_float, natural_key
from .outcome_keys import as_text, crash_key
from .outcomes import (
    DEFAULT_READ_ONLY,
    ReadOnly,
    exact_key,
    exact_keys,
    map_outcomes,
    read_only_predicate,
    text_clusters,
)
from .results import Analysis

__all__ = [
    "BY_COLUMNS",
    "MAX_WINDOWS",
    "TEST_DESCRIPTION",
    "Drift",
    "Window",
    "ChangeReport",
    "drift",
    "js_divergence",
    "js_permutation_test",
    "parse_window",
]

#: Widths of time-window units in nanoseconds.
UNIT_NS = {"w": 7 * 86_400 * 10**9, "d": 86_400 * 10**9, "h": 3_600 * 10**9, "m": 60 * 10**9}
#: More windows than this is refused (each window is analyzed and tested).
MAX_WINDOWS = 2000
TEST_DESCRIPTION = (
    "change points within tasks (G and Mantel-Haenszel scan, stratified permutations, binary "
    "segmentation); one level alpha over all flags; JS divergence per window descriptive"
)
_WINDOW = re.compile(r"^\s*(\d+)\s*(runs?|[wdhm])\s*$", re.IGNORECASE)
_CHUNK_CELLS = 4_000_000  # permutation-matrix cells drawn at once (32 MB of int64)
_TOP = 3
#: Shuffles reaching the observed JS after which a test stops (Besag-Clifford); see the test.
STOP_AFTER = 20
_FIRST_BATCH = 64


def parse_window(window: str) -> tuple[str, int]:
    """``("time", width_ns)`` or ``("runs", n)`` from ``"1d"``, ``"6h"``, ``"30m"``, ``"500runs"``."""
    match = _WINDOW.match(str(window))
    if not match or int(match.group(1)) < 1:
        raise ValueError(
            f"window must be a positive count and a unit, like 1d, 6h, 30m, 2w or 500runs; "
            f"got {window!r}"
        )
    count, unit = int(match.group(1)), match.group(2).lower()
    if unit.startswith("run"):
        return "runs", count
    return "time", count * UNIT_NS[unit]


def js_divergence(a: Any, b: Any) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two count (or probability) vectors."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of one length, got {a.shape} and {b.shape}")
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


@dataclass(frozen=True)
class Window:
    """One window of runs and its comparison with the previous window and the baseline."""

    start_ns: int
    end_ns: int
    n_runs: int
    n_tasks: int
    success_rate: float
    incoherence: float
    n_clusters: int
    top_clusters: tuple[tuple[str, str, float], ...]
    js_divergence: float = float("nan")
    p_value: float = float("nan")
    changed: bool = False
    js_baseline: float = float("nan")
    p_baseline: float = float("nan")
    changed_from_baseline: bool = False
    is_baseline: bool = False
    mix_changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": iso_utc(self.start_ns),
            "end": iso_utc(self.end_ns),
            "n_runs": int(self.n_runs),
            "success_rate": json_float(self.success_rate),
            "incoherence": json_float(self.incoherence),
            "js_divergence": json_float(self.js_divergence),
            "p_value": json_float(self.p_value),
            "changed": bool(self.changed),
            "js_baseline": json_float(self.js_baseline),
            "p_baseline": json_float(self.p_baseline),
            "changed_from_baseline": bool(self.changed_from_baseline),
            "is_baseline": bool(self.is_baseline),
            "mix_changed": bool(self.mix_changed),
            "n_tasks": int(self.n_tasks),
            "n_clusters": int(self.n_clusters),
            "top_clusters": [
                {"task_id": t, "cluster": c, "share": json_float(s)} for t, c, s in self.top_clusters
            ],
        }


@dataclass(frozen=True)
class ChangeReport:
    """A change point and what changed across it: the segments on either side are delimited by
    the neighbouring change points of the same kind (or the series' ends). ``clusters_appeared``:
    outcome clusters a task has after and never before (with ``n_runs`` after), ``vanished`` the
    reverse (``n_runs`` before); an outcome new in several tasks is one entry naming them."""

    window: int
    low: int
    high: int
    p_value: float
    start: str
    success_before: float = float("nan")
    success_after: float = float("nan")
    clusters_appeared: tuple[tuple[str, tuple[str, ...], int], ...] = ()
    clusters_vanished: tuple[tuple[str, tuple[str, ...], int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def listed(items: tuple[tuple[str, tuple[str, ...], int], ...]) -> list[dict[str, Any]]:
            return [{"cluster": c, "task_ids": list(t), "n_runs": int(k)} for c, t, k in items]

        return {
            "window": int(self.window),
            "low": int(self.low),
            "high": int(self.high),
            "p_value": json_float(self.p_value),
            "start": self.start,
            "success_before": json_float(self.success_before),
            "success_after": json_float(self.success_after),
            "clusters_appeared": listed(self.clusters_appeared),
            "clusters_vanished": listed(self.clusters_vanished),
        }


@dataclass(frozen=True)
class Drift:
    """The result of :func:`drift`: windows (per group with ``by``) and the test's settings."""

    window: str
    groups: dict[str, tuple[Window, ...]]
    by: str | None
    alpha: float
    n_perm: int
    baseline: int
    n_runs: int
    n_incomplete: int
    outcome: str
    test: str = TEST_DESCRIPTION
    warnings: tuple[str, ...] = field(default_factory=tuple)
    change_points: dict[str, tuple[ChangeReport, ...]] = field(default_factory=dict)
    mix_change_points: dict[str, tuple[ChangeReport, ...]] = field(default_factory=dict)

    @property
    def windows(self) -> tuple[Window, ...]:
        """The windows of an un-grouped result (all windows of all groups, in order, otherwise)."""
        return tuple(w for ws in self.groups.values() for w in ws)

    @property
    def n_changed(self) -> int:
        return sum(w.changed for w in self.windows)

    def to_dict(self) -> dict[str, Any]:
        settings = {
            "window": self.window,
            "alpha": float(self.alpha),
            "n_perm": int(self.n_perm),
            "baseline": int(self.baseline),
            "n_runs": int(self.n_runs),
            "n_incomplete": int(self.n_incomplete),
            "outcome": self.outcome,
            "test": self.test,
            "warnings": list(self.warnings),
        }
        def series(key: str) -> dict[str, Any]:
            return {
                "windows": [w.to_dict() for w in self.groups.get(key, ())],
                "change_points": [c.to_dict() for c in self.change_points.get(key, ())],
                "mix_change_points": [c.to_dict() for c in self.mix_change_points.get(key, ())],
            }

        if self.by is None:
            return {**series(next(iter(self.groups), "all")), **settings}
        return {"by": self.by, "groups": {key: series(key) for key in self.groups}, **settings}


def iso_utc(ns: int) -> str:
    """ISO-8601 UTC text of nanoseconds since the epoch (``Z`` suffix)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(ns) // 1000)
    spec = "seconds" if int(ns) % 10**9 == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def _window_index(
    start_ns: np.ndarray, run_ids: np.ndarray, kind: str, size: int
) -> list[tuple[int, int, np.ndarray]]:
    """(start_ns, end_ns, run rows) of each non-empty window, in time order."""
    if kind == "time":
        slot = start_ns // size
        order = np.argsort(slot, kind="stable")
        slots, first = np.unique(slot[order], return_index=True)
        bounds = np.append(first, len(order))
        return [
            (int(s) * size, (int(s) + 1) * size, order[bounds[i] : bounds[i + 1]])
            for i, s in enumerate(slots)
        ]
    order = np.lexsort((run_ids.astype(str), start_ns))
    return [
        (int(start_ns[rows[0]]), int(start_ns[rows[-1]]), rows)
        for rows in (order[i : i + size] for i in range(0, len(order), size))
    ]


def _outcome_codes(
    runs: Table,
    steps: Table | None,
    task_ids: np.ndarray,
    outcome: str | Callable[[Any], Hashable],
    read_only: ReadOnly,
    distance_threshold: float,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[Hashable]]:
    """A code per run for its (task, outcome cluster) pair, mapped once over all runs."""
    outcomes = runs["outcome"]
    if outcome == "exact":
        keys = exact_keys(outcomes)
    elif outcome == "actions":
        run_ids = runs["run_id"] if "run_id" in runs else np.arange(len(runs)).astype(str)
        keys, _ = collect_actions(
            run_ids, outcomes, steps, read_only_predicate(read_only), want_pieces=False
        )
    elif outcome == "text":
        texts = [None if o is None else as_text(o) for o in outcomes]
        keys = text_clusters(texts, task_ids.tolist(), distance_threshold, progress=progress)
    elif callable(outcome):
        keys = map_outcomes(outcomes, outcome)
    else:
        raise ValueError(
            f"outcome must be exact, actions, text or a callable for drift, got {outcome!r}"
        )
    status = runs["status"] if "status" in runs else np.full(len(runs), None, dtype=object)
    errors = runs["error"] if "error" in runs else np.full(len(runs), None, dtype=object)
    crashed = [i for i, (st, o) in enumerate(zip(status, outcomes, strict=True)) if st == "error" and o is None]
    if crashed:  # as analyze keys them: a crash is its exception type
        keys = np.asarray(keys, dtype=object).copy()
        keys[crashed] = [crash_key(errors[i]) for i in crashed]
    return factorize(zip(task_ids.tolist(), keys.tolist(), strict=True))


def _verdicts(runs: Table, outcome: str | Callable[[Any], Hashable]) -> np.ndarray:
    """Each run's success (1/0; nan for none): the ``success`` column, else, with the exact
    mapper, whether the outcome is the reference."""
    n = len(runs)
    success = (runs["success"].astype(np.float64) if "success" in runs else np.full(n, np.nan)).copy()
    if outcome == "exact" and "reference" in runs:
        missing = np.flatnonzero(~np.isfinite(success))
        references = runs["reference"]
        outcomes = runs["outcome"]
        for i in missing:
            if references[i] is not None:
                success[i] = float(exact_key(outcomes[i]) == exact_key(references[i]))
    return success


def drift(
    runs: Table,
    steps: Table | None = None,
    *,
    window: str = "1d",
    by: str | None = None,
    baseline: int = 0,
    alpha: float = 0.05,
    n_perm: int = 1000,
    outcome: str | Callable[[Any], Hashable] = "exact",
    seed: int | None = 0,
    read_only: ReadOnly = DEFAULT_READ_ONLY,
    distance_threshold: float = 0.5,
    progress: Progress | None = None,
) -> Drift:
    """Per window of runs: success, incoherence, outcome clusters; changes flagged (see module doc).

    Parameters
    ----------
    runs : the runs table (needs ``task_id``, ``outcome``, ``start_ns``; uses ``run_id``,
        ``status``, ``success``, ``reference`` and ``by``'s column).
    steps : tool steps, for ``outcome="actions"``.
    window : ``"Nd"``, ``"Nh"``, ``"Nm"``, ``"Nw"`` (time) or ``"Nruns"`` (count).
    by : ``"task"``, ``"agent"``, another runs column or a run attribute: windows per group
        (every group's scans share the one level ``alpha``).
    baseline : index of the baseline window (per group; negative counts from the end).
    alpha : family-wise false-alarm level of all the flags together, in [1e-6, 0.5].
    n_perm : most permutations per window comparison and per change-point scan (a scan's
        raised to ``2·m/alpha`` when lower; see module doc). 0: no tests, values only.
    outcome : outcome mapper: ``"exact"``, ``"actions"``, ``"text"`` or a callable.
    seed : seed of the permutations (same seed, same p-values).
    progress : ``progress(unit, done, total)`` (:mod:`hotmess.progress`), told the tasks
        clustered (``outcome="text"``), the change-point scans and window tests done, then the
        windows summarised.
    """
    if not isinstance(runs, Table):
        raise ValueError(f"runs must be a hotmess.tables.Table, got {type(runs).__name__}")
    kind, size = parse_window(window)
    alpha = float(alpha)
    if not 1e-6 <= alpha <= 0.5:
        raise ValueError(f"alpha must be in [1e-6, 0.5] (a false-alarm level), got {alpha}")
    if isinstance(n_perm, bool) or int(n_perm) != n_perm or n_perm < 0:
        raise ValueError(f"n_perm must be a non-negative integer, got {n_perm!r}")
    if isinstance(baseline, bool) or int(baseline) != baseline:
        raise ValueError(f"baseline must be an integer window index, got {baseline!r}")
    for name in ("task_id", "outcome", "start_ns"):
        if name not in runs:
            raise ValueError(f"runs has no {name!r} column; columns are {', '.join(runs.columns)}")

    status = runs["status"] if "status" in runs else np.full(len(runs), None, dtype=object)
    complete = np.flatnonzero(status != "incomplete")
    n_incomplete = len(runs) - len(complete)
    runs = runs.take(complete)
    n = len(runs)
    warnings: list[str] = []
    start_ns = runs["start_ns"].astype(np.int64)
    run_ids = runs["run_id"] if "run_id" in runs else np.arange(n).astype(str).astype(object)
    if n and kind == "time" and not (start_ns > 0).any():
        raise ValueError(
            "no run has a start time (start_ns is 0, e.g. runs imported from a file without "
            "timestamps): use count windows, e.g. 100runs"
        )
    if n and kind == "time" and (start_ns <= 0).any():
        warnings.append(
            f"{int((start_ns <= 0).sum())} runs have no start time: they fall in a 1970 window"
        )
    task_ids = np.array(["<none>" if t is None else str(t) for t in runs["task_id"]], dtype=object)
    use_steps = steps if outcome == "actions" else None
    codes, pairs = _outcome_codes(runs, use_steps, task_ids, outcome, read_only, distance_threshold, progress)
    verdicts = _verdicts(runs, outcome)

    if by is None:
        group_of = np.zeros(n, dtype=np.int64)
        group_names = ["all"]
    else:
        column = BY_COLUMNS.get(by, by)
        attributes = runs["attributes"] if "attributes" in runs else np.full(n, None, dtype=object)
        values = group_values(runs, column, attributes)
        group_codes, names = factorize(values.tolist())
        ranked = sorted(range(len(names)), key=lambda i: natural_key(str(names[i])))
        remap = np.empty(len(names), dtype=np.int64)
        remap[ranked] = np.arange(len(names))
        group_of = remap[group_codes] if n else group_codes
        group_names = [str(names[i]) for i in ranked]

    step_run = None
    if use_steps is not None and len(use_steps):
        position = {rid: i for i, rid in enumerate(run_ids.tolist())}
        step_run = np.fromiter(
            (position.get(r, -1) for r in use_steps["run_id"]), dtype=np.int64, count=len(use_steps)
        )

    per_group: list[list[tuple[int, int, np.ndarray]]] = []
    for g in range(len(group_names)):
        rows = np.flatnonzero(group_of == g)
        cut = _window_index(start_ns[rows], run_ids[rows], kind, size)
        per_group.append([(s, e, rows[r]) for s, e, r in cut])
    n_windows = sum(len(w) for w in per_group)
    if n_windows > MAX_WINDOWS:
        raise ValueError(
            f"window={window!r} makes {n_windows} windows (limit {MAX_WINDOWS}): choose a longer "
            "window" + (f" or a coarser by than {by!r}" if by else "")
        )

    # descriptive comparisons: each window vs the previous one, and vs the baseline
    previous_tests, baseline_tests, base_index = [], [], []
    for g, windows in enumerate(per_group):
        if not windows:
            base_index.append(None)
            continue
        if not -len(windows) <= baseline < len(windows):
            raise ValueError(
                f"baseline={baseline} is not a window index: there are {len(windows)} windows"
                + (f" for {by} {group_names[g]!r}" if by else "")
            )
        b = baseline % len(windows)
        base_index.append(b)
        previous_tests += [(g, i, i - 1) for i in range(1, len(windows))]
        baseline_tests += [(g, i, b) for i in range(len(windows)) if i != b]

    # the flags: change-point scans, behaviour per group and the task mix where it can vary
    window_of = np.zeros(n, dtype=np.int64)
    for windows in per_group:
        for i, (_, _, rows) in enumerate(windows):
            window_of[rows] = i
    scans = [("behaviour", g) for g, w in enumerate(per_group) if len(w) >= 2 * MIN_SIZE]
    scans += [
        ("mix", g) for g, w in enumerate(per_group)
        if len(w) >= 2 * MIN_SIZE and len(np.unique(task_ids[np.concatenate([r for *_, r in w])])) > 1
    ]
    alpha_each = alpha / max(len(scans), 1)
    n_perm_used = int(n_perm)
    if n_perm:
        n_perm_used = max(n_perm_used, math.ceil(2 / alpha_each))

    rng = np.random.default_rng(seed)
    found: dict[tuple[str, int], list[ChangePoint]] = {}
    for kind_of, g in counted(scans, progress, "change-point scans", len(scans), every=1):
        rows = np.concatenate([r for *_, r in per_group[g]])
        scan_seed = int(rng.integers(2**62))
        if kind_of == "behaviour":
            found[(kind_of, g)] = behaviour_change_points(
                window_of[rows], task_ids[rows], codes[rows], len(per_group[g]),
                success=verdicts[rows], alpha=alpha_each, n_perm=n_perm_used, seed=scan_seed,
            ) if n_perm else []
        else:
            found[(kind_of, g)] = mix_change_points(
                window_of[rows], task_ids[rows], len(per_group[g]),
                alpha=alpha_each, n_perm=n_perm_used, seed=scan_seed,
            ) if n_perm else []

    results: dict[tuple[str, int, int], tuple[float, float]] = {}
    tests = [("previous", t) for t in previous_tests] + [("baseline", t) for t in baseline_tests]
    for family, (g, i, j) in counted(tests, progress, "window tests", len(tests), every=1):
        rows_i, rows_j = per_group[g][i][2], per_group[g][j][2]
        results[(family, g, i)] = js_permutation_test(codes[rows_j], codes[rows_i], n_perm, rng)

    nan = float("nan")
    made: list[list[Window]] = [[] for _ in per_group]
    every_window = [(g, i, w) for g, windows in enumerate(per_group) for i, w in enumerate(windows)]
    for g, i, (start, end, rows) in counted(every_window, progress, "windows", n_windows, every=1):
        summary = _summarise(runs, use_steps, step_run, rows, outcome, read_only,
                             distance_threshold, seed)
        js_prev, p_prev = results.get(("previous", g, i), (nan, nan))
        js_base, p_base = results.get(("baseline", g, i), (nan, nan))
        behaviour = [c.window for c in found.get(("behaviour", g), [])]
        b = base_index[g]
        made[g].append(
            Window(
                start_ns=start,
                end_ns=end,
                n_runs=len(rows),
                n_tasks=summary.n_tasks,
                success_rate=summary.success_rate,
                incoherence=summary.incoherence.value,
                n_clusters=len(np.unique(codes[rows])),
                top_clusters=_top(codes[rows], pairs),
                js_divergence=js_prev,
                p_value=p_prev,
                changed=i in behaviour,
                js_baseline=js_base,
                p_baseline=p_base,
                changed_from_baseline=b is not None and any(min(i, b) < c <= max(i, b) for c in behaviour),
                is_baseline=i == b,
                mix_changed=i in [c.window for c in found.get(("mix", g), [])],
            )
        )

    def report(g: int, points: list[ChangePoint], describe: bool) -> tuple[ChangeReport, ...]:
        windows = per_group[g]
        edges = [0, *[c.window for c in points], len(windows)]
        out = []
        for k, c in enumerate(points):
            before = np.concatenate([r for *_, r in windows[edges[k] : edges[k + 1]]])
            after = np.concatenate([r for *_, r in windows[edges[k + 1] : edges[k + 2]]])
            extra: dict[str, Any] = {}
            if describe:
                extra = {
                    "success_before": _success(
                        runs, use_steps, step_run, before, outcome, read_only, distance_threshold, seed),
                    "success_after": _success(
                        runs, use_steps, step_run, after, outcome, read_only, distance_threshold, seed),
                    "clusters_appeared": _new_clusters(codes[before], codes[after], pairs),
                    "clusters_vanished": _new_clusters(codes[after], codes[before], pairs),
                }
            out.append(ChangeReport(window=c.window, low=c.low, high=c.high, p_value=c.p_value,
                                    start=iso_utc(windows[c.window][0]), **extra))
        return tuple(out)

    change_points = {group_names[g]: report(g, found.get(("behaviour", g), []), True)
                     for g in range(len(per_group))}
    mix_points = {group_names[g]: report(g, found.get(("mix", g), []), False)
                  for g in range(len(per_group))}
    groups: dict[str, tuple[Window, ...]] = {group_names[g]: tuple(w) for g, w in enumerate(made)}
    suggestion = f"; try count windows, e.g. --window {max(n // 20, 1)}runs" if n >= 2 * MIN_SIZE else ""
    if n and all(len(w) < 2 for w in per_group):
        warnings.append(f"window={window!r} puts every run in one window: nothing to compare{suggestion}")
    elif n and all(len(w) < 2 * MIN_SIZE for w in per_group):
        warnings.append(
            f"window={window!r} makes fewer than {2 * MIN_SIZE} windows"
            + (" per group" if by else "")
            + f": too few to locate a change (only the window comparisons are shown){suggestion}"
        )
    outcome_name = (
        outcome if isinstance(outcome, str) else f"callable:{getattr(outcome, '__name__', 'fn')}"
    )
    return Drift(
        window=str(window).strip(),
        groups=groups,
        by=by,
        alpha=alpha,
        n_perm=n_perm_used,
        baseline=int(baseline),
        n_runs=n,
        n_incomplete=n_incomplete,
        outcome=outcome_name,
        warnings=tuple(warnings),
        change_points=change_points,
        mix_change_points=mix_points,
    )


def _success(runs: Table, steps: Table | None, step_run: np.ndarray | None, rows: np.ndarray,
             outcome: str | Callable[[Any], Hashable], read_only: ReadOnly,
             distance_threshold: float, seed: int | None) -> float:
    return _summarise(runs, steps, step_run, rows, outcome, read_only, distance_threshold, seed).success_rate


def _new_clusters(
    before: np.ndarray, after: np.ndarray, pairs: list[Hashable]
) -> tuple[tuple[str, tuple[str, ...], int], ...]:
    """Outcome clusters seen after and never before in a task, the same outcome in several tasks
    taken together: ``(cluster, its tasks, runs after)``, most runs first (the first few)."""
    values, counts = np.unique(after, return_counts=True)
    new = ~np.isin(values, before)
    merged: dict[str, tuple[list[str], int]] = {}
    for value, count in zip(values[new].tolist(), counts[new].tolist(), strict=True):
        task, key = pairs[int(value)]
        tasks, total = merged.get(str(key), ([], 0))
        merged[str(key)] = ([*tasks, str(task)], total + int(count))
    ranked = sorted(merged.items(), key=lambda item: (-item[1][1], item[0]))[:_TOP]
    return tuple(
        (key if len(key) <= 80 else key[:79] + "…", tuple(sorted(tasks, key=natural_key)), total)
        for key, (tasks, total) in ranked
    )


def _summarise(
    runs: Table,
    steps: Table | None,
    step_run: np.ndarray | None,
    rows: np.ndarray,
    outcome: str | Callable[[Any], Hashable],
    read_only: ReadOnly,
    distance_threshold: float,
    seed: int | None,
) -> Analysis:
    """``analyze`` of one window's runs (no bootstrap: the point value is what is reported)."""
    window_steps = None
    if steps is not None and step_run is not None:
        inside = np.zeros(len(runs), dtype=bool)
        inside[rows] = True
        window_steps = steps.take(np.flatnonzero((step_run >= 0) & inside[np.maximum(step_run, 0)]))
    result = analyze(
        runs.take(rows),
        window_steps,
        outcome=outcome,
        n_boot=0,
        seed=seed,
        read_only=read_only,
        distance_threshold=distance_threshold,
    )
    assert isinstance(result, Analysis)
    return result


def _top(window_codes: np.ndarray, pairs: list[Hashable]) -> tuple[tuple[str, str, float], ...]:
    """The window's largest (task, cluster) pairs with their share of its runs."""
    values, counts = np.unique(window_codes, return_counts=True)
    order = np.lexsort((values, -counts))[:_TOP]
    total = counts.sum()
    out = []
    for j in order:
        task, key = pairs[int(values[j])]
        text = str(key)
        out.append((str(task), text if len(text) <= 80 else text[:79] + "…", float(counts[j] / total)))
    return tuple(out)
