"""Intermediate goals over the course of a run: goal coherence per position, and goal drift.

Goals of steps (:func:`step_goals`)
-----------------------------------
Each step's goal key, first rule that applies (``None``: the step has no goal):

1. **explicit** — the ``goal`` column of a step that is not a tool call (``hotmess.goal(text)``
   records a step of kind ``goal``; ``hotmess.step(..., goal=)``):
   ``"goal:" + normalize_text(goal)``. A tool call is always its call (rule 2), whatever goal
   it carries: ``hotmess.goal()`` puts the goal in force on every later step, and a tool call
   pursuing "find the order" is still a step of its own (explicit goals and tool calls both
   count, each at its own position). A tool step whose goal is its own call, JSON
   ``[tool, arguments]`` (what the LangChain handler records), is a tool call too;
2. **tool call** — a step of kind ``tool``: ``"tool:" + json.dumps([name, canonical args])``
   (the tool name from ``tool``, else ``name``; arguments from ``input`` through
   :func:`~hotmess.analyzers.outcomes.canonical_action`: sorted keys, ``1.0 == 1``). Calls of
   read-only tools are kept by default (``read_only=None``): looking up the user is a step of
   the plan, and tau-bench's ground-truth actions list lookups too. Pass
   ``read_only=DEFAULT_READ_ONLY`` (or a predicate / a set of names) to leave them out;
3. **plan text** — a step of kind ``llm`` whose output states a plan: a JSON object with a
   string (or list of strings, joined by ``"; "``) under ``"plan"`` or ``"goal"``; or text
   with a line starting ``plan:`` or ``goal:`` (case-insensitive), the rest of the first such
   line. ``"plan:" + normalize_text(plan)``. Nothing else an LLM says counts: replies to the
   user are not goals.

Goal-bearing steps (:func:`goal_bearing`): the steps where a goal starts. Every tool call and
plan step (rules 2, 3); every ``goal`` record; and a step with an explicit goal that differs
from the last explicit goal before it in the run (``step(goal=)``). Other steps that merely
carry the goal in force pursue that goal; they are not new ones.
The ``k``-th goal-bearing step of a run (in ``step_index`` order, from 0) is its goal ``k``;
a run has ``L`` goals.

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

Goal drift inside a run
-----------------------
``dist_k`` = distance of goal ``k`` from the run's first goal: ``exact``: 0 if the key is
equal, else 1; ``text``: ``1 − cos`` of TF-IDF vectors (fitted on every distinct goal text);
``embedding``: cosine distance of the ``embed`` vectors. A run's drift is the least-squares
slope of ``dist_k`` over ``k = 0..L−1`` (per goal step)::

    slope = Σ_k (k − k̄)(dist_k − d̄) / Σ_k (k − k̄)²

for runs with ``L ≥ 3``. ``mean_slope`` is its mean over those runs (``runs`` of them), and runs
whose slope exceeds ``drift_threshold`` are listed, largest first. With exact tool-call keys any
change of tool counts as distance 1, so short runs that change tool reach large slopes.

With ``drift_from="instruction"`` the distance is measured from the run's instruction ``I``
(the task as the agent was given it: ``instructions[run_id]``, see
:func:`hotmess.store.readers.read_instructions`) instead of its first goal, and goal 0 counts
too (its distance need not be 0)::

    dist_k = 1 − cos(v(goal_k), v(I))     text: TF-IDF vectors fitted on every distinct goal
                                          text plus every distinct instruction of a run with a
                                          goal (texts normalised: stripped, casefolded)
    dist_k = 1 − cos(e(goal_k), e(I))     embedding: the ``embed`` vectors

and the slope is fitted as above. A run moving away from its instruction has a positive slope;
one that stays as close to it as it started, a slope near 0. ``exact`` keys are refused (a goal
key never equals an instruction: every distance would be 1). Runs without an instruction
(``None`` or blank) are left out of ``mean_slope`` and ``runs``; ``runs_without_instruction``
counts those with ``L ≥ 3``.

Runs with ``status == "incomplete"`` are left out, as in :func:`~hotmess.analyzers.analyze`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hotmess.progress import Progress
from hotmess.tables import Table

from .actions import task_references
from .common import factorize, json_float, natural_key
from .decompose import brier_by_task
from .outcomes import (
    ReadOnly,
    action_piece,
    canonical_action,
    cosine_distances,
    embedding_clusters,
    normalize_text,
    parse_actions,
    read_only_predicate,
    text_clusters,
)

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
#: What a run's goal drift is measured from: its first goal, or its instruction.
DRIFT_FROM = ("first", "instruction")
#: Drifting runs listed by ``to_dict()`` (largest slope first); the object keeps them all.
DRIFT_LIST_LIMIT = 20
#: Progress alignment has this many positions (deciles).
DECILES = 10
#: The variance trend uses positions holding at least this share of the runs at the fullest one.
TREND_MIN_SHARE = 0.5

GOAL_PREFIX = "goal:"
TOOL_PREFIX = "tool:"
PLAN_PREFIX = "plan:"

_PLAN_LINE = re.compile(r"^\s*(?:plan|goal)\s*:\s*(\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GoalPosition:
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": int(self.position),
            "n_runs": int(self.n_runs),
            "goal_clusters": int(self.goal_clusters),
            "variance": json_float(self.variance),
            "incoherence": json_float(self.incoherence),
            "bias": json_float(self.bias),
            "error": json_float(self.error),
            "n_tasks": int(self.n_tasks),
            "n_tasks_with_reference": int(self.n_tasks_with_reference),
        }


@dataclass(frozen=True)
class DriftingRun:
    run_id: str
    task_id: str
    slope: float
    n_goals: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "task_id": self.task_id,
            "slope": json_float(self.slope),
            "n_goals": int(self.n_goals),
        }


@dataclass(frozen=True, eq=False)
class GoalDrift:
    """Per-run drift from the first goal (``drift_from="first"``) or from the run's instruction
    (``"instruction"``). ``slopes`` is nan for runs with fewer than 3 goals and, from the
    instruction, for runs without one (``runs_without_instruction`` of those with 3 goals or
    more; None when measured from the first goal)."""

    mean_slope: float
    runs: int
    threshold: float
    drifting: tuple[DriftingRun, ...]
    run_ids: np.ndarray = field(repr=False)
    slopes: np.ndarray = field(repr=False)
    drift_from: str = "first"
    runs_without_instruction: int | None = None

    def to_dict(self, limit: int | None = DRIFT_LIST_LIMIT) -> dict[str, Any]:
        listed = self.drifting if limit is None else self.drifting[:limit]
        return {
            "mean_slope": json_float(self.mean_slope),
            "runs": int(self.runs),
            "from": self.drift_from,
            "runs_without_instruction": self.runs_without_instruction,
            "threshold": float(self.threshold),
            "n_drifting": len(self.drifting),
            "drifting": [d.to_dict() for d in listed],
        }


@dataclass(frozen=True)
class GoalCoherence:
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


# ---------------------------------------------------------------------------- goals of steps


def _text_column(table: Table, name: str) -> np.ndarray:
    if name in table:
        return table[name]
    out = np.empty(len(table), dtype=object)
    out[:] = None
    return out


def plan_text(output: Any) -> str | None:
    """The plan an LLM step's output states (see the module docstring), or None."""
    if not isinstance(output, str):
        if output is None:
            return None
        output = json.dumps(output)
    lowered = output.casefold()
    if "plan" not in lowered and "goal" not in lowered:
        return None
    try:
        value = json.loads(output)
    except ValueError:
        value = output
    if isinstance(value, Mapping):
        for field_name in ("plan", "goal"):
            found = value.get(field_name)
            if isinstance(found, list) and found and all(isinstance(v, str) for v in found):
                found = "; ".join(found)
            if isinstance(found, str) and found.strip():
                return found
        value = value.get("content")
    if isinstance(value, str):
        match = _PLAN_LINE.search(value)
        if match:
            return match.group(1)
    return None


