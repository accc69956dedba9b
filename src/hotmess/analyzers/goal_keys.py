"""What each step of a run is trying to achieve: its goal key, and where a new goal starts.

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

A reference list of expected goals (tau-bench's ground-truth actions; :func:`expected_goals`)
is keyed as runs' goals are: a tool call ``"tool:" + [name, canonical args]``, a text
``"goal:" + normalize_text(text)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.tables import Table

from .actions import task_references
from .columns import column
from .common import factorize
from .outcomes import (
    ReadOnly,
    action_piece,
    canonical_action,
    normalize_text,
    parse_actions,
    read_only_predicate,
)

__all__ = [
    "GOAL_PREFIX",
    "PLAN_PREFIX",
    "TOOL_PREFIX",
    "expected_goals",
    "goal_bearing",
    "goal_kind",
    "goal_text",
    "plan_text",
    "step_goals",
]

GOAL_PREFIX = "goal:"
TOOL_PREFIX = "tool:"
PLAN_PREFIX = "plan:"

_PLAN_LINE = re.compile(r"^\s*(?:plan|goal)\s*:\s*(\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)


def goal_text(key: str) -> str:
    """The text of a goal key, after its ``goal:``/``tool:``/``plan:`` prefix."""
    return key.split(":", 1)[1]


def goal_kind(key: str) -> str:
    """The kind of a goal key: its prefix (``"goal:"``, ``"tool:"`` or ``"plan:"``)."""
    return key[: key.index(":") + 1]


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
        raise AnalysisError(f"steps must be a hotmess.tables.Table, got {type(steps).__name__}")
    n = len(steps)
    keys = np.empty(n, dtype=object)
    if n == 0:
        return keys
    if "kind" not in steps:
        raise AnalysisError(f"steps has no 'kind' column; columns are {', '.join(steps.columns)}")
    is_ro = read_only_predicate(read_only)
    kind = steps["kind"]
    explicit = _explicit_goals(steps, keys)
    tool_rows = np.flatnonzero((kind == "tool") & ~explicit)
    if len(tool_rows):
        keys[tool_rows] = _tool_goals(steps, tool_rows, is_ro)
    llm_rows = np.flatnonzero((kind == "llm") & ~explicit)
    if len(llm_rows):
        _plan_goals(steps, llm_rows, keys)
    return keys


def _explicit_goals(steps: Table, keys: np.ndarray) -> np.ndarray:
    """Rule 1: set the explicit goal keys in ``keys``; True where a step has one."""
    goal = column(steps, "goal")
    explicit_cache: dict[str, str | None] = {}
    explicit = np.zeros(len(steps), dtype=bool)
    call_goal = _call_goal_rows(steps, goal)
    is_tool = np.asarray(steps["kind"] == "tool", dtype=bool)
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
    return explicit


def _tool_goals(steps: Table, rows: np.ndarray, is_ro: Callable[[str], bool]) -> list[str | None]:
    """Rule 2: the goal key of each tool step ``rows`` (None for a read-only tool)."""
    tool = column(steps, "tool")[rows]
    names = np.where(np.not_equal(tool, None), tool, column(steps, "name")[rows])
    tool_cache: dict[Any, str | None] = {}
    ro_cache: dict[str, bool] = {}
    tool_keys = []
    for tool_name, text in zip(names.tolist(), column(steps, "input")[rows].tolist(), strict=True):
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
    return tool_keys


def _plan_goals(steps: Table, rows: np.ndarray, keys: np.ndarray) -> None:
    """Rule 3: set the plan keys of the LLM steps ``rows`` in ``keys``."""
    outputs = column(steps, "output")
    plan_cache: dict[Any, str | None] = {}
    for i in rows:
        out = outputs[i]
        if isinstance(out, str) and out in plan_cache:
            keys[i] = plan_cache[out]
            continue
        plan = plan_text(out)
        key = PLAN_PREFIX + normalize_text(plan) if plan and normalize_text(plan) else None
        if isinstance(out, str):
            plan_cache[out] = key
        keys[i] = key


def _call_goal_rows(steps: Table, goal: np.ndarray) -> set[int]:
    """Tool steps whose ``goal`` is the call itself, JSON ``[tool, arguments]`` with the step's
    own tool name (what the LangChain handler records): their goal is the tool call (rule 2),
    so that read-only filtering and reference actions apply to them as to any tool call."""
    rows = np.flatnonzero((steps["kind"] == "tool") & np.not_equal(goal, None))
    if not len(rows):
        return set()
    tool = column(steps, "tool")
    name = column(steps, "name")
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
        raise AnalysisError(f"goals has {goals.size} values, steps has {n} rows")
    has_goal = np.not_equal(goals, None)
    explicit = np.zeros(n, dtype=bool)
    if "goal" in steps:  # explicit keys come from the goal column only
        maybe = np.flatnonzero(has_goal & np.not_equal(steps["goal"], None))
        explicit[maybe] = [goals[i].startswith(GOAL_PREFIX) for i in maybe]
    bearing = has_goal & ~explicit
    if explicit.any():
        if "run_id" not in steps:
            raise AnalysisError("steps has no 'run_id' column")
        bearing |= explicit & np.asarray(steps["kind"] == "goal", dtype=bool)
        run_codes, _ = factorize(steps["run_id"].tolist())
        order = _step_order(steps, run_codes)
        rows = order[explicit[order]]  # explicit goals in run order
        run_of = run_codes[rows]
        changed = np.ones(len(rows), dtype=bool)
        changed[1:] = (run_of[1:] != run_of[:-1]) | (goals[rows[1:]] != goals[rows[:-1]])
        bearing[rows[changed]] = True
    return bearing


def _expected_key(item: Any) -> str:
    if isinstance(item, str):
        return GOAL_PREFIX + normalize_text(item)
    return TOOL_PREFIX + action_piece(*canonical_action(item))


def expected_goals(
    task_ids: list[str],
    task_codes: np.ndarray,
    references: np.ndarray | None,
    reference_actions: Mapping[str, Sequence[Any]] | None,
    is_ro: Callable[[str], bool],
) -> list[list[str] | None]:
    """Each task's expected goal keys, in order (None: no reference): ``reference_actions``
    when given (tool calls, or ``str`` goal texts), else each task's reference when it is a
    JSON list of actions; calls of read-only tools are left out."""
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
