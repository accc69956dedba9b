"""Reading a tau-bench results file and checking its records (the validation half of the importer).

:func:`read_records` reads the file as strict JSON (UTF-8, no NaN or Infinity) and checks it
is a list; :class:`Record` checks one record's fields, and every error it raises is an
:class:`~hotmess.errors.InputError` naming the file and the record (its index, and its task
and trial when known) and the field (``'traj[3].tool_calls[0].function.name' must be a
non-empty string, got null``). :mod:`hotmess.integrations.taubench` maps checked records to rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hotmess.errors import InputError
from hotmess.integrations.sources import read_capped, regular_file

__all__ = [
    "INT_OR_STR", "ROLES", "Record", "checked_actions", "is_dict", "is_id", "is_list", "is_nonempty_str",
    "is_number", "is_str", "message_text", "parse_arguments", "read_records", "strict_loads", "type_name",
]

#: The roles of a trajectory's messages.
ROLES = ("system", "user", "assistant", "tool")


def type_name(value: Any) -> str:
    """What an error message calls a JSON value: ``null``, ``a list``, ``the string 'abc'``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (only finite numbers are)")


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN / Infinity, which Python's json accepts by default."""
    return json.loads(text, parse_constant=_reject_constant)


def read_records(path: Path) -> list[Any]:
    """The file's records: its JSON list, read as UTF-8 (a BOM allowed) and strict JSON."""
    where = str(path)
    regular_file(path)
    try:
        with open(path, "rb") as f:
            data = read_capped(f, where)
    except OSError as exc:
        raise InputError(where, None, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            where,
            None,
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}) "
            "cannot be decoded; tau-bench files are UTF-8 JSON",
        ) from None
    try:
        records = strict_loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(where, None, f"not valid JSON: {exc}") from None
    except ValueError as exc:
        raise InputError(where, None, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InputError(where, None, "not valid JSON: nested too deeply") from None
    if not isinstance(records, list):
        raise InputError(
            where, None, f"expected a JSON list of tau-bench records, got {type_name(records)}"
        )
    return records


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def is_list(value: Any) -> bool:
    return isinstance(value, list)


def is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value != ""
    )


class Record:
    """Validation context for one record: raises InputError naming the file and the record."""

    def __init__(self, path: str, index: int, record: Any):
        self.path = path
        self.index = index
        self.label: str | int = index
        if not isinstance(record, dict):
            self.fail(f"expected a record object, got {type_name(record)}")
        self.record: dict[str, Any] = record
        task_id, trial = record.get("task_id"), record.get("trial")
        if is_id(task_id) and is_id(trial):
            self.label = f"{index} (task {task_id} trial {trial})"

    def fail(self, message: str) -> NoReturn:
        raise InputError(self.path, self.label, message)

    def require(
        self, obj: dict[str, Any], key: str, dotted: str, expected: str, ok: Callable[[Any], bool]
    ) -> Any:
        if key not in obj:
            self.fail(f"missing key {dotted!r} (expected {expected})")
        value = obj[key]
        if not ok(value):
            self.fail(f"{dotted!r} must be {expected}, got {type_name(value)}")
        return value

    def optional(
        self, obj: dict[str, Any], key: str, dotted: str, expected: str, ok: Callable[[Any], bool]
    ) -> Any:
        value = obj.get(key)
        if value is not None and not ok(value):
            self.fail(f"{dotted!r} must be {expected} or null, got {type_name(value)}")
        return value


INT_OR_STR = "an integer or a non-empty string"


def message_text(rec: Record, content: Any, where: str) -> str | None:
    """Message content as text: a string, null, or a list of ``{"type": "text", "text": ...}``."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                rec.fail(f"'{where}[{i}]' must be a text part, got {type_name(part)}")
        return "".join(parts)
    rec.fail(f"'{where}' must be a string, a list of text parts or null, got {type_name(content)}")


def parse_arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """Tool-call arguments as a dict, and an error message when they did not parse."""
    if isinstance(raw, dict):
        return raw, None
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return {}, None
    if not isinstance(raw, str):
        return {"_raw": raw}, f"tool-call arguments are {type_name(raw)}, not a JSON object"
    try:
        parsed = strict_loads(raw)
    except (ValueError, RecursionError) as exc:
        return {"_raw": raw}, f"tool-call arguments did not parse as JSON: {exc}"
    if not isinstance(parsed, dict):
        return {"_raw": raw}, f"tool-call arguments are {type_name(parsed)}, not a JSON object"
    return parsed, None


def checked_actions(rec: Record, actions: list[Any], dotted: str) -> list[dict[str, Any]]:
    out = []
    for i, action in enumerate(actions):
        if not isinstance(action, dict):
            rec.fail(f"'{dotted}[{i}]' must be an object, got {type_name(action)}")
        name = rec.require(action, "name", f"{dotted}[{i}].name", "a string", is_str)
        kwargs = action.get("kwargs", action.get("arguments", {}))
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            rec.fail(f"'{dotted}[{i}].kwargs' must be an object, got {type_name(kwargs)}")
        out.append({"name": name, "kwargs": kwargs})
    return out