def step_goals(steps: Table, *, read_only: ReadOnly = None) -> np.ndarray:
    """Each step's goal key (object array, ``None`` for no goal); the rules are in the module
    docstring: the explicit ``goal`` column, else the tool call with canonical arguments, else
    the plan text of an LLM step.

    ``steps`` needs ``kind``; uses ``goal``, ``tool``, ``name``, ``input`` and ``output`` when
    present. ``read_only`` names the tool calls that get no goal (default None: every call).
    """
    if not isinstance(steps, Table):
        raise ValueError(f"steps must be a hotmess.tables.Table, got {type(steps).__name__}")
    n = len(steps)
    keys = np.empty(n, dtype=object)
    if n == 0:
        return keys
    if "kind" not in steps:
        raise ValueError(f"steps has no 'kind' column; columns are {', '.join(steps.columns)}")
    is_ro = read_only_predicate(read_only)
    kind = steps["kind"]
    goal = _text_column(steps, "goal")

    explicit_cache: dict[str, str | None] = {}
    explicit = np.zeros(n, dtype=bool)
    call_goal = _call_goal_rows(steps, goal)
    is_tool = np.asarray(kind == "tool", dtype=bool)
    for i in np.flatnonzero(np.not_equal(goal, None)).tolist():
        if is_tool[i] or i in call_goal:  # a tool call is its call (rule 2)
            continue
        text = goal[i]
        key = explicit_cache.get(text)
        if key is None and text not in explicit_cache:
            normal = normalize_text(text)
            key = explicit_cache[text] = GOAL_PREFIX + normal if normal else None
        if key is not None:
            keys[i] = key
            explicit[i] = True

    tool_rows = np.flatnonzero((kind == "tool") & ~explicit)
    if len(tool_rows):
        tool = _text_column(steps, "tool")[tool_rows]
        names = np.where(np.not_equal(tool, None), tool, _text_column(steps, "name")[tool_rows])
        tool_cache: dict[Any, str | None] = {}
        ro_cache: dict[str, bool] = {}
        tool_keys = []
        for tool_name, text in zip(
            names.tolist(), _text_column(steps, "input")[tool_rows].tolist(), strict=True
        ):
            cache_key = (tool_name, text) if text is None or isinstance(text, str) else None
            key = tool_cache.get(cache_key, "") if cache_key is not None else ""
            if key == "":  # not seen ("" is never a key)
                tool_name = str(tool_name)
                ro = ro_cache.get(tool_name)
                if ro is None:
                    ro = ro_cache[tool_name] = bool(is_ro(tool_name))
                key = None if ro else TOOL_PREFIX + action_piece(*canonical_action((tool_name, text)))
                if cache_key is not None:
                    tool_cache[cache_key] = key
            tool_keys.append(key)
        keys[tool_rows] = tool_keys

    llm_rows = np.flatnonzero((kind == "llm") & ~explicit)
    if len(llm_rows):
        outputs = _text_column(steps, "output")
        plan_cache: dict[Any, str | None] = {}
        for i in llm_rows:
            out = outputs[i]
            if isinstance(out, str) and out in plan_cache:
                keys[i] = plan_cache[out]
                continue
            plan = plan_text(out)
            key = PLAN_PREFIX + normalize_text(plan) if plan and normalize_text(plan) else None
            if isinstance(out, str):
                plan_cache[out] = key
            keys[i] = key
    return keys


