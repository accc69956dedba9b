"""Turn arbitrary Python values into bounded JSON text for span attributes, and bound what is stored.

Every cut is made *after* redaction: a secret cut in half at the boundary would leave a
prefix too short for the redaction patterns to recognise, and that prefix would be stored.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hotmess.redact import REDACTED
from hotmess.vocab import attributes as A

if TYPE_CHECKING:
    from hotmess.redact import Redactor

TRUNCATION_MARK = "…[truncated {n} chars]"
#: The longest secret a cut can straddle and still be redacted whole (a PEM RSA-4096 key is ~3.3k).
_STRADDLE = 4096
DEFAULT_MAX_ATTRIBUTE_CHARS = 8192


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


def as_text(value: Any) -> str:
    """``str(value)`` that never raises: text stays text, bytes are decoded (bad bytes escaped),
    and an object whose ``__str__`` raises becomes a note saying so."""
    if type(value) is str:
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the agent
        return f"<{type(value).__qualname__} object; str() failed>"


#: Nesting beyond this is stored as JSON text (a value nested that deep is data, not structure).
_MAX_DEPTH = 32
_INT64 = (-(2**63), 2**63 - 1)


def storable(value: Any, _depth: int = 0) -> Any:
    """``value`` as what SQLite's JSON columns and the OTLP wire can carry: None, bool, int,
    float, str, and lists and string-keyed dicts of those. Bytes become text, tuples lists, an
    int beyond 64 bits its decimal text, anything else its text (``as_text``)."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is float:
        return value
    if kind is int:
        return value if _INT64[0] <= value <= _INT64[1] else str(value)
    if _depth >= _MAX_DEPTH and isinstance(value, list | tuple | dict):
        return to_json(value)
    if isinstance(value, list | tuple):
        return [storable(v, _depth + 1) for v in value]
    if isinstance(value, Mapping):
        return {as_text(k): storable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, int):  # IntEnum, ... (bool cannot be subclassed: handled above)
        return storable(int(value), _depth)
    if isinstance(value, float):
        return float(value)
    if kind.__module__ == "numpy" and callable(getattr(value, "item", None)):  # numpy scalars
        try:
            return storable(value.item(), _depth + 1)
        except Exception:  # noqa: BLE001
            pass
    return as_text(value)


_PLAIN = frozenset({str, bool, float, type(None)})  # int is not: it may be beyond 64 bits


def storable_attributes(attributes: Mapping[Any, Any] | None) -> dict[str, Any]:
    """Every key as text and every value :func:`storable` (plain values pass at once)."""
    if not attributes:
        return {}
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if type(key) is not str:
            key = as_text(key)
        out[key] = value if type(value) in _PLAIN else storable(value)
    return out


def to_json(value: Any) -> str:
    """JSON text for any value; what JSON cannot hold becomes its closest form or its repr()."""
    try:
        return json.dumps(value, default=_fallback, ensure_ascii=False)
    except Exception:  # noqa: BLE001 - circular references, odd keys, a raising __repr__ or to_dict
        return json.dumps(_safe_repr(value), ensure_ascii=False)


def _redacted_window(text: str, max_chars: int, redactor: Redactor, *, from_end: bool) -> tuple[str, str]:
    """The part of ``text`` a cut to ``max_chars`` keeps (its start, or its end), with room for
    a secret straddling the window's edge, and that part redacted.

    Redaction shrinks text (a key becomes ``[REDACTED]``), which would pull the window's edge,
    where a secret may be cut in two and so not recognised, into what is kept. So the window
    grows until, redacted, it still reaches ``_STRADDLE`` characters past what is kept, or holds
    the whole text. Redaction is linear in what it reads, so this costs at most a few times the
    window, and the whole text only when the text is nearly all secrets."""
    size = max_chars + _STRADDLE
    while True:
        window = text[-size:] if from_end else text[:size]
        redacted = redactor(window)
        if size >= len(text) or len(redacted) >= max_chars + _STRADDLE:
            return window, redacted
        size = min(len(text), 2 * size)


def truncate(text: str, max_chars: int, redactor: Redactor | None = None) -> tuple[str, bool]:
    """Cut ``text`` to ``max_chars`` plus a visible mark saying how much went.

    With a ``redactor``, a text about to be cut is redacted first (whole secrets, not the
    stub the cut would leave); a text that is not cut is left for the exporter to redact,
    off the agent's thread.
    """
    if max_chars <= 0 or len(text) <= max_chars:
        return text, False
    if redactor is not None:
        # Only what may be kept needs redacting, plus room for a secret that straddles the
        # cut: the agent's thread pays for max_chars + _STRADDLE characters, not for all.
        window, head = _redacted_window(text, max_chars, redactor, from_end=False)
        beyond = len(text) - len(window)
        if beyond == 0 and len(head) <= max_chars:
            return head, False
        return head[:max_chars] + TRUNCATION_MARK.format(n=max(len(head) - max_chars, 0) + beyond), True
    return text[:max_chars] + TRUNCATION_MARK.format(n=len(text) - max_chars), True


