"""Drift in production: does the agent's behaviour change from one window of runs to the next?

``drift(runs, window="1d")`` cuts the complete runs (``status != "incomplete"``) into windows by
their ``start_ns``: time windows (``"Nd"``, ``"Nh"``, ``"Nm"``, ``"Nw"``: UTC-aligned slots) or
count windows (``"Nruns"``: blocks of N runs in start order), as :mod:`.windows` defines them.

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
one and with the baseline window by the Jensen-Shannon divergence of their distributions, base 2,
with a permutation p-value per comparison, uncorrected (:mod:`.divergence`)::

    JS(P, Q) = ½ Σ_k P_k log2(P_k / M_k) + ½ Σ_k Q_k log2(Q_k / M_k),   M = (P + Q) / 2

**Where it is computed.** What needs a task's runs is done per task (:mod:`.drift_tasks`):
each run's outcome key, verdict and group, and each window's task figures; the windows, the
scans, the tests and the ratios of sums are formed from those by :func:`drift_combine`. The
local :func:`drift` runs the per-task part on all the runs at once; an engine
(:mod:`hotmess.engine.dask_drift`) runs it per task on its workers, with the same result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.progress import Progress, counted
from hotmess.results import Result
from hotmess.tables import Table

from .analysis import analysis_options, combine
from .changepoints import MIN_SIZE, ChangePoint, behaviour_change_points, mix_change_points
from .columns import BY_COLUMNS
from .common import factorize, json_float, natural_codes, natural_key
from .divergence import js_divergence, js_permutation_test
from .drift_tasks import DriftRuns, SpanPlan, drift_runs, span_figures
from .group import TaskFigures
from .inputs import AnalysisOptions
from .outcomes import DEFAULT_READ_ONLY, ReadOnly
from .results import Analysis
from .windows import Windows, cut_windows, iso_utc, parse_window

# BY_COLUMNS, iso_utc, js_divergence, js_permutation_test and parse_window stay importable
# from here, where they were before windows and divergence were split off
__all__ = [
    "BY_COLUMNS",
    "MAX_WINDOWS",
    "TEST_DESCRIPTION",
    "Drift",
    "Window",
    "ChangeReport",
    "drift",
    "drift_combine",
    "drift_options",
    "iso_utc",
    "js_divergence",
    "js_permutation_test",
    "parse_window",
]

#: More windows than this is refused (each window is analyzed and tested).
MAX_WINDOWS = 2000
TEST_DESCRIPTION = (
    "change points within tasks (G and Mantel-Haenszel scan, stratified permutations, binary "
    "segmentation); one level alpha over all flags; JS divergence per window descriptive"
)
_TOP = 3
@dataclass(frozen=True)
class Window(Result):
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
class ChangeReport(Result):
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
class Drift(Result):
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

    This is :func:`drift_combine` of the :func:`~.drift_tasks.drift_runs` of all the runs,
    with the :func:`~.drift_tasks.span_figures` of all the runs: an engine runs those two per
    task where the runs are, and calls :func:`drift_combine` on the driver.
    """
    if not isinstance(runs, Table):
        raise AnalysisError(f"runs must be a hotmess.tables.Table, got {type(runs).__name__}")
    parse_window(window)
    _check_arguments(runs, alpha, n_perm, baseline)
    options = drift_options(outcome, seed, read_only, distance_threshold)
    use_steps = steps if outcome == "actions" else None
    records = [drift_runs(runs, use_steps, options, by=by, progress=progress)]
    return drift_combine(
        records, lambda plan: [span_figures(runs, use_steps, plan, options)], options,
        window=window, by=by, baseline=baseline, alpha=alpha, n_perm=n_perm, seed=seed, progress=progress,
    )


def drift_options(
    outcome: str | Callable[[Any], Hashable] = "exact",
    seed: int | None = 0,
    read_only: ReadOnly = DEFAULT_READ_ONLY,
    distance_threshold: float = 0.5,
) -> AnalysisOptions:
    """The checked options of the outcome mapping and of each window's ``analyze`` (no
    interval: a window reports its point values)."""
    if not (outcome in ("exact", "actions", "text") or callable(outcome)):
        raise AnalysisError(
            f"outcome must be exact, actions, text or a callable for drift, got {outcome!r}"
        )
    return analysis_options(outcome=outcome, n_boot=0, seed=seed, read_only=read_only,
                            distance_threshold=distance_threshold)


