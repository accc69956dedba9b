"""Canonical JSON text: one spelling per value, so equal data gives equal text and equal hashes.

Used for content-hash run ids, tool arguments compared across runs (the "actions" outcome
mapper, intermediate goals) and the JSON columns of imported runs.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Floats with an integral value up to this magnitude are written as ints (2**53: exact in a double).
_MAX_EXACT_INT = 2**53


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        # the spelling json.dumps itself uses for non-string keys
        return json.dumps(normalize(key), allow_nan=False)
    raise TypeError(f"object keys must be strings or numbers, got {type(key).__name__}")


def normalize(value: Any) -> Any:
    """The value with integral floats turned into ints (``1.0 -> 1``), tuples into lists and
    object keys into strings. Non-finite floats are kept (``canonical_json`` rejects them)."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) <= _MAX_EXACT_INT:
            return int(value)
        return value
    if isinstance(value, dict):
        return {_key(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    raise TypeError(f"not JSON data: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys, ``ensure_ascii=False`` and integral floats as ints.

    >>> canonical_json({"b": 1.0, "a": [2.5, "é"]})
    '{"a":[2.5,"é"],"b":1}'
    >>> canonical_json(1.0) == canonical_json(1)
    True

    Raises ``ValueError`` for NaN or infinity (not JSON) and ``TypeError`` for values that are
    not JSON data (sets, objects, bytes).
    """
    return json.dumps(
        normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
