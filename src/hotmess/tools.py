"""What importers and analyzers must agree on, in one neutral module (no SQLite, no
OpenTelemetry):

- which tool calls change the world: the read-only rule that importers (a run's outcome) and
  analyzers (the ``actions`` outcome mapper) share, so imported outcomes and computed action
  keys always agree;
- canonical JSON text (:func:`canonical_json`): one spelling per value, for content-hash run
  ids, tool arguments compared across runs and the exact-match outcome keys."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

#: First words of tool names that only read state (``get_user_details``, ``searchFlights``...).
READ_ONLY_PREFIXES: frozenset[str] = frozenset(
    {"get", "search", "list", "find", "lookup", "read", "fetch", "query"}
)
#: Whole tool names that only read state or think. ``transfer_to_human_agents`` is NOT here:
#: handing over to a human is an outcome.
READ_ONLY_NAMES: frozenset[str] = frozenset({"think", "calculate"})

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD = re.compile(r"[^0-9a-zA-Z]+")


def is_read_only(name: str) -> bool:
    """True when the tool name's first word (split on ``_``, ``-``, ``.``, spaces and camelCase,
    case-insensitive) is one of :data:`READ_ONLY_PREFIXES` (get, search, list, find, lookup,
    read, fetch, query), or the whole name is ``think`` or ``calculate``. ``getUser`` and
    ``get_user`` are read-only; ``getaway`` and ``transfer_to_human_agents`` are not.
    """
    name = str(name)
    if name.casefold() in READ_ONLY_NAMES:
        return True
    words = [w for w in _WORD.split(_CAMEL.sub(r"\1_\2", name).casefold()) if w]
    return bool(words) and words[0] in READ_ONLY_PREFIXES


# ---------------------------------------------------------------------------------------------
# canonical JSON: one spelling per value, so equal data gives equal text and equal hashes

#: Integral floats up to this magnitude are written as ints (2**53: exact in a double).
_MAX_EXACT_INT = 2**53
_STRICT = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_LENIENT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
#: Deeper data raises RecursionError on the fast path, as the full path (two Python frames per
#: level) does at about the same depth under Python's default recursion limit of 1000.
MAX_DEPTH = 480


class _NotPlain(Exception):
    """A value the fast path leaves to the full normalisation (a non-string key, a subclass,
    a type that is not JSON data)."""


def _plain(value: Any, bound: float, depth: int = 0) -> Any:
    """``value`` itself when it is plain JSON data already canonical (dicts with str keys,
    lists, str, int, bool, None, floats that are not integral), else a copy with integral
    floats (``abs <= bound``) as ints and tuples as lists. Raises :class:`_NotPlain` for
    anything else. Containers without a float to change are not copied."""
    if depth > MAX_DEPTH:
        raise RecursionError(f"nested deeper than {MAX_DEPTH} levels")
    t = type(value)
    if t is dict:
        out = None
        for k, v in value.items():
            if type(k) is not str:
                raise _NotPlain
            tv = type(v)
            if tv is str or tv is int or v is None or tv is bool:
                continue
            if tv is float:
                if not (v.is_integer() and abs(v) <= bound):
                    continue
                new: Any = int(v)
            elif tv is dict or tv is list or tv is tuple:
                new = _plain(v, bound, depth + 1)
                if new is v:
                    continue
            else:
                raise _NotPlain
            if out is None:
                out = dict(value)
            out[k] = new
        return value if out is None else out
    if t is list or t is tuple:
        # the dict branch's per-item body again, not a shared helper: this runs for every value
        # of every imported record, and a call per value is what the fast path is avoiding
        items = None
        for i, v in enumerate(value):
            tv = type(v)
            if tv is str or tv is int or v is None or tv is bool:
                continue
            if tv is float:
                if not (v.is_integer() and abs(v) <= bound):
                    continue
                new = int(v)
            elif tv is dict or tv is list or tv is tuple:
                new = _plain(v, bound, depth + 1)
                if new is v:
                    continue
            else:
                raise _NotPlain
            if items is None:
                items = list(value)
            items[i] = new
        return value if items is None else items
    if t is float and value.is_integer() and abs(value) <= bound:
        return int(value)
    if t is str or t is int or t is float or value is None or t is bool:
        return value
    raise _NotPlain


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        # the spelling json.dumps itself uses for non-string keys
        return json.dumps(canonical_value(key), allow_nan=False)
    raise TypeError(f"object keys must be strings or numbers, got {type(key).__name__}")


def canonical_value(value: Any, *, strict: bool = True) -> Any:
    """The value :func:`canonical_json` writes: integral floats as ints (``1.0 -> 1``), tuples
    as lists, object keys as strings; non-finite floats are kept.

    ``strict=True`` (importers, stored data): only JSON data; a key that is None, a bool or a
    number takes its JSON spelling (``True -> "true"``, ``1.0 -> "1"``); other keys and values
    that are not JSON data (sets, bytes, objects) raise ``TypeError``; integral floats up to
    2**53 inclusive become ints.

    ``strict=False`` (analyzers, values from anywhere): keys become ``str(key)``, any mapping
    is an object, numpy scalars and arrays their Python values, anything else its ``str``;
    integral floats below 2**53 become ints.
    """
    if strict:
        if isinstance(value, bool) or value is None or isinstance(value, str | int):
            return value
        if isinstance(value, float):
            if math.isfinite(value) and value.is_integer() and abs(value) <= _MAX_EXACT_INT:
                return int(value)
            return value
        if isinstance(value, dict):
            return {_json_key(k): canonical_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [canonical_value(v) for v in value]
        raise TypeError(f"not JSON data: {type(value).__name__}")
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _MAX_EXACT_INT:
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): canonical_value(v, strict=False) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_value(v, strict=False) for v in value]
    if type(value).__module__ == "numpy":
        import numpy as np

        if isinstance(value, np.generic):
            return canonical_value(value.item(), strict=False)
        if isinstance(value, np.ndarray):
            return canonical_value(value.tolist(), strict=False)
    return str(value)


def canonical_json(value: Any, *, strict: bool = True) -> str:
    """Compact JSON with sorted keys, ``ensure_ascii=False`` and integral floats as ints, of
    :func:`canonical_value`.

    >>> canonical_json({"b": 1.0, "a": [2.5, "é"]})
    '{"a":[2.5,"é"],"b":1}'
    >>> canonical_json(1.0) == canonical_json(1)
    True

    ``strict=True`` (importers: run ids are hashes of this text) raises ``ValueError`` for NaN
    or infinity (not JSON) and ``TypeError`` for values that are not JSON data (sets, objects,
    bytes). ``strict=False`` (analyzers' keys) writes NaN and Infinity as Python's json does
    and turns anything else into text (see :func:`canonical_value`).

    Plain JSON data (what ``json.loads`` returns: dicts with string keys, lists, strings,
    numbers) takes a fast path: only its integral floats are replaced, containers without one
    are not copied, and ``json`` sorts the keys; the text is the same as the full path's.
    """
    try:
        plain = _plain(value, _MAX_EXACT_INT if strict else _MAX_EXACT_INT - 1)
    except _NotPlain:
        return (_STRICT if strict else _LENIENT).encode(canonical_value(value, strict=strict))
    return (_STRICT if strict else _LENIENT).encode(plain)
