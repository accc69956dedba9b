"""Turn arbitrary Python values into bounded JSON text for span attributes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

TRUNCATION_MARK = "…[truncated {n} chars]"


def _fallback(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    for method in ("model_dump", "dict", "to_dict", "tolist"):  # pydantic, numpy, pandas
        fn = getattr(value, method, None)
        if callable(fn):
            try:
                return fn()
            except Exception:  # noqa: BLE001 - a broken to_dict must not break the agent
                break
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    return _safe_repr(value)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break the agent
        return f"<{type(value).__qualname__} object; repr() failed>"


def to_json(value: Any) -> str:
    """JSON text for any value; what JSON cannot hold becomes its closest form or its repr()."""
    try:
        return json.dumps(value, default=_fallback, ensure_ascii=False)
    except Exception:  # noqa: BLE001 - circular references, odd keys, a raising __repr__ or to_dict
        return json.dumps(_safe_repr(value), ensure_ascii=False)


def truncate(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut ``text`` to ``max_chars`` plus a visible mark saying how much went."""
    if max_chars <= 0 or len(text) <= max_chars:
        return text, False
    return text[:max_chars] + TRUNCATION_MARK.format(n=len(text) - max_chars), True


def bounded_json(value: Any, max_chars: int) -> tuple[str, bool]:
    """``truncate(to_json(value))``, with a fast path for plain strings."""
    if isinstance(value, str) and len(value) < 256 and value.isprintable() and '"' not in value and "\\" not in value:
        return '"' + value + '"', False
    return truncate(to_json(value), max_chars)
