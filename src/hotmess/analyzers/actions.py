"""Tool calls of runs, and what a task's reference expects.

A run's **action key** is the canonical JSON list of its state-changing tool calls, in step
order (``kind == "tool"`` steps by ``step_index``; a run with no tool step whose outcome is a JSON
list of actions uses that list): ``"[" + ",".join(action_piece(name, args)) + "]"`` over the
calls whose tool is not read-only (:mod:`.outcomes`). The **pieces** of a run are all its calls,
read-only ones included, for matching against a reference's expected actions.

A task's **reference** is the most common non-missing reference among its runs (ties: the
smallest text); a reference that is a JSON list of actions gives an action key and the
expected pieces of the checks decomposition.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.tables import Table

from .columns import column
from .outcomes import action_piece, canonical_action, parse_actions

__all__ = ["collect_actions", "reference_actions", "task_references"]


class _Pieces:
    """The distinct call pieces seen so far, numbered in order of first appearance, with whether
    each one's tool is read-only; ``cache`` maps ``(tool, arguments text)`` to a piece's code."""

    def __init__(self, is_read_only: Callable[[str], bool]) -> None:
        self.is_read_only = is_read_only
        self.pieces: list[str] = []
        self.read_only: list[bool] = []
        self.cache: dict[Any, int] = {}
        self._ro_cache: dict[str, bool] = {}

    def code(self, name: str, arguments: Any, cache_key: Any) -> int:
        code = self.cache.get(cache_key) if cache_key is not None else None
        if code is None:
            piece = action_piece(name, arguments)
            code = self.cache.get(piece)
            if code is None:
                code = self.cache[piece] = len(self.pieces)
                self.pieces.append(piece)
                ro = self._ro_cache.get(name)
                if ro is None:
                    ro = self._ro_cache[name] = bool(self.is_read_only(name))
                self.read_only.append(ro)
            if cache_key is not None:
                self.cache[cache_key] = code
        return code


def _step_calls(
    book: _Pieces, run_ids: np.ndarray, steps: Table
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run row, order within the run, piece code) of every tool step of the runs."""
    for name in ("run_id", "kind"):
        if name not in steps:
            raise AnalysisError(f"steps has no {name!r} column; columns are {', '.join(steps.columns)}")
    tool_mask = np.asarray(steps["kind"] == "tool", dtype=bool)
    position = {rid: i for i, rid in enumerate(run_ids)}
    rows = np.fromiter(
        (position.get(r, -1) for r in steps["run_id"][tool_mask]),
        dtype=np.int64,
        count=int(tool_mask.sum()),
    )
    keep = rows >= 0
    selected = np.flatnonzero(tool_mask)[keep]
    rows = rows[keep]
    tool_names = column(steps, "tool")[selected]
    step_names = column(steps, "name")[selected]
    inputs = column(steps, "input")[selected]
    if "step_index" in steps:
        order = steps["step_index"][selected].astype(np.int64)
    else:
        order = np.arange(len(selected), dtype=np.int64)
    codes = np.empty(len(selected), dtype=np.int64)
    for i, (tool, alt, text) in enumerate(zip(tool_names, step_names, inputs, strict=True)):
        name = str(tool if tool is not None else alt)
        cache_key = (name, text) if isinstance(text, str) or text is None else None
        if cache_key is not None and cache_key in book.cache:
            codes[i] = book.cache[cache_key]
            continue
        _, arguments = canonical_action((name, text))
        codes[i] = book.code(name, arguments, cache_key)
    return rows, order, codes


def _outcome_calls(
    book: _Pieces, outcomes: np.ndarray, runs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run row, order, piece code) of the actions listed by the outcomes of ``runs`` (rows)."""
    rows, order, codes = [], [], []
    for i in runs:
        actions = parse_actions(outcomes[i])
        if not actions:
            continue
        for j, (name, arguments) in enumerate(actions):
            rows.append(i)
            order.append(j)
            codes.append(book.code(name, arguments, None))
    as_array = [np.asarray(values, dtype=np.int64) for values in (rows, order, codes)]
    return as_array[0], as_array[1], as_array[2]


def collect_actions(
    run_ids: np.ndarray,
    outcomes: np.ndarray,
    steps: Table | None,
    is_read_only: Callable[[str], bool],
    want_pieces: bool,
) -> tuple[np.ndarray, list[list[str]] | None]:
    """Each run's action key (state-changing calls) and, if wanted, all its call pieces.

    Tool calls come from the steps table (``kind == "tool"``, by ``step_index``); a run with no
    tool step whose outcome is a JSON list of actions uses that list.
    """
    n = len(run_ids)
    book = _Pieces(is_read_only)
    found = []
    has_steps = np.zeros(n, dtype=bool)
    if steps is not None and len(steps):
        found.append(_step_calls(book, run_ids, steps))
        has_steps[found[0][0]] = True
    found.append(_outcome_calls(book, outcomes, np.flatnonzero(~has_steps)))

    rows = np.concatenate([f[0] for f in found])
    order = np.lexsort((np.concatenate([f[1] for f in found]), rows))
    rows = rows[order]
    codes = np.concatenate([f[2] for f in found])[order]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    piece_arr = np.empty(len(book.pieces), dtype=object)
    piece_arr[:] = book.pieces
    ro = np.asarray(book.read_only, dtype=bool)

    state = ~ro[codes] if len(codes) else np.zeros(0, dtype=bool)
    kept = piece_arr[codes[state]].tolist()
    kept_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[state], minlength=n), out=kept_offsets[1:])
    keys = np.empty(n, dtype=object)
    keys[:] = ["[" + ",".join(kept[kept_offsets[i] : kept_offsets[i + 1]]) + "]" for i in range(n)]
    all_pieces = None
    if want_pieces:
        flat = piece_arr[codes].tolist()
        all_pieces = [flat[offsets[i] : offsets[i + 1]] for i in range(n)]
    return keys, all_pieces


def reference_actions(
    reference: Any, is_read_only: Callable[[str], bool]
) -> tuple[str, list[str]] | None:
    """(action key, expected pieces for checks) of a reference that is a list of actions."""
    actions = parse_actions(reference)
    if actions is None:
        return None
    state = [(n, a) for n, a in actions if not is_read_only(n)]
    key = "[" + ",".join(action_piece(n, a) for n, a in state) + "]"
    expected = state if state else actions  # all read-only: check them all
    return key, [action_piece(n, a) for n, a in expected]


def task_references(
    task_codes: np.ndarray, references: np.ndarray, n_tasks: int
) -> tuple[list[Any], int]:
    """The most common non-None reference of each task (ties: smallest text); conflicts count."""
    counters: dict[int, Counter] = {}
    for t, ref in zip(task_codes.tolist(), references, strict=True):
        if ref is None or (isinstance(ref, float) and ref != ref):
            continue
        counters.setdefault(t, Counter())[ref if isinstance(ref, str) else json.dumps(ref)] += 1
    out: list[Any] = [None] * n_tasks
    conflicts = 0
    for t, counter in counters.items():
        best = max(counter.items(), key=lambda kv: (kv[1], _neg(kv[0])))
        out[t] = best[0]
        conflicts += len(counter) > 1
    return out, conflicts


def _neg(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)
