"""Reading run and step tables: optional columns, run attributes, and runs grouped by ``by=``.

A column a table lacks reads as all ``None`` (:func:`column`) or all nan (:func:`float_column`).
``by=`` names a runs column (``"task"`` and ``"agent"`` stand for ``task_id`` and ``agent``) or a
key of the runs' ``attributes`` JSON, dotted keys reaching into nested objects
(``"gen_ai.request.model"``); a run without a value is in the group ``"<none>"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.tables import Table

from .common import factorize, natural_key

__all__ = [
    "BY_COLUMNS",
    "NO_GROUP",
    "check_by",
    "column",
    "float_column",
    "group_values",
    "lookup",
    "parse_attributes",
    "split_runs",
]

#: ``by`` names that stand for a runs column.
BY_COLUMNS = {"task": "task_id", "agent": "agent"}
#: The group of runs without a value for ``by``.
NO_GROUP = "<none>"


def column(table: Table, name: str) -> np.ndarray:
    """The column ``name``, or an object array of ``None`` when the table has no such column."""
    if name in table:
        return table[name]
    out = np.empty(len(table), dtype=object)
    out[:] = None
    return out


def float_column(table: Table, name: str) -> np.ndarray:
    """The column ``name`` as float64 (``None`` → nan); all nan when the table has no such column."""
    if name not in table:
        return np.full(len(table), np.nan)
    values = table[name]
    if values.dtype == object:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return values.astype(np.float64, copy=False)


def parse_attributes(texts: np.ndarray) -> list[dict[str, Any]]:
    """Each run's attributes as a dict: JSON object text parsed (each distinct text once), a
    mapping copied, anything else ``{}``."""
    cache: dict[Any, dict[str, Any]] = {}
    out = []
    for text in texts:
        if isinstance(text, Mapping):
            out.append(dict(text))
            continue
        parsed = cache.get(text)
        if parsed is None:
            parsed = {}
            if isinstance(text, str) and text:
                try:
                    value = json.loads(text)
                except ValueError:
                    value = None
                if isinstance(value, dict):
                    parsed = value
            cache[text] = parsed
        out.append(parsed)
    return out


def lookup(attrs: Mapping[str, Any], key: str) -> Any:
    """``attrs[key]``, else the value at the dotted path ``key`` in nested objects, else None."""
    if key in attrs:
        return attrs[key]
    node: Any = attrs
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def group_values(runs: Table, by: str, attributes: np.ndarray, *, check: bool = True) -> np.ndarray:
    """Each run's group under ``by`` (a runs column, else an attribute key) as text; ``"<none>"``
    for a run without a value. Raises ValueError when ``by`` is neither a column nor any run's
    attribute (``check=False``: leaves that to the caller, who sees more runs than these, as an
    engine's driver sees every task's; :func:`check_by`). ``"task"`` and ``"agent"`` name the
    ``task_id`` and ``agent`` columns, as everywhere."""
    by = BY_COLUMNS.get(by, by)
    if by in runs:
        values = runs[by]
    else:
        parsed = parse_attributes(attributes)
        values = [lookup(a, by) for a in parsed]
        if check:
            check_by(by, runs.columns, len(values) > 0 and all(v is None for v in values))
    out = np.empty(len(values), dtype=object)
    out[:] = [
        NO_GROUP
        if v is None or (isinstance(v, float) and v != v)
        else (v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v))
        for v in values
    ]
    return out


def check_by(by: str, columns: Any, no_value: bool) -> None:
    """ValueError when ``by`` is not one of the runs' ``columns`` and ``no_value``: no run
    (of all the runs, wherever they were grouped) has it among its attributes."""
    by = BY_COLUMNS.get(by, by)
    if no_value and by not in columns:
        raise AnalysisError(
            f"by={by!r} is neither a runs column ({', '.join(columns)}) "
            "nor a key of any run's attributes"
        )


def split_runs(runs: Table, steps: Table | None, by: str, *,
               check: bool = True) -> dict[str, tuple[Table, Table | None]]:
    """The runs, and the steps of each run, per group, for an analysis per group.

    ``by`` is a runs column (``"task"`` and ``"agent"`` name ``task_id`` and ``agent``) or a key
    of the runs' attributes; a run without a value is in the group ``"<none>"``. Groups come in
    natural order of their names ("2" before "10"), rows in their original order.
    ``check``: as in :func:`group_values`.
    """
    by_column = BY_COLUMNS.get(by, by)
    attributes = column(runs, "attributes")
    codes, names = factorize(group_values(runs, by_column, attributes, check=check).tolist())
    step_rows: list[np.ndarray] | None = None
    if steps is not None:
        code_of_run = dict(zip(runs["run_id"].tolist(), codes.tolist(), strict=True))
        step_codes = np.fromiter((code_of_run.get(r, -1) for r in steps["run_id"].tolist()), dtype=np.int64)
        order = np.argsort(step_codes, kind="stable")
        bounds = np.searchsorted(step_codes[order], np.arange(len(names) + 1))
        step_rows = [order[bounds[i]:bounds[i + 1]] for i in range(len(names))]
    out: dict[str, tuple[Table, Table | None]] = {}
    for i in sorted(range(len(names)), key=lambda i: natural_key(str(names[i]))):
        out[str(names[i])] = (
            runs.take(np.flatnonzero(codes == i)),
            None if step_rows is None else steps.take(step_rows[i]),
        )
    return out
