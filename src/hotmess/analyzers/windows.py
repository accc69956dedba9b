"""The series :func:`~hotmess.analyzers.drift.drift` scans: runs per group cut into windows,
each run's outcome code and verdict.

Windows (``"1d"``, ``"6h"``, ``"500runs"``; :func:`parse_window`):

- **time windows** ``"Nd"``, ``"Nh"``, ``"Nm"`` (also ``"Nw"``): ``[k·width, (k+1)·width)`` in UTC
  nanoseconds since the epoch, so ``1d`` windows are calendar days (UTC) and ``6h`` windows start
  at 00, 06, 12 and 18 UTC. Windows without runs are not listed; a window is compared to the
  previous *listed* one.
- **count windows** ``"Nruns"``: consecutive blocks of N runs in start order (ties by run id);
  the last block may be smaller. ``start``/``end`` are the first and the last run's start time.

Groups (``by=``, :func:`run_groups`) are as in :func:`~hotmess.analyzers.analyze`, in natural
order of their names. Each run's outcome is mapped once, over all runs (:func:`outcome_codes`),
so a cluster means the same in every window; its code numbers its (task, cluster) pair. A
run's verdict (:func:`run_verdicts`) is its ``success``, else, with the exact mapper, whether
its outcome is the reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.progress import Progress
from hotmess.tables import Table

from .actions import collect_actions
from .columns import BY_COLUMNS, column, group_values
from .common import factorize, natural_codes
from .outcome_keys import as_text, crash_key
from .outcomes import (
    ReadOnly,
    exact_key,
    exact_keys,
    map_outcomes,
    read_only_predicate,
    text_clusters,
)

__all__ = [
    "UNIT_NS",
    "Windows",
    "cut_windows",
    "iso_utc",
    "outcome_codes",
    "outcome_keys",
    "parse_window",
    "run_groups",
    "run_verdicts",
    "window_index",
]

#: Widths of time-window units in nanoseconds.
UNIT_NS = {"w": 7 * 86_400 * 10**9, "d": 86_400 * 10**9, "h": 3_600 * 10**9, "m": 60 * 10**9}
#: A series' windows: (start_ns, end_ns, run rows) each, in time order.
Windows = list[tuple[int, int, np.ndarray]]
_WINDOW = re.compile(r"^\s*(\d+)\s*(runs?|[wdhm])\s*$", re.IGNORECASE)


#: The longest window: nanoseconds must fit in int64 (numpy's time arithmetic).
_MAX_WINDOW = 2**62


def parse_window(window: str) -> tuple[str, int]:
    """``("time", width_ns)`` or ``("runs", n)`` from ``"1d"``, ``"6h"``, ``"30m"``, ``"500runs"``."""
    match = _WINDOW.match(str(window))
    if not match or int(match.group(1)) < 1:
        raise AnalysisError(
            f"window must be a positive count and a unit, like 1d, 6h, 30m, 2w or 500runs; "
            f"got {window!r}"
        )
    count, unit = int(match.group(1)), match.group(2).lower()
    size = count if unit.startswith("run") else count * UNIT_NS[unit]
    if size > _MAX_WINDOW:  # beyond int64 nanoseconds (292 years) or any count of runs
        raise AnalysisError(f"window {window!r} is too long: at most {_MAX_WINDOW // UNIT_NS['w']:,}w, or as many runs")
    return ("runs" if unit.startswith("run") else "time"), size


def iso_utc(ns: int) -> str:
    """ISO-8601 UTC text of nanoseconds since the epoch (``Z`` suffix)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(ns) // 1000)
    spec = "seconds" if int(ns) % 10**9 == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def window_index(
    start_ns: np.ndarray, run_ids: np.ndarray, kind: str, size: int
) -> list[tuple[int, int, np.ndarray]]:
    """(start_ns, end_ns, run rows) of each non-empty window, in time order: ``kind="time"``
    cuts ``[k·size, (k+1)·size)`` of ``start_ns``; ``kind="runs"`` takes blocks of ``size``
    runs in start order (ties by run id), a window running from its first run's start to
    its last's."""
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


def run_groups(runs: Table, by: str | None) -> tuple[np.ndarray, list[str]]:
    """Each run's group code and the group names, in natural order (one group "all" without by)."""
    if by is None:
        return np.zeros(len(runs), dtype=np.int64), ["all"]
    attributes = column(runs, "attributes")
    return natural_codes(group_values(runs, BY_COLUMNS.get(by, by), attributes).tolist())


def cut_windows(
    group_of: np.ndarray, n_groups: int, start_ns: np.ndarray, run_ids: np.ndarray, kind: str, size: int
) -> list[Windows]:
    """Each group's windows (run rows of the whole table)."""
    per_group = []
    for g in range(n_groups):
        rows = np.flatnonzero(group_of == g)
        cut = window_index(start_ns[rows], run_ids[rows], kind, size)
        per_group.append([(s, e, rows[r]) for s, e, r in cut])
    return per_group


def outcome_codes(
    runs: Table,
    steps: Table | None,
    task_ids: np.ndarray,
    outcome: str | Callable[[Any], Hashable],
    read_only: ReadOnly,
    distance_threshold: float,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[Hashable]]:
    """A code per run for its (task, outcome cluster) pair, mapped once over all runs."""
    keys = outcome_keys(runs, steps, task_ids, outcome, read_only, distance_threshold, progress)
    return factorize(zip(task_ids.tolist(), keys.tolist(), strict=True))


def outcome_keys(
    runs: Table,
    steps: Table | None,
    task_ids: np.ndarray,
    outcome: str | Callable[[Any], Hashable],
    read_only: ReadOnly,
    distance_threshold: float,
    progress: Progress | None = None,
) -> np.ndarray:
    """Each run's outcome key within its task (an object array): the mapper's key, text
    clustered per task (so the keys of a task's runs depend on that task's runs only), a
    crash's key its exception type."""
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
        raise AnalysisError(
            f"outcome must be exact, actions, text or a callable for drift, got {outcome!r}"
        )
    status = column(runs, "status")
    errors = column(runs, "error")
    crashed = [i for i, (st, o) in enumerate(zip(status, outcomes, strict=True)) if st == "error" and o is None]
    if crashed:  # as analyze keys them: a crash is its exception type
        keys = np.asarray(keys, dtype=object).copy()
        keys[crashed] = [crash_key(errors[i]) for i in crashed]
    return np.asarray(keys, dtype=object)


def run_verdicts(runs: Table, outcome: str | Callable[[Any], Hashable]) -> np.ndarray:
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