def _call_goal_rows(steps: Table, goal: np.ndarray) -> set[int]:
    """Tool steps whose ``goal`` is the call itself, JSON ``[tool, arguments]`` with the step's
    own tool name (what the LangChain handler records): their goal is the tool call (rule 2),
    so that read-only filtering and reference actions apply to them as to any tool call."""
    rows = np.flatnonzero((steps["kind"] == "tool") & np.not_equal(goal, None))
    if not len(rows):
        return set()
    tool = _text_column(steps, "tool")
    name = _text_column(steps, "name")
    out = set()
    for i in rows.tolist():
        text = goal[i]
        if not (isinstance(text, str) and text.startswith("[")):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        tool_name = tool[i] if tool[i] is not None else name[i]
        if isinstance(value, list) and len(value) == 2 and value[0] == tool_name:
            out.add(i)
    return out


def _step_order(steps: Table, run_codes: np.ndarray) -> np.ndarray:
    """Row order by run, then ``step_index`` (then table order)."""
    index = (
        steps["step_index"].astype(np.int64)
        if "step_index" in steps
        else np.arange(len(steps), dtype=np.int64)
    )
    return np.lexsort((np.arange(len(steps)), index, run_codes))


def goal_bearing(steps: Table, goals: np.ndarray) -> np.ndarray:
    """Bool per step: a goal starts here (see the module docstring).

    ``goals`` is :func:`step_goals` of the same table; ``steps`` needs ``run_id`` and ``kind``
    (and ``step_index`` for the order; table order otherwise).
    """
    n = len(steps)
    goals = np.asarray(goals, dtype=object)
    if goals.shape != (n,):
        raise ValueError(f"goals has {goals.size} values, steps has {n} rows")
    has_goal = np.not_equal(goals, None)
    explicit = np.zeros(n, dtype=bool)
    if "goal" in steps:  # explicit keys come from the goal column only
        maybe = np.flatnonzero(has_goal & np.not_equal(steps["goal"], None))
        explicit[maybe] = [goals[i].startswith(GOAL_PREFIX) for i in maybe]
    bearing = has_goal & ~explicit
    if explicit.any():
        if "run_id" not in steps:
            raise ValueError("steps has no 'run_id' column")
        bearing |= explicit & np.asarray(steps["kind"] == "goal", dtype=bool)
        run_codes, _ = factorize(steps["run_id"].tolist())
        order = _step_order(steps, run_codes)
        rows = order[explicit[order]]  # explicit goals in run order
        run_of = run_codes[rows]
        changed = np.ones(len(rows), dtype=bool)
        changed[1:] = (run_of[1:] != run_of[:-1]) | (goals[rows[1:]] != goals[rows[:-1]])
        bearing[rows[changed]] = True
    return bearing