def drift_combine(
    records: Sequence[DriftRuns],
    figures_of: Callable[[SpanPlan], Sequence[dict[int, TaskFigures]]],
    options: AnalysisOptions,
    *,
    window: str = "1d",
    by: str | None = None,
    baseline: int = 0,
    alpha: float = 0.05,
    n_perm: int = 1000,
    seed: int | None = 0,
    progress: Progress | None = None,
) -> Drift:
    """The :class:`Drift` of the runs of ``records`` (the :func:`~.drift_tasks.drift_runs`
    of whole tasks, in the order of the runs table): windows, change-point scans and window
    tests here; each window's (and each side of a change point's) success and incoherence
    combined from ``figures_of(plan)``, the :func:`~.drift_tasks.span_figures` of every task."""
    kind, size = parse_window(window)
    alpha = _check_arguments(None, alpha, n_perm, baseline)
    data = DriftRuns.concat(records)
    if data.by_error is not None:
        raise AnalysisError(data.by_error)
    n = len(data)
    warnings: list[str] = []
    start_ns = _start_times(data.start_ns, kind, warnings)
    run_ids, task_ids = data.run_id, data.task_id
    codes, pairs = factorize(zip(task_ids.tolist(), data.key.tolist(), strict=True))
    group_of, group_names = (
        (np.zeros(n, dtype=np.int64), ["all"]) if data.group is None else natural_codes(data.group.tolist())
    )
    per_group = cut_windows(group_of, len(group_names), start_ns, run_ids, kind, size)
    n_windows = sum(len(w) for w in per_group)
    if n_windows > MAX_WINDOWS:
        raise AnalysisError(
            f"window={window!r} makes {n_windows} windows (limit {MAX_WINDOWS}): choose a longer "
            "window" + (f" or a coarser by than {by!r}" if by else "")
        )
    base_index, tests = _comparisons(per_group, baseline, by, group_names)

    rng = np.random.default_rng(seed)
    found, n_perm_used = _change_points(
        per_group, task_ids, codes, data.verdict, alpha, int(n_perm), rng, progress
    )
    results: dict[tuple[str, int, int], tuple[float, float]] = {}
    for family, (g, i, j) in counted(tests, progress, "window tests", len(tests), every=1):
        rows_i, rows_j = per_group[g][i][2], per_group[g][j][2]
        results[(family, g, i)] = js_permutation_test(codes[rows_j], codes[rows_i], n_perm, rng)
    summaries = _summaries(per_group, group_names, found, kind, size, start_ns, run_ids, by,
                           figures_of, options)
    groups = _windows(per_group, group_names, base_index, found, results, codes, pairs, summaries, progress)

    change_points = {group_names[g]: _reports(per_group[g], found.get(("behaviour", g), []), codes, pairs,
                                              lambda lo, hi, g=g: summaries[(g, lo, hi)])
                     for g in range(len(per_group))}
    mix_points = {group_names[g]: _reports(per_group[g], found.get(("mix", g), []), codes, pairs, None)
                  for g in range(len(per_group))}
    warnings += _window_warnings(per_group, n, window, by)
    return Drift(
        window=str(window).strip(),
        groups=groups,
        by=by,
        alpha=alpha,
        n_perm=n_perm_used,
        baseline=int(baseline),
        n_runs=n,
        n_incomplete=data.n_incomplete,
        outcome=_outcome_name(options.outcome),
        warnings=tuple(warnings),
        change_points=change_points,
        mix_change_points=mix_points,
    )


def _outcome_name(outcome: str | Callable[[Any], Hashable]) -> str:
    return outcome if isinstance(outcome, str) else f"callable:{getattr(outcome, '__name__', 'fn')}"