def bounded_json(value: Any, max_chars: int, redactor: Redactor | None = None) -> tuple[str, bool]:
    """``truncate(to_json(value))``, with a fast path for plain strings."""
    if isinstance(value, str) and len(value) < 256 and value.isprintable() and '"' not in value and "\\" not in value:
        return '"' + value + '"', False
    return truncate(to_json(value), max_chars, redactor)


def scrub_text(
    text: str, max_chars: int, redactor: Redactor | None, keep_end: bool = False
) -> tuple[str, bool]:
    """Redact, then cut: what is stored or sent of one string. ``keep_end`` keeps the last
    ``max_chars`` instead of the first (a traceback's last frames are the ones that matter)."""
    if keep_end and 0 < max_chars < len(text):
        if redactor is None:
            window = tail = text[-(max_chars + _STRADDLE) :]
        else:
            window, tail = _redacted_window(text, max_chars, redactor, from_end=True)
        kept = tail[-max_chars:]
        return TRUNCATION_MARK.format(n=len(text) - len(window) + len(tail) - len(kept)) + kept, True
    if 0 < max_chars < len(text):
        return truncate(text, max_chars, redactor)
    return (redactor(text) if redactor is not None else text), False


#: Attributes cut from the front: what matters is at their end.
KEEP_END = frozenset({"exception.stacktrace"})


def _redacted_whole(value: Any) -> Any:
    """The value of a secret field: every string and number in it is the secret."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return REDACTED
    if isinstance(value, tuple | list):
        return type(value)(_redacted_whole(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _redacted_whole(v) for k, v in value.items()}
    return value


@functools.lru_cache(maxsize=8192)
def _secret_field(key: str, redactor: Redactor) -> bool:
    return redactor.secret_field(key)


@functools.lru_cache(maxsize=8192)
def _scrubbed_key(key: str, max_chars: int, redactor: Redactor | None) -> str:
    """An attribute key redacted and cut like a value. Keys repeat on every span (the same few
    names), so each is scrubbed once."""
    return scrub_text(key, max_chars, redactor)[0]


#: How much longer than the cap a value already cut by the tracer may be: its truncation mark.
_MARK_ROOM = len(TRUNCATION_MARK.format(n=10**15))


def scrub_value(
    value: Any, max_chars: int, redactor: Redactor | None, keep_end: bool = False
) -> tuple[Any, bool]:
    """``scrub_text`` on an attribute value, however nested: a string; each string of a list or
    tuple; each key and value of a mapping (an OTLP ``kvlist``, an array of them, as GenAI
    messages arrive). Other values (numbers, booleans, None) are kept."""
    if isinstance(value, str):
        return scrub_text(value, max_chars, redactor, keep_end)
    if isinstance(value, tuple | list):
        out, cut = [], False
        for item in value:
            item, item_cut = scrub_value(item, max_chars, redactor)
            cut = cut or item_cut
            out.append(item)
        return type(value)(out), cut
    if isinstance(value, Mapping):
        mapped, cut = {}, False
        for key, item in value.items():
            key_text, key_cut = scrub_value(key, max_chars, redactor) if isinstance(key, str) else (key, False)
            if redactor is not None and isinstance(key, str) and _secret_field(key, redactor):
                item = _redacted_whole(item)
            item, item_cut = scrub_value(item, max_chars, redactor)
            mapped[key_text] = item
            cut = cut or key_cut or item_cut
        return mapped, cut
    return value, False


def scrub_attributes(
    attributes: Mapping[str, Any], max_chars: int, redactor: Redactor | None
) -> dict[str, Any]:
    """Every key and value redacted then cut to ``max_chars`` (nested values too); the keys of
    values cut are added to ``hotmess.truncated``.

    A value the tracer already cut (its key named in ``hotmess.truncated``) carries a truncation
    mark, so it may be that much longer than the cap; nothing more. ``hotmess.truncated`` is
    scrubbed like any attribute: one from outside (an imported span) is input, not trusted.
    """
    if redactor is None and max_chars <= 0:
        return dict(attributes)
    listed = attributes.get(A.TRUNCATED, ())
    if isinstance(listed, str):
        already: tuple[str, ...] = (listed,)
    elif isinstance(listed, tuple | list):
        already = tuple(k for k in listed if isinstance(k, str))
    else:
        already = ()
    out: dict[str, Any] = {}
    cut_now: list[str] = []
    for key, value in attributes.items():
        if type(key) is str:
            key = _scrubbed_key(key, max_chars, redactor)
        if redactor is not None and type(key) is str and _secret_field(key, redactor):
            value = _redacted_whole(value)
        if type(value) is str and not 0 < max_chars < len(value):
            # the common case inline: a string that is not cut (scrub_value's answer)
            out[key] = value if redactor is None else redactor(value)
            continue
        cap = max_chars + _MARK_ROOM if key in already and max_chars > 0 else max_chars
        value, cut = scrub_value(value, cap, redactor, key in KEEP_END)
        out[key] = value
        if cut and key != A.TRUNCATED:
            cut_now.append(key)
    if cut_now:
        out[A.TRUNCATED] = (*[k for k in already if k not in cut_now], *cut_now)
    return out
