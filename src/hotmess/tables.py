"""Columnar tables: what the store readers return and the analyzers take.

A :class:`Table` is a mapping of column name to a 1-D numpy array, all of one length.
Text columns are object arrays (``None`` for missing), numbers are int64 or float64
(``nan`` for a missing float). It is deliberately small: enough to select, group and
iterate without pulling pandas into the base install.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

#: Columns of the runs table, in order, with their numpy dtype.
RUN_COLUMNS: dict[str, str] = {
    "run_id": "O",  # the run's trace id (hex) or a content hash for imported runs
    "task_id": "O",
    "agent": "O",
    "instance": "O",  # trial / repetition label within the task, may be None
    "source": "O",  # "trace", "tau-bench", "otlp"
    "status": "O",  # "ok", "error", "incomplete"
    "start_ns": "int64",
    "end_ns": "int64",  # 0 while the run is incomplete
    "outcome": "O",  # JSON text of the run's final result
    "success": "float64",  # 1.0, 0.0, or nan when unknown
    "reference": "O",  # JSON text of what the run should have produced, or None
    "score": "float64",  # nan when not recorded
    "error": "O",  # exception type and message when the run raised
    "n_steps": "int64",
    "n_tool_calls": "int64",
    "n_llm_calls": "int64",
    "n_errors": "int64",
    "input_tokens": "int64",
    "output_tokens": "int64",
    "attributes": "O",  # JSON text of the run span's other attributes (model, version, flags)
}

#: Columns of the steps table, in order, with their numpy dtype.
STEP_COLUMNS: dict[str, str] = {
    "run_id": "O",
    "span_id": "O",
    "parent_span_id": "O",
    "step_index": "int64",  # order of the step's start within its run, from 0
    "depth": "int64",  # 1 for a direct child of the run, 2 for its children, ...
    "kind": "O",  # "llm", "tool", "agent", "goal", "step", "retriever", "chain"
    "name": "O",
    "tool": "O",  # tool name for kind == "tool"
    "input": "O",  # JSON text: tool arguments, LLM messages, function arguments
    "output": "O",  # JSON text: tool result, LLM reply, return value
    "goal": "O",  # the intermediate goal in force for this step, if recorded
    "error": "O",
    "start_ns": "int64",
    "end_ns": "int64",
    "input_tokens": "int64",
    "output_tokens": "int64",
    "model": "O",
}

#: The step columns the analyzers read (tool calls for the ``actions`` mapper and checks).
ANALYSIS_STEP_COLUMNS = ("run_id", "step_index", "kind", "name", "tool", "input")


def _column(values: Any, dtype: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype == np.dtype(dtype):
        return values
    if dtype == "O":
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        return out
    if dtype == "float64":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array([0 if v is None else v for v in values], dtype=dtype)


class Table:
    """A set of equal-length named 1-D numpy arrays.

    >>> t = Table({"task_id": ["a", "a", "b"], "success": [1.0, 0.0, 1.0]})
    >>> len(t), t["success"].mean()
    (3, 0.6666666666666666)
    """

    __slots__ = ("_columns",)

    def __init__(self, columns: Mapping[str, Any], dtypes: Mapping[str, str] | None = None):
        cols: dict[str, np.ndarray] = {}
        length: int | None = None
        for name, values in columns.items():
            dtype = (dtypes or {}).get(name)
            if dtype is not None:
                array = _column(values, dtype)
            elif isinstance(values, np.ndarray):
                array = values
            else:
                array = _column(values, "O")
            if array.ndim != 1:
                raise ValueError(f"column {name!r} must be 1-D, got shape {array.shape}")
            if length is None:
                length = len(array)
            elif len(array) != length:
                raise ValueError(
                    f"column {name!r} has {len(array)} values, the table has {length}"
                )
            cols[name] = array
        self._columns = cols

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], dtypes: Mapping[str, str]
    ) -> Table:
        """Build a table with exactly the columns of ``dtypes`` from row dicts (missing keys are None)."""
        rows = list(records)
        return cls({name: [r.get(name) for r in rows] for name in dtypes}, dtypes)

    @classmethod
    def empty(cls, dtypes: Mapping[str, str]) -> Table:
        return cls.from_records([], dtypes)

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(f"no column {name!r}; columns are {', '.join(self._columns)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def take(self, index: Sequence[int] | np.ndarray) -> Table:
        """Rows selected by an integer index array or a boolean mask."""
        index = np.asarray(index)
        return Table({name: col[index] for name, col in self._columns.items()})

    def with_column(self, name: str, values: Any) -> Table:
        cols = dict(self._columns)
        cols[name] = values if isinstance(values, np.ndarray) else _column(values, "O")
        return Table(cols)

    def rows(self) -> Iterator[dict[str, Any]]:
        names = list(self._columns)
        for values in zip(*(self._columns[n] for n in names), strict=True):
            yield {n: _plain(v) for n, v in zip(names, values, strict=True)}

    def to_records(self) -> list[dict[str, Any]]:
        return list(self.rows())

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self._columns)})"


def _plain(value: Any) -> Any:
    """numpy scalars to Python scalars, so rows serialise to JSON as they are."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def step_forest(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Step rows nested under their parents: each a copy of its row with ``children`` (a list of
    the same), the roots in the order given (``show --json``, the report's step trees).
    A step whose parent is not among the rows before it is a root."""
    by_id: dict[Any, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for s in steps:
        node = {**s, "children": []}
        by_id[s["span_id"]] = node
        parent = by_id.get(s["parent_span_id"])
        (parent["children"] if parent is not None else roots).append(node)
    return roots