def _check_arguments(runs: Table | None, alpha: float, n_perm: int, baseline: int) -> float:
    """ValueError with one sentence for a bad argument (and for ``runs`` without a column
    drift needs); ``alpha`` as a float."""
    alpha = float(alpha)
    if not 1e-6 <= alpha <= 0.5:
        raise AnalysisError(f"alpha must be in [1e-6, 0.5] (a false-alarm level), got {alpha}")
    if isinstance(n_perm, bool) or int(n_perm) != n_perm or n_perm < 0:
        raise AnalysisError(f"n_perm must be a non-negative integer, got {n_perm!r}")
    if isinstance(baseline, bool) or int(baseline) != baseline:
        raise AnalysisError(f"baseline must be an integer window index, got {baseline!r}")
    for name in ("task_id", "outcome", "start_ns") if runs is not None else ():
        if name not in runs:
            raise AnalysisError(f"runs has no {name!r} column; columns are {', '.join(runs.columns)}")
    return alpha


def _start_times(start_ns: np.ndarray, kind: str, warnings: list[str]) -> np.ndarray:
    """The runs' ``start_ns``; time windows need some run to have one (ValueError otherwise)."""
    if len(start_ns) and kind == "time" and not (start_ns > 0).any():
        raise AnalysisError(
            "no run has a start time (start_ns is 0, e.g. runs imported from a file without "
            "timestamps): use count windows, e.g. 100runs"
        )
    if len(start_ns) and kind == "time" and (start_ns <= 0).any():
        warnings.append(
            f"{int((start_ns <= 0).sum())} runs have no start time: they fall in a 1970 window"
        )
    return start_ns


def _comparisons(
    per_group: list[Windows], baseline: int, by: str | None, group_names: list[str]
) -> tuple[list[int | None], list[tuple[str, tuple[int, int, int]]]]:
    """Each group's baseline window, and the descriptive tests: (family, (group, window, other))
    for each window against the previous one, then against the baseline."""
    previous_tests, baseline_tests, base_index = [], [], []
    for g, windows in enumerate(per_group):
        if not windows:
            base_index.append(None)
            continue
        if not -len(windows) <= baseline < len(windows):
            raise AnalysisError(
                f"baseline={baseline} is not a window index: there are {len(windows)} windows"
                + (f" for {by} {group_names[g]!r}" if by else "")
            )
        b = baseline % len(windows)
        base_index.append(b)
        previous_tests += [(g, i, i - 1) for i in range(1, len(windows))]
        baseline_tests += [(g, i, b) for i in range(len(windows)) if i != b]
    tests = [("previous", t) for t in previous_tests] + [("baseline", t) for t in baseline_tests]
    return base_index, tests


def _change_points(
    per_group: list[Windows],
    task_ids: np.ndarray,
    codes: np.ndarray,
    verdicts: np.ndarray,
    alpha: float,
    n_perm: int,
    rng: np.random.Generator,
    progress: Progress | None,
) -> tuple[dict[tuple[str, int], list[ChangePoint]], int]:
    """The flags: change-point scans of behaviour per group and of the task mix where it can
    vary, sharing ``alpha`` (module docstring); and the permutations each scan used."""
    window_of = np.zeros(len(task_ids), dtype=np.int64)
    for windows in per_group:
        for i, (_, _, rows) in enumerate(windows):
            window_of[rows] = i
    scans = [("behaviour", g) for g, w in enumerate(per_group) if len(w) >= 2 * MIN_SIZE]
    scans += [
        ("mix", g) for g, w in enumerate(per_group)
        if len(w) >= 2 * MIN_SIZE and len(np.unique(task_ids[np.concatenate([r for *_, r in w])])) > 1
    ]
    alpha_each = alpha / max(len(scans), 1)
    n_perm_used = n_perm
    if n_perm:
        n_perm_used = max(n_perm_used, math.ceil(2 / alpha_each))
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
    return found, n_perm_used


