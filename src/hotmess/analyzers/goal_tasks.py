"""Goal coherence per task: what :func:`hotmess.analyzers.goals.goal_coherence` needs of each task.

``goal_figures(runs, steps, ...)`` takes the runs of whole tasks (one task, or many) and
returns their :class:`GoalFigures`: per position the sums over their tasks of the per-task
Brier figures (``Σ variance_i``, ``Σ bias_i``, ``Σ error_i``, and the counts of tasks, runs
and goal clusters they are over), each complete run's goal-drift slope, and the counts the
result reports. Goals are clustered per task, aligned and decomposed per (position, task)
cell, so nothing in a task's figures depends on another task, but for the TF-IDF fit of the
text drift, which is over every task's goal texts: it is given as ``frequencies``
(:func:`~hotmess.analyzers.goal_drift.term_frequencies` of :func:`goal_texts` of all tasks),
and fitted on the runs given when it is not.

The figures of tasks computed apart (on the workers of an engine) put together by
:func:`~hotmess.analyzers.goals.goal_combine`, in the order of their runs, are the goal
coherence of all of them: the local :func:`~hotmess.analyzers.goals.goal_coherence` is
``goal_combine([goal_figures(runs, steps, ...)], ...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotmess.progress import Progress
from hotmess.tables import Table
from hotmess.vocab.instructions import step_instruction, stored_run_instruction

from .columns import column
from .common import factorize, natural_codes
from .decompose import brier_by_task
from .goal_drift import TermFrequencies, drift_slopes, drift_texts, embed_texts, instruction_codes
from .goal_keys import expected_goals, goal_bearing, goal_kind, goal_text, step_goals
from .outcomes import ReadOnly, embedding_clusters, read_only_predicate, text_clusters

__all__ = ["DECILES", "SUMS", "GoalFigures", "goal_figures", "goal_texts", "run_instructions"]

#: Progress alignment has this many positions (deciles).
DECILES = 10
#: The rows of :attr:`GoalFigures.sums`, one column per position: runs there, tasks with runs
#: there, tasks with an expected goal there, goal clusters; Σ variance_i and its count over
#: every task; Σ variance_i, Σ bias_i, Σ error_i and their count over the judged tasks (an
#: expected goal and a finite error).
SUMS = ("n_runs", "n_tasks", "n_tasks_with_reference", "goal_clusters", "variance_all", "n_variance",
        "variance_judged", "bias", "error", "n_judged")


@dataclass(frozen=True, eq=False)
class GoalFigures:
    """The goal figures of a set of whole tasks (the module docstring): ``sums`` (the
    :data:`SUMS` by position, float64), per complete run (in the order given) its id, task,
    number of goals and drift slope; the counts of tasks, goals, tasks whose expected goals are
    of another kind than their runs' goals (``mismatched``), runs with 3 goals or more
    (``n_fitted``) and those of them with an instruction (``n_fitted_instructed``; with
    ``runs_without_instruction``, None when drift is from the first goal)."""

    sums: np.ndarray
    run_ids: np.ndarray
    run_tasks: np.ndarray
    lengths: np.ndarray
    slopes: np.ndarray
    n_tasks: int
    n_goals: int
    mismatched: int
    n_fitted: int
    n_fitted_instructed: int
    runs_without_instruction: int | None


def goal_figures(
    runs: Table,
    steps: Table,
    *,
    align: str = "index",
    method: str = "exact",
    embed: Callable[[list[str]], Any] | None = None,
    reference_actions: Mapping[str, Sequence[Any]] | None = None,
    read_only: ReadOnly = None,
    drift_from: str = "first",
    instructions: Mapping[str, str | None] | None = None,
    distance_threshold: float = 0.5,
    correction: bool = True,
    progress: Progress | None = None,
    frequencies: TermFrequencies | None = None,
) -> GoalFigures:
    """The :class:`GoalFigures` of the runs of whole tasks; the parameters are those of
    :func:`~hotmess.analyzers.goals.goal_coherence` (checked there), and ``frequencies`` the
    TF-IDF fit of the text drift (default: fitted on these runs' goals)."""
    is_ro = read_only_predicate(read_only)
    # complete runs; tasks in natural order of their ids
    complete = np.flatnonzero(column(runs, "status") != "incomplete")
    run_ids = runs["run_id"][complete]
    run_task, task_ids = natural_codes(
        "<none>" if t is None else str(t) for t in runs["task_id"][complete]
    )
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
    mismatched = _drop_other_kinds(expected, key_uniques, goal_codes, goals.task)
    ref_len, ref_start, ref_task, ref_codes, all_uniques = _flatten(expected, key_uniques)

    # clusters (per task) of every goal and every expected goal
    labels_all, embedded = _cluster_labels(
        method, np.concatenate([goal_codes, ref_codes]), np.concatenate([goals.task, ref_task]),
        all_uniques, goals.n, distance_threshold=distance_threshold, embed=embed, progress=progress,
    )
    entries = _align(align, goals, labels_all[: goals.n], labels_all[goals.n :], ref_len, ref_start)
    sums = _position_sums(*entries, len(task_ids), correction)

    anchors = None
    fitted = goals.lengths >= 3
    n_instructed = 0
    if drift_from == "instruction":
        anchors = instruction_codes(runs, complete, run_ids, goals.lengths, instructions)
        n_instructed = int(np.count_nonzero(anchors[0][fitted] >= 0))
    slopes, without = drift_slopes(
        method, goal_codes, key_uniques, goals.run, goals.starts, goals.lengths, goals.ordinal,
        embedded=embedded, anchors=anchors, embed=embed, frequencies=frequencies,
    )
    run_tasks = np.empty(len(run_ids), dtype=object)
    run_tasks[:] = [task_ids[c] for c in run_task.tolist()]
    return GoalFigures(
        sums=sums, run_ids=np.asarray(run_ids), run_tasks=run_tasks, lengths=goals.lengths,
        slopes=slopes, n_tasks=len(task_ids), n_goals=goals.n, mismatched=mismatched,
        n_fitted=int(np.count_nonzero(fitted)), n_fitted_instructed=n_instructed,
        runs_without_instruction=without,
    )


def run_instructions(runs: Table, steps: Table) -> dict[str, str]:
    """Each run's instruction, by run id (runs without one are not keys), from the tables, as
    :func:`hotmess.store.readers.read_instructions` finds it in a database: the run's stored
    ``attributes`` (:func:`~hotmess.vocab.instructions.stored_run_instruction`), else the
    ``input`` of its first LLM step that has one (``steps`` in step order within each run)."""
    found: dict[str, str] = {}
    missing: set[str] = set()
    for run_id, attributes in zip(runs["run_id"].tolist(), column(runs, "attributes").tolist(), strict=True):
        text = stored_run_instruction(attributes)
        if text is None:
            missing.add(run_id)
        else:
            found[run_id] = text
    if missing and len(steps):
        inputs = column(steps, "input")
        for i in np.flatnonzero(np.asarray(steps["kind"] == "llm", dtype=bool) & np.not_equal(inputs, None)).tolist():
            run_id = steps["run_id"][i]
            if run_id in missing:
                missing.discard(run_id)  # its first LLM step with an input
                text = step_instruction(inputs[i])
                if text is not None:
                    found[run_id] = text
    return found


def goal_texts(
    runs: Table,
    steps: Table,
    *,
    read_only: ReadOnly = None,
    drift_from: str = "first",
    instructions: Mapping[str, str | None] | None = None,
) -> list[str]:
    """The distinct normalised texts the TF-IDF of the text drift is fitted on for these
    runs (:func:`~hotmess.analyzers.goal_drift.drift_texts`): their goals' and, with
    ``drift_from="instruction"``, their instructions (runs with a goal)."""
    complete = np.flatnonzero(column(runs, "status") != "incomplete")
    run_ids = runs["run_id"][complete]
    run_task, _ = natural_codes("<none>" if t is None else str(t) for t in runs["task_id"][complete])
    goals = _goal_sequence(steps, run_ids, run_task, read_only)
    _, key_uniques = factorize(goals.keys.tolist())
    anchor_texts: list[str] = []
    if drift_from == "instruction":
        anchor_texts = instruction_codes(runs, complete, run_ids, goals.lengths, instructions)[1]
    return drift_texts([str(k) for k in key_uniques], anchor_texts)


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
) -> int:
    """Expected goals of a kind (tool call / goal() text) a task's runs never have cannot be
    hit: such a task gets no expected goals (in place). Returns the number of such tasks."""
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
    return mismatched



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


