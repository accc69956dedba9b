"""Intermediate goals over the course of a run: goal coherence per position (and goal drift).

The goal of each step is in :mod:`.goal_keys` (explicit goals, tool calls, stated plans;
goal-bearing steps), a run's goal drift in :mod:`.goal_drift`; this module aligns the goals of
the runs of a task and measures how much they agree at each position.

Alignment (``align=``)
----------------------
- ``"index"``: position ``k`` holds goal ``k`` of every run with more than ``k`` goals;
- ``"progress"``: ten positions, progress deciles ``d = 0..9``. Goal ``k`` covers progress
  ``[k/L, (k+1)/L)`` (it starts in decile ``floor(10 k / L)``); position ``d`` holds the goal
  in force at progress ``d/10``, goal ``floor(d L / 10)``. Every run with a goal is at every
  position (a run of 3 goals holds goal 0 at deciles 0–3).

A reference list of expected goals (tau-bench's ground-truth actions) is aligned exactly as a
run is, giving the expected goal of a task at each position (none past its end under index).

Per position (:func:`goal_coherence`)
-------------------------------------
Goals are clustered per task across runs and positions (``method=``: ``"exact"`` keys;
``"text"``: :func:`~hotmess.analyzers.outcomes.text_clusters` on the goal text, i.e. the key
after its ``goal:``/``tool:``/``plan:`` prefix; ``"embedding"``:
:func:`~hotmess.analyzers.outcomes.embedding_clusters` on ``embed`` vectors of that text).
At position ``p``, for each task ``i`` with ``n`` runs there, each run is a one-hot ``f`` over
the task's goal clusters, ``p̄`` their distribution and ``y`` the one-hot expected goal
(:func:`~hotmess.analyzers.decompose.brier_by_task`)::

    variance_i = 1 − Σ_k p̄_k²            error_i = 2 (1 − p̄_y)        bias_i = ‖y − p̄‖²

    variance(p)    = mean_i variance_i            over every task with runs at p
    bias(p), error(p) = mean_i bias_i, error_i     over tasks with an expected goal at p
    incoherence(p) = Σ_i variance_i / Σ_i error_i  over tasks with an expected goal at p

(``None`` when no task has one, or ``Σ error = 0``). ``bias + variance = error`` holds per task,
and for the means when every task has an expected goal at ``p``. ``correction=True`` (the default) is
the unbiased small-sample form of :mod:`.decompose` per task and position: later positions hold
fewer runs, and the plug-in variance, low by ``(n−1)/n``, would fall with position even where
the true spread is constant (tasks with one run at ``p`` then drop out).

Runs with ``status == "incomplete"`` are left out, as in :func:`~hotmess.analyzers.analyze`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.progress import Progress
from hotmess.results import Result
from hotmess.tables import Table

from .columns import column
from .common import factorize, json_float, natural_codes
from .decompose import brier_by_task
from .goal_drift import (
    DRIFT_FROM,
    DRIFT_LIST_LIMIT,
    DriftingRun,
    GoalDrift,
    embed_texts,
    goal_drift,
    instruction_codes,
)
from .goal_keys import (
    expected_goals,
    goal_bearing,
    goal_kind,
    goal_text,
    plan_text,
    step_goals,
)
from .outcomes import ReadOnly, embedding_clusters, read_only_predicate, text_clusters

# goal keys and goal drift stay importable from here, where they were before goal_keys and
# goal_drift were split off
__all__ = [
    "ALIGNMENTS",
    "DRIFT_FROM",
    "DRIFT_LIST_LIMIT",
    "GOAL_METHODS",
    "DriftingRun",
    "GoalCoherence",
    "GoalDrift",
    "GoalPosition",
    "goal_bearing",
    "goal_coherence",
    "plan_text",
    "step_goals",
]

ALIGNMENTS = ("index", "progress")
GOAL_METHODS = ("exact", "text", "embedding")
#: Progress alignment has this many positions (deciles).
DECILES = 10
#: The variance trend uses positions holding at least this share of the runs at the fullest one.
TREND_MIN_SHARE = 0.5


@dataclass(frozen=True)
class GoalPosition(Result):
    """The spread of goals across runs at one position (``bias`` is bias²; nan: undefined).

    ``n_runs`` runs of ``n_tasks`` tasks have a goal there; ``goal_clusters`` is the number of
    distinct goal clusters summed over those tasks (a cluster belongs to one task);
    ``n_tasks_with_reference`` have an expected goal there (``bias``, ``error`` and
    ``incoherence`` are over those).
    """

    position: int
    n_runs: int
    n_tasks: int
    n_tasks_with_reference: int
    goal_clusters: int
    variance: float
    bias: float
    error: float
    incoherence: float


@dataclass(frozen=True)
class GoalCoherence(Result):
    """The result of :func:`goal_coherence`. ``to_dict()`` is JSON-safe.

    ``variance_slope`` is the least-squares slope of ``variance`` over the positions holding at
    least half as many runs as the fullest one (``trend_positions`` of them; nan with fewer
    than 2): positive when runs agree early and scatter later.
    """

    positions: tuple[GoalPosition, ...]
    goal_drift: GoalDrift
    align: str
    method: str
    n_runs: int
    n_runs_with_goals: int
    n_tasks: int
    n_goals: int
    read_only_excluded: bool
    variance_slope: float
    trend_positions: tuple[int, ...]
    warnings: tuple[str, ...] = ()

    @property
    def has_reference(self) -> bool:
        return any(p.n_tasks_with_reference for p in self.positions)

    def to_dict(self, drift_limit: int | None = DRIFT_LIST_LIMIT) -> dict[str, Any]:
        return {
            "positions": [p.to_dict() for p in self.positions],
            "goal_drift": self.goal_drift.to_dict(drift_limit),
            "align": self.align,
            "method": self.method,
            "n_runs": int(self.n_runs),
            "n_runs_with_goals": int(self.n_runs_with_goals),
            "n_tasks": int(self.n_tasks),
            "n_goals": int(self.n_goals),
            "read_only_excluded": bool(self.read_only_excluded),
            "has_reference": self.has_reference,
            "trend": {
                "variance_slope": json_float(self.variance_slope),
                "positions": list(self.trend_positions),
            },
            "warnings": list(self.warnings),
        }


def goal_coherence(
    runs: Table,
    steps: Table,
    *,
    align: str = "index",
    method: str = "exact",
    embed: Callable[[list[str]], Any] | None = None,
    reference_actions: Mapping[str, Sequence[Any]] | None = None,
    read_only: ReadOnly = None,
    drift_threshold: float = 0.1,
    drift_from: str = "first",
    instructions: Mapping[str, str | None] | None = None,
    distance_threshold: float = 0.5,
    correction: bool = True,
    progress: Progress | None = None,
) -> GoalCoherence:
    """Goal coherence per position and goal drift per run (formulas in the module docstring).

    Parameters
    ----------
    runs : the runs table; needs ``run_id`` and ``task_id``, uses ``status`` and ``reference``.
    steps : the steps table; needs ``run_id`` and ``kind``, uses ``step_index``, ``goal``,
        ``tool``, ``name``, ``input`` and ``output`` (see :func:`step_goals`).
    align : ``"index"`` (k-th goal) or ``"progress"`` (deciles of each run's goals).
    method : goal clusters per task: ``"exact"``, ``"text"`` (TF-IDF) or ``"embedding"``.
    embed : ``embed(list_of_texts) -> (n, d) array`` for ``method="embedding"``.
    reference_actions : ``{task_id: [expected goal, ...]}``, each a tool call (any form
        :func:`canonical_action` takes) or a ``str`` (an explicit goal text). Default: each
        task's ``reference`` column when it is a JSON list of actions (tau-bench's ground
        truth); tasks without one get variance only, as do tasks whose expected goals are of
        a kind their runs' goals never are (tool calls vs goal() texts; with a warning).
    read_only : tool calls that are not goals (and are dropped from reference actions too):
        None (default, every call is a goal), a predicate or a set of names; e.g.
        ``DEFAULT_READ_ONLY`` leaves out lookups.
    drift_threshold : runs whose drift slope exceeds this are listed.
    drift_from : goal drift measured from each run's ``"first"`` goal (default) or from its
        ``"instruction"`` (``method="text"`` or ``"embedding"`` only).
    instructions : ``{run_id: instruction text}`` for ``drift_from="instruction"`` (runs
        missing or ``None`` have none); default: the runs table's ``instruction`` column.
        :func:`hotmess.store.readers.read_instructions` reads them from a database.
    distance_threshold : cosine distance threshold of text / embedding clustering.
    correction : the unbiased small-sample form per task and position (default); False: plug-in.
    progress : ``progress(unit, done, total)`` (:mod:`hotmess.progress`), told the tasks
        clustered by ``method="text"`` (exact goals are compared for all tasks at once).
    """
    drift_threshold = _check_arguments(
        runs, steps, align, method, embed, drift_from, instructions, drift_threshold
    )
    is_ro = read_only_predicate(read_only)
    warnings: list[str] = []

    # complete runs; tasks in natural order of their ids
    complete = np.flatnonzero(column(runs, "status") != "incomplete")
    run_ids = runs["run_id"][complete]
    run_task, task_ids = natural_codes(
        "<none>" if t is None else str(t) for t in runs["task_id"][complete]
    )
    n_tasks = len(task_ids)
    goals = _goal_sequence(steps, run_ids, run_task, read_only)
    # every goal key as a code into the distinct keys (reused by clusters, kinds and drift)
    goal_codes, key_uniques = factorize(goals.keys.tolist())

    # expected goals per task, flattened after the goals' codes
    expected = expected_goals(
        task_ids,
        run_task,
        column(runs, "reference")[complete] if reference_actions is None else None,
        reference_actions,
        is_ro,
    )
    _drop_other_kinds(expected, key_uniques, goal_codes, goals.task, warnings)
    ref_len, ref_start, ref_task, ref_codes, all_uniques = _flatten(expected, key_uniques)

    # clusters (per task) of every goal and every expected goal
    labels_all, embedded = _cluster_labels(
        method, np.concatenate([goal_codes, ref_codes]), np.concatenate([goals.task, ref_task]),
        all_uniques, goals.n, distance_threshold=distance_threshold, embed=embed, progress=progress,
    )
    entries = _align(align, goals, labels_all[: goals.n], labels_all[goals.n :], ref_len, ref_start)
    positions = _per_position(*entries, n_tasks, correction)

    anchors = None
    if drift_from == "instruction":
        anchors = _anchors(runs, complete, run_ids, goals.lengths, instructions, warnings)
    drift = goal_drift(
        method, goal_codes, key_uniques, goals.run, goals.starts, goals.lengths, goals.ordinal,
        embedded=embedded, run_ids=run_ids, run_task=run_task, task_ids=task_ids,
        threshold=drift_threshold, anchors=anchors, embed=embed,
    )
    slope, used = _variance_trend(positions)
    return GoalCoherence(
        positions=positions,
        goal_drift=drift,
        align=align,
        method=method,
        n_runs=len(run_ids),
        n_runs_with_goals=int(np.count_nonzero(goals.lengths)),
        n_tasks=n_tasks,
        n_goals=goals.n,
        read_only_excluded=read_only is not None,
        variance_slope=slope,
        trend_positions=used,
        warnings=tuple(warnings),
    )


def _check_arguments(
    runs: Table,
    steps: Table,
    align: str,
    method: str,
    embed: Callable[[list[str]], Any] | None,
    drift_from: str,
    instructions: Mapping[str, str | None] | None,
    drift_threshold: float,
) -> float:
    """ValueError with one sentence for a bad argument; the drift threshold as a float."""
    if not isinstance(runs, Table) or not isinstance(steps, Table):
        raise AnalysisError("runs and steps must be hotmess.tables.Table s")
    if align not in ALIGNMENTS:
        raise AnalysisError(f"align must be one of {', '.join(ALIGNMENTS)}, got {align!r}")
    if method not in GOAL_METHODS:
        raise AnalysisError(f"method must be one of {', '.join(GOAL_METHODS)}, got {method!r}")
    if method == "embedding" and embed is None:
        raise AnalysisError("method='embedding' needs embed=callable(texts) -> vectors")
    if drift_from not in DRIFT_FROM:
        raise AnalysisError(f"drift_from must be one of {', '.join(DRIFT_FROM)}, got {drift_from!r}")
    if drift_from == "instruction":
        if method == "exact":
            raise AnalysisError(
                "drift_from='instruction' needs method='text' or 'embedding': an exact goal key "
                "(a tool call, a goal() text) never equals an instruction, so every distance would be 1"
            )
        if instructions is None and "instruction" not in runs:
            raise AnalysisError(
                "drift_from='instruction' needs instructions={run_id: text} or an 'instruction' "
                "column in runs (hotmess.store.readers.read_instructions reads them)"
            )
    threshold = float(drift_threshold)
    if not np.isfinite(threshold):
        raise AnalysisError(f"drift_threshold must be finite, got {threshold}")
    for name in ("run_id", "task_id"):
        if name not in runs:
            raise AnalysisError(f"runs has no {name!r} column; columns are {', '.join(runs.columns)}")
    if len(steps) and "run_id" not in steps:
        raise AnalysisError(f"steps has no 'run_id' column; columns are {', '.join(steps.columns)}")
    return threshold


@dataclass(frozen=True)
class _Goals:
    """The goal-bearing steps of the complete runs, in run then step order: each one's key,
    run row, ordinal ``k`` in its run and task; per run its number of goals ``L`` and where its
    goals start (``starts[r] .. starts[r + 1]``)."""

    keys: np.ndarray
    run: np.ndarray
    task: np.ndarray
    ordinal: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray

    @property
    def n(self) -> int:
        return len(self.keys)


def _goal_sequence(
    steps: Table, run_ids: np.ndarray, run_task: np.ndarray, read_only: ReadOnly
) -> _Goals:
    keys_all = step_goals(steps, read_only=read_only)
    bearing = goal_bearing(steps, keys_all) if len(steps) else np.zeros(0, dtype=bool)
    n_runs = len(run_ids)
    row_of = {rid: i for i, rid in enumerate(run_ids.tolist())}
    sel = np.flatnonzero(bearing)
    goal_run = np.fromiter(
        (row_of.get(r, -1) for r in steps["run_id"][sel]) if len(sel) else (),
        dtype=np.int64,
        count=len(sel),
    )
    keep = goal_run >= 0
    sel, goal_run = sel[keep], goal_run[keep]
    step_index = (
        steps["step_index"][sel].astype(np.int64)
        if "step_index" in steps
        else sel.astype(np.int64)
    )
    goal_order = np.lexsort((sel, step_index, goal_run))
    sel, goal_run = sel[goal_order], goal_run[goal_order]
    lengths = np.bincount(goal_run, minlength=n_runs)
    starts = np.zeros(n_runs + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    ordinal = np.arange(len(sel), dtype=np.int64) - starts[goal_run]
    return _Goals(keys_all[sel], goal_run, run_task[goal_run], ordinal, lengths, starts)


def _drop_other_kinds(
    expected: list[list[str] | None],
    key_uniques: list[str],
    goal_codes: np.ndarray,
    goal_task: np.ndarray,
    warnings: list[str],
) -> None:
    """Expected goals of a kind (tool call / goal() text) a task's runs never have cannot be
    hit: such a task gets no expected goals (in place), and a warning."""
    n_tasks = len(expected)
    kind_of_key, kinds = factorize(goal_kind(k) for k in key_uniques)
    n_kinds = max(len(kinds), 1)
    kinds_of_task: list[set[str]] = [set() for _ in range(n_tasks)]
    for code in np.unique(goal_task * n_kinds + kind_of_key[goal_codes]).tolist():
        kinds_of_task[code // n_kinds].add(kinds[code % n_kinds])
    mismatched = 0
    for t in range(n_tasks):
        exp = expected[t]
        if exp and not any(goal_kind(k) in kinds_of_task[t] for k in exp):
            expected[t] = None
            mismatched += 1
    if mismatched:
        warnings.append(
            f"{mismatched} tasks have expected goals of another kind than their runs' goals "
            "(tool calls vs goal() texts): no bias for them"
        )


def _flatten(
    expected: list[list[str] | None], key_uniques: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The expected goals of all tasks in one array: per task their number and start, each
    one's task and code; codes continue the goal keys' (``all_uniques``: every distinct key)."""
    n_tasks = len(expected)
    ref_len = np.array([len(e) if e else 0 for e in expected], dtype=np.int64)
    ref_start = np.zeros(n_tasks + 1, dtype=np.int64)
    np.cumsum(ref_len, out=ref_start[1:])
    ref_task = np.repeat(np.arange(n_tasks, dtype=np.int64), ref_len)
    all_uniques = list(key_uniques)
    code_of = {k: i for i, k in enumerate(all_uniques)}
    ref_codes = np.array(
        [code_of.setdefault(k, len(code_of)) for e in expected if e for k in e], dtype=np.int64
    )
    all_uniques += list(code_of)[len(all_uniques) :]
    return ref_len, ref_start, ref_task, ref_codes, all_uniques