def _summaries(
    per_group: list[Windows],
    group_names: list[str],
    found: dict[tuple[str, int], list[ChangePoint]],
    kind: str,
    size: int,
    start_ns: np.ndarray,
    run_ids: np.ndarray,
    by: str | None,
    figures_of: Callable[[SpanPlan], Sequence[dict[int, TaskFigures]]],
    options: AnalysisOptions,
) -> dict[tuple[int, int, int], Analysis]:
    """The analysis of each window and of each side of a behaviour change point, by (group,
    first window, end window): the spans' task figures from ``figures_of``, combined."""
    spans: list[tuple[int, int, int]] = []
    for g, windows in enumerate(per_group):
        spans += [(g, i, i + 1) for i in range(len(windows))]
        points = [c.window for c in found.get(("behaviour", g), [])]
        edges = [0, *points, len(windows)]
        spans += [(g, edges[k], edges[k + 1]) for k in range(len(edges) - 1)] if points else []
    spans = list(dict.fromkeys(spans))
    starts: dict[str, tuple[object, ...]] = {}
    for g, windows in enumerate(per_group):
        if kind == "time":
            starts[group_names[g]] = tuple(s // size for s, _, _ in windows)
        else:
            starts[group_names[g]] = tuple((int(start_ns[r[0]]), str(run_ids[r[0]])) for *_, r in windows)
    plan = SpanPlan(kind=kind, size=size, by=by, starts=starts,
                    spans=tuple((group_names[g], lo, hi) for g, lo, hi in spans))
    parts = figures_of(plan) if spans else []
    out = {}
    for s, span in enumerate(spans):
        figures = [p[s] for p in parts if s in p]
        analysis = combine(figures, options)
        assert isinstance(analysis, Analysis)
        out[span] = analysis
    return out


def _windows(
    per_group: list[Windows],
    group_names: list[str],
    base_index: list[int | None],
    found: dict[tuple[str, int], list[ChangePoint]],
    results: dict[tuple[str, int, int], tuple[float, float]],
    codes: np.ndarray,
    pairs: list[Hashable],
    summaries: dict[tuple[int, int, int], Analysis],
    progress: Progress | None,
) -> dict[str, tuple[Window, ...]]:
    """Every window of every group, summarised, with its comparisons and flags."""
    nan = float("nan")
    made: list[list[Window]] = [[] for _ in per_group]
    every_window = [(g, i, w) for g, windows in enumerate(per_group) for i, w in enumerate(windows)]
    for g, i, (start, end, rows) in counted(every_window, progress, "windows", len(every_window), every=1):
        summary = summaries[(g, i, i + 1)]
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
    return {group_names[g]: tuple(w) for g, w in enumerate(made)}


def _reports(
    windows: Windows,
    points: list[ChangePoint],
    codes: np.ndarray,
    pairs: list[Hashable],
    summarise: Callable[[int, int], Analysis] | None,
) -> tuple[ChangeReport, ...]:
    """A report of each change point of one series; with ``summarise`` (the analysis of the
    windows ``lo ≤ i < hi``), what changed across it (success on either side, outcome
    clusters that appeared or vanished)."""
    edges = [0, *[c.window for c in points], len(windows)]
    out = []
    for k, c in enumerate(points):
        before = np.concatenate([r for *_, r in windows[edges[k] : edges[k + 1]]])
        after = np.concatenate([r for *_, r in windows[edges[k + 1] : edges[k + 2]]])
        extra: dict[str, Any] = {}
        if summarise is not None:
            extra = {
                "success_before": summarise(edges[k], edges[k + 1]).success_rate,
                "success_after": summarise(edges[k + 1], edges[k + 2]).success_rate,
                "clusters_appeared": _new_clusters(codes[before], codes[after], pairs),
                "clusters_vanished": _new_clusters(codes[after], codes[before], pairs),
            }
        out.append(ChangeReport(window=c.window, low=c.low, high=c.high, p_value=c.p_value,
                                start=iso_utc(windows[c.window][0]), **extra))
    return tuple(out)


def _window_warnings(per_group: list[Windows], n: int, window: str, by: str | None) -> list[str]:
    """A warning when the windows are too few to compare, or to locate a change."""
    suggestion = f"; try count windows, e.g. --window {max(n // 20, 1)}runs" if n >= 2 * MIN_SIZE else ""
    if n and all(len(w) < 2 for w in per_group):
        return [f"window={window!r} puts every run in one window: nothing to compare{suggestion}"]
    if n and all(len(w) < 2 * MIN_SIZE for w in per_group):
        return [
            f"window={window!r} makes fewer than {2 * MIN_SIZE} windows"
            + (" per group" if by else "")
            + f": too few to locate a change (only the window comparisons are shown){suggestion}"
        ]
    return []


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