def _position_sums(
    pos: np.ndarray,
    task: np.ndarray,
    label: np.ndarray,
    ref: np.ndarray,
    n_tasks: int,
    correction: bool,
) -> np.ndarray:
    """One Brier decomposition per (position, task) cell, summed per position (:data:`SUMS`)."""
    if not len(pos):
        return np.zeros((len(SUMS), 0))
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
    n_labels = int(label.max()) + 1 if len(label) else 1
    # return_counts keeps np.unique on its sorting path: numpy 2.4's hash path (taken when
    # nothing else is asked) is ~50x slower on 2M mostly distinct int64 values
    distinct, _ = np.unique(cell_inverse.astype(np.int64) * n_labels + label, return_counts=True)

    def count(at: np.ndarray) -> np.ndarray:
        return np.bincount(at, minlength=n_pos).astype(np.float64)

    def sums(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = mask & np.isfinite(values)
        total = np.bincount(cell_pos[ok], weights=values[ok], minlength=n_pos)
        return total, count(cell_pos[ok])

    every = np.ones(len(cell_codes), dtype=bool)
    judged = dec.has_reference & np.isfinite(dec.error)
    var_all, var_all_n = sums(dec.variance, every)
    var_ref, _ = sums(dec.variance, judged)
    bias, _ = sums(dec.bias, judged)
    err, err_n = sums(dec.error, judged)
    return np.stack([
        count(pos), count(cell_pos), count(cell_pos[dec.has_reference]),
        count(cell_pos[distinct // n_labels]), var_all, var_all_n, var_ref, bias, err, err_n,
    ])