# ---------------------------------------------------------------------------- references


def _expected_key(item: Any) -> str:
    if isinstance(item, str):
        return GOAL_PREFIX + normalize_text(item)
    return TOOL_PREFIX + action_piece(*canonical_action(item))


def _expected_goals(
    task_ids: list[str],
    task_codes: np.ndarray,
    references: np.ndarray | None,
    reference_actions: Mapping[str, Sequence[Any]] | None,
    is_ro: Callable[[str], bool],
) -> list[list[str] | None]:
    """Each task's expected goal keys, in order (None: no reference)."""
    n_tasks = len(task_ids)
    out: list[list[str] | None] = [None] * n_tasks
    if reference_actions is not None:
        for t, task_id in enumerate(task_ids):
            items = reference_actions.get(task_id)
            if items is None:
                continue
            kept = [
                it for it in items if isinstance(it, str) or not is_ro(canonical_action(it)[0])
            ]
            out[t] = [_expected_key(it) for it in kept] or None
        return out
    if references is None:
        return out
    task_refs, _ = task_references(task_codes, references, n_tasks)
    for t, ref in enumerate(task_refs):
        actions = parse_actions(ref)
        if not actions:
            continue
        out[t] = [TOOL_PREFIX + action_piece(name, args) for name, args in actions if not is_ro(name)]
        out[t] = out[t] or None
    return out