def _anchors(
    runs: Table,
    complete: np.ndarray,
    run_ids: np.ndarray,
    lengths: np.ndarray,
    instructions: Mapping[str, str | None] | None,
    warnings: list[str],
) -> tuple[np.ndarray, list[str]]:
    """Each run's instruction code (:func:`~.goal_drift.instruction_codes`), with a warning
    when no run that has a drift slope has an instruction."""
    anchors = instruction_codes(runs, complete, run_ids, lengths, instructions)
    fitted_runs = lengths >= 3
    if fitted_runs.any() and not (anchors[0][fitted_runs] >= 0).any():
        warnings.append(
            f"none of the {int(fitted_runs.sum())} runs with 3 goals or more has an "
            "instruction: no goal drift from the instruction"
        )
    return anchors


def _cluster_labels(
    method: str,
    all_codes: np.ndarray,
    all_tasks: np.ndarray,
    all_uniques: list[str],
    n_goals: int,
    *,
    distance_threshold: float,
    embed: Callable[[list[str]], Any] | None,
    progress: Progress | None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """A cluster label for each goal then each expected goal (clustered per task), and for
    ``method="embedding"`` the vectors with each goal's row among them (for the drift)."""
    if method == "exact":
        return all_codes, None
    embedded = None
    width = max(len(all_uniques), 1)
    pairs, pair_codes = np.unique(all_tasks * width + all_codes, return_inverse=True)
    pair_texts = [goal_text(all_uniques[c]) for c in (pairs % width).tolist()]
    pair_groups = (pairs // width).tolist()
    if method == "text":
        pair_labels = text_clusters(pair_texts, pair_groups, distance_threshold, progress=progress)
    else:
        assert embed is not None
        text_codes, texts = factorize(pair_texts)
        vectors = embed_texts(embed, [str(t) for t in texts])
        pair_labels = embedding_clusters(
            vectors[text_codes], pair_groups, distance_threshold=distance_threshold
        )
        embedded = (vectors, text_codes[pair_codes[:n_goals]])
    label_codes, _ = factorize(pair_labels.tolist())
    return (label_codes[pair_codes] if len(pair_codes) else pair_codes), embedded


def _align(
    align: str,
    goals: _Goals,
    goal_labels: np.ndarray,
    ref_labels: np.ndarray,
    ref_len: np.ndarray,
    ref_start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (goal, position) entries: each one's position, task, goal label and expected label
    there (-1: none), by ``align`` (module docstring)."""
    if align == "index":
        entry_goal = np.arange(goals.n, dtype=np.int64)
        entry_pos = goals.ordinal
    else:
        with_goals = np.flatnonzero(goals.lengths > 0)
        entry_run = np.repeat(with_goals, DECILES)
        entry_pos = np.tile(np.arange(DECILES, dtype=np.int64), len(with_goals))
        entry_goal = goals.starts[entry_run] + (entry_pos * goals.lengths[entry_run]) // DECILES
    entry_task = goals.task[entry_goal]
    entry_label = goal_labels[entry_goal]
    entry_ref = np.full(len(entry_goal), -1, dtype=np.int64)
    task_ref_len = ref_len[entry_task]
    if align == "index":
        has_ref = entry_pos < task_ref_len
        ref_at = ref_start[entry_task] + entry_pos
    else:
        has_ref = task_ref_len > 0
        ref_at = ref_start[entry_task] + (entry_pos * task_ref_len) // DECILES
    entry_ref[has_ref] = ref_labels[ref_at[has_ref]]
    return entry_pos, entry_task, entry_label, entry_ref


def _per_position(
    pos: np.ndarray,
    task: np.ndarray,
    label: np.ndarray,
    ref: np.ndarray,
    n_tasks: int,
    correction: bool,
) -> tuple[GoalPosition, ...]:
    """One Brier decomposition per (position, task) cell, aggregated per position."""
    if not len(pos):
        return ()
    n_pos = int(pos.max()) + 1
    cell_codes, cell_inverse = np.unique(pos * max(n_tasks, 1) + task, return_inverse=True)
    cell_pos = cell_codes // max(n_tasks, 1)
    cell_ref = np.full(len(cell_codes), -1, dtype=np.int64)
    cell_ref[cell_inverse] = ref  # one expected goal per (task, position): all entries agree
    has_ref = cell_ref >= 0
    dec = brier_by_task(
        cell_inverse,
        label,
        (ref >= 0) & (label == ref),
        has_reference=has_ref,
        n_tasks=len(cell_codes),
        correction=correction,
    )
    n_runs = np.bincount(pos, minlength=n_pos)
    n_cells = np.bincount(cell_pos, minlength=n_pos)
    n_labels = int(label.max()) + 1 if len(label) else 1
    # return_counts keeps np.unique on its sorting path: numpy 2.4's hash path (taken when
    # nothing else is asked) is ~50x slower on 2M mostly distinct int64 values
    distinct, _ = np.unique(cell_inverse.astype(np.int64) * n_labels + label, return_counts=True)
    clusters = np.bincount(cell_pos[distinct // n_labels], minlength=n_pos)

    def sums(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = mask & np.isfinite(values)
        total = np.bincount(cell_pos[ok], weights=values[ok], minlength=n_pos)
        return total, np.bincount(cell_pos[ok], minlength=n_pos)

    every = np.ones(len(cell_codes), dtype=bool)
    judged = dec.has_reference & np.isfinite(dec.error)
    var_all, var_all_n = sums(dec.variance, every)
    var_ref, _ = sums(dec.variance, judged)
    bias, _ = sums(dec.bias, judged)
    err, err_n = sums(dec.error, judged)
    n_ref = np.bincount(cell_pos[dec.has_reference], minlength=n_pos)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.where(var_all_n > 0, var_all / var_all_n, np.nan)
        bias_mean = np.where(err_n > 0, bias / err_n, np.nan)
        err_mean = np.where(err_n > 0, err / err_n, np.nan)
        incoherence = np.where((err_n > 0) & (err > 0), var_ref / err, np.nan)
    return tuple(
        GoalPosition(
            position=p,
            n_runs=int(n_runs[p]),
            n_tasks=int(n_cells[p]),
            n_tasks_with_reference=int(n_ref[p]),
            goal_clusters=int(clusters[p]),
            variance=float(variance[p]),
            bias=float(bias_mean[p]),
            error=float(err_mean[p]),
            incoherence=float(incoherence[p]),
        )
        for p in range(n_pos)
        if n_runs[p]
    )


def _variance_trend(positions: tuple[GoalPosition, ...]) -> tuple[float, tuple[int, ...]]:
    if not positions:
        return float("nan"), ()
    fullest = max(p.n_runs for p in positions)
    used = [
        p
        for p in positions
        if p.n_runs >= TREND_MIN_SHARE * fullest and np.isfinite(p.variance)
    ]
    if len(used) < 2:
        return float("nan"), tuple(p.position for p in used)
    x = np.array([p.position for p in used], dtype=np.float64)
    y = np.array([p.variance for p in used], dtype=np.float64)
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x**2).sum()), tuple(p.position for p in used)