# ---------------------------------------------------------------------------- entry point


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
    if not isinstance(runs, Table) or not isinstance(steps, Table):
        raise ValueError("runs and steps must be hotmess.tables.Table s")
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {', '.join(ALIGNMENTS)}, got {align!r}")
    if method not in GOAL_METHODS:
        raise ValueError(f"method must be one of {', '.join(GOAL_METHODS)}, got {method!r}")
    if method == "embedding" and embed is None:
        raise ValueError("method='embedding' needs embed=callable(texts) -> vectors")
    if drift_from not in DRIFT_FROM:
        raise ValueError(f"drift_from must be one of {', '.join(DRIFT_FROM)}, got {drift_from!r}")
    if drift_from == "instruction":
        if method == "exact":
            raise ValueError(
                "drift_from='instruction' needs method='text' or 'embedding': an exact goal key "
                "(a tool call, a goal() text) never equals an instruction, so every distance would be 1"
            )
        if instructions is None and "instruction" not in runs:
            raise ValueError(
                "drift_from='instruction' needs instructions={run_id: text} or an 'instruction' "
                "column in runs (hotmess.store.readers.read_instructions reads them)"
            )
    drift_threshold = float(drift_threshold)
    if not np.isfinite(drift_threshold):
        raise ValueError(f"drift_threshold must be finite, got {drift_threshold}")
    for name in ("run_id", "task_id"):
        if name not in runs:
            raise ValueError(f"runs has no {name!r} column; columns are {', '.join(runs.columns)}")
    if len(steps) and "run_id" not in steps:
        raise ValueError(f"steps has no 'run_id' column; columns are {', '.join(steps.columns)}")
    is_ro = read_only_predicate(read_only)
    warnings: list[str] = []

    # complete runs; tasks in natural order of their ids
    status = _text_column(runs, "status")
    complete = np.flatnonzero(status != "incomplete")
    run_ids = runs["run_id"][complete]
    n_runs = len(run_ids)
    raw_tasks = ["<none>" if t is None else str(t) for t in runs["task_id"][complete]]
    codes, uniques = factorize(raw_tasks)
    order = sorted(range(len(uniques)), key=lambda i: natural_key(uniques[i]))
    remap = np.empty(len(uniques), dtype=np.int64)
    remap[order] = np.arange(len(uniques))
    run_task = remap[codes] if n_runs else np.zeros(0, dtype=np.int64)
    task_ids = [str(uniques[i]) for i in order]
    n_tasks = len(task_ids)

    # goal-bearing steps of those runs, in run then step order
    keys_all = step_goals(steps, read_only=read_only)
    bearing = goal_bearing(steps, keys_all) if len(steps) else np.zeros(0, dtype=bool)
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
    goal_keys = keys_all[sel]
    n_goals = len(sel)
    lengths = np.bincount(goal_run, minlength=n_runs)
    starts = np.zeros(n_runs + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    ordinal = np.arange(n_goals, dtype=np.int64) - starts[goal_run]
    goal_task = run_task[goal_run]

    # expected goals per task, flattened
    expected = _expected_goals(
        task_ids,
        run_task,
        _text_column(runs, "reference")[complete] if reference_actions is None else None,
        reference_actions,
        is_ro,
    )
    # every goal key as a code into the distinct keys (reused by clusters, kinds and drift)
    goal_codes, key_uniques = factorize(goal_keys.tolist())

    # expected goals of a kind (tool call / goal() text) the task's runs never have cannot be hit
    kind_of_key, kinds = factorize(_kind(k) for k in key_uniques)
    n_kinds = max(len(kinds), 1)
    kinds_of_task: list[set[str]] = [set() for _ in range(n_tasks)]
    for code in np.unique(goal_task * n_kinds + kind_of_key[goal_codes]).tolist():
        kinds_of_task[code // n_kinds].add(kinds[code % n_kinds])
    mismatched = 0
    for t in range(n_tasks):
        exp = expected[t]
        if exp and not any(_kind(k) in kinds_of_task[t] for k in exp):
            expected[t] = None
            mismatched += 1
    if mismatched:
        warnings.append(
            f"{mismatched} tasks have expected goals of another kind than their runs' goals "
            "(tool calls vs goal() texts): no bias for them"
        )
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

    # clusters (per task) of every goal and every expected goal
    all_codes = np.concatenate([goal_codes, ref_codes])
    all_tasks = np.concatenate([goal_task, ref_task])
    embedded: tuple[np.ndarray, np.ndarray] | None = None  # (vectors, each goal's vector row)
    if method == "exact":
        labels_all = all_codes
    else:
        width = max(len(all_uniques), 1)
        pairs, pair_codes = np.unique(all_tasks * width + all_codes, return_inverse=True)
        pair_texts = [_goal_text(all_uniques[c]) for c in (pairs % width).tolist()]
        pair_groups = (pairs // width).tolist()
        if method == "text":
            pair_labels = text_clusters(pair_texts, pair_groups, distance_threshold, progress=progress)
        else:
            assert embed is not None
            text_codes, texts = factorize(pair_texts)
            vectors = _embed(embed, [str(t) for t in texts])
            pair_labels = embedding_clusters(
                vectors[text_codes], pair_groups, distance_threshold=distance_threshold
            )
            embedded = (vectors, text_codes[pair_codes[:n_goals]])
        label_codes, _ = factorize(pair_labels.tolist())
        labels_all = label_codes[pair_codes] if len(pair_codes) else pair_codes
    goal_labels = labels_all[:n_goals]
    ref_labels = labels_all[n_goals:]

    # alignment: (goal, position) entries and the expected label at each
    if align == "index":
        entry_goal = np.arange(n_goals, dtype=np.int64)
        entry_pos = ordinal
    else:
        with_goals = np.flatnonzero(lengths > 0)
        entry_run = np.repeat(with_goals, DECILES)
        entry_pos = np.tile(np.arange(DECILES, dtype=np.int64), len(with_goals))
        entry_goal = starts[entry_run] + (entry_pos * lengths[entry_run]) // DECILES
    entry_task = goal_task[entry_goal]
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

    positions = _per_position(
        entry_pos, entry_task, entry_label, entry_ref, n_tasks, correction
    )
    anchors = None
    if drift_from == "instruction":
        anchors = _instruction_codes(runs, complete, run_ids, lengths, instructions)
        fitted_runs = lengths >= 3
        if fitted_runs.any() and not (anchors[0][fitted_runs] >= 0).any():
            warnings.append(
                f"none of the {int(fitted_runs.sum())} runs with 3 goals or more has an "
                "instruction: no goal drift from the instruction"
            )
    drift = _drift(
        method,
        goal_codes,
        key_uniques,
        goal_run,
        starts,
        lengths,
        ordinal,
        embedded=embedded,
        run_ids=run_ids,
        run_task=run_task,
        task_ids=task_ids,
        threshold=drift_threshold,
        anchors=anchors,
        embed=embed,
    )
    slope, used = _variance_trend(positions)
    return GoalCoherence(
        positions=positions,
        goal_drift=drift,
        align=align,
        method=method,
        n_runs=n_runs,
        n_runs_with_goals=int(np.count_nonzero(lengths)),
        n_tasks=n_tasks,
        n_goals=n_goals,
        read_only_excluded=read_only is not None,
        variance_slope=slope,
        trend_positions=used,
        warnings=tuple(warnings),
    )


def _goal_text(key: str) -> str:
    return key.split(":", 1)[1]


def _kind(key: str) -> str:
    return key[: key.index(":") + 1]


def _embed(embed: Callable[[list[str]], Any], texts: list[str]) -> np.ndarray:
    vectors = np.asarray(embed(texts), dtype=np.float64) if texts else np.zeros((0, 1))
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise ValueError(
            f"embed must return an array of shape ({len(texts)}, d), got {np.shape(vectors)}"
        )
    if not np.isfinite(vectors).all():
        raise ValueError("embed returned nan or inf")
    return vectors


# ---------------------------------------------------------------------------- per position


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


# ---------------------------------------------------------------------------- drift


def _drift(
    method: str,
    codes: np.ndarray,
    uniques: list[str],
    goal_run: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    ordinal: np.ndarray,
    *,
    embedded: tuple[np.ndarray, np.ndarray] | None,
    run_ids: np.ndarray,
    run_task: np.ndarray,
    task_ids: list[str],
    threshold: float,
    anchors: tuple[np.ndarray, list[str]] | None = None,
    embed: Callable[[list[str]], Any] | None = None,
) -> GoalDrift:
    """Each run's drift slope; ``anchors`` (each run's instruction code, -1 for none, and the
    distinct instructions) measures it from the instruction instead of the first goal."""
    n_runs = len(lengths)
    without: int | None = None
    if anchors is None:
        first = starts[:-1][goal_run]  # index of each goal's run's first goal
        if method == "exact":
            dist = (codes != codes[first]).astype(np.float64)
        elif method == "text":
            dist = _tfidf_distances(codes, uniques, first)
        else:
            assert embedded is not None
            dist = _embedding_distances(*embedded, first)
    else:
        anchor_of_run, anchor_texts = anchors
        anchor = anchor_of_run[goal_run]
        has = anchor >= 0
        dist = np.full(len(codes), np.nan)
        if has.any():
            if method == "text":
                dist[has] = _tfidf_instruction_distances(codes[has], uniques, anchor[has], anchor_texts)
            else:
                assert embedded is not None and embed is not None
                vectors, rows = embedded
                targets = _embed(embed, anchor_texts)
                if targets.shape[1] != vectors.shape[1]:
                    raise ValueError(
                        f"embed returned vectors of {targets.shape[1]} dimensions for the "
                        f"instructions and {vectors.shape[1]} for the goals"
                    )
                dist[has] = cosine_distances(vectors[rows[has]], targets[anchor[has]])
        without = int(np.count_nonzero((lengths >= 3) & (anchor_of_run < 0)))
    slopes = _slopes(goal_run, ordinal.astype(np.float64), dist, lengths)
    if anchors is not None:
        slopes[anchors[0] < 0] = np.nan
    fitted = np.isfinite(slopes)
    over = np.flatnonzero(fitted & (slopes > threshold))
    over = over[np.lexsort((over, -slopes[over]))]
    drifting = tuple(
        DriftingRun(str(run_ids[r]), task_ids[run_task[r]], float(slopes[r]), int(lengths[r]))
        for r in over
    )
    runs = int(fitted.sum())
    return GoalDrift(
        mean_slope=float(slopes[fitted].mean()) if runs else float("nan"),
        runs=runs,
        threshold=threshold,
        drifting=drifting,
        run_ids=np.asarray(run_ids),
        slopes=slopes if n_runs else np.zeros(0),
        drift_from="first" if anchors is None else "instruction",
        runs_without_instruction=without,
    )


def _instruction_codes(
    runs: Table,
    complete: np.ndarray,
    run_ids: np.ndarray,
    lengths: np.ndarray,
    instructions: Mapping[str, str | None] | None,
) -> tuple[np.ndarray, list[str]]:
    """Each run's instruction as a code into the distinct instructions of runs with a goal
    (-1: none, blank, or the run has no goal)."""
    if instructions is None:
        given = _text_column(runs, "instruction")[complete].tolist()
    else:
        if not isinstance(instructions, Mapping):
            raise ValueError(
                f"instructions must map run ids to text, got {type(instructions).__name__}"
            )
        given = [instructions.get(r) for r in run_ids.tolist()]
    codes = np.full(len(given), -1, dtype=np.int64)
    seen: dict[str, int] = {}
    for r, text in enumerate(given):
        if text is None or not lengths[r]:
            continue
        if not isinstance(text, str):
            raise ValueError(
                f"the instruction of run {run_ids[r]!r} is {type(text).__name__}, not text"
            )
        if text.strip():
            codes[r] = seen.setdefault(text, len(seen))
    return codes, list(seen)


def _slopes(run: np.ndarray, t: np.ndarray, d: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Least-squares slope of d over t per run (nan for runs with fewer than 3 points)."""
    n_runs = len(lengths)
    m = lengths.astype(np.float64)
    s_t = np.bincount(run, weights=t, minlength=n_runs)
    s_d = np.bincount(run, weights=d, minlength=n_runs)
    s_tt = np.bincount(run, weights=t * t, minlength=n_runs)
    s_td = np.bincount(run, weights=t * d, minlength=n_runs)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (m * s_td - s_t * s_d) / (m * s_tt - s_t**2)
    slope[lengths < 3] = np.nan
    return slope


def _tfidf_distances(key_codes: np.ndarray, keys: list[str], first: np.ndarray) -> np.ndarray:
    """1 − cosine of TF-IDF vectors (fitted on the distinct goal texts) of each goal (key
    ``keys[key_codes[i]]``) and the first goal of its run; texts without a token are at
    distance 1 from any other text."""
    if not len(key_codes):
        return np.zeros(0)
    text_of_key, texts = factorize(normalize_text(_goal_text(k)) for k in keys)
    codes = text_of_key[key_codes]
    return _tfidf_pair_distances(texts, codes, codes[first])


def _tfidf_instruction_distances(
    key_codes: np.ndarray, keys: list[str], anchor: np.ndarray, instructions: list[str]
) -> np.ndarray:
    """1 − cosine of TF-IDF vectors (fitted on the distinct goal texts and instructions) of
    each goal (key ``keys[key_codes[i]]``) and its run's instruction
    (``instructions[anchor[i]]``)."""
    text_of, texts = factorize(
        [normalize_text(_goal_text(k)) for k in keys] + [normalize_text(t) for t in instructions]
    )
    return _tfidf_pair_distances(texts, text_of[key_codes], text_of[len(keys) + anchor])


def _tfidf_pair_distances(texts: list[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 − cosine of the TF-IDF vectors (fitted on ``texts``) of ``texts[a[i]]`` and
    ``texts[b[i]]``; 0 for the same text, 1 for a text without a token and another."""
    if not len(a):
        return np.zeros(0)
    pair = a * len(texts) + b
    distinct, inverse = np.unique(pair, return_inverse=True)
    a, b = distinct // len(texts), distinct % len(texts)
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        matrix = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b").fit_transform(texts)
        cosine = np.asarray(matrix[a].multiply(matrix[b]).sum(axis=1)).ravel()
    except ValueError:  # no text has a token
        cosine = np.zeros(len(distinct))
    dist = np.clip(1.0 - cosine, 0.0, 1.0)
    dist[a == b] = 0.0
    return dist[inverse]


def _embedding_distances(vectors: np.ndarray, codes: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Cosine distance of each goal's embedding (row ``codes[i]`` of ``vectors``) from its run's
    first goal's."""
    if not len(codes):
        return np.zeros(0)
    dist = cosine_distances(vectors[codes], vectors[codes[first]])
    dist[codes == codes[first]] = 0.0
    return dist
