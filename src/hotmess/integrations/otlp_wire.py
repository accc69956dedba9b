"""OTLP/JSON on disk → :class:`~hotmess.vocab.records.SpanRecord` (the reading half of ``import otlp``).

What a collector's ``file`` exporter (or protobuf's ``MessageToJson``) writes, read record by
record: JSON lines or one whole value, gzip or not; ids in hex or base64, times as strings or
integers, enums as numbers or names, attributes as OTLP ``AnyValue``. A malformed record raises
:class:`BadRecord` saying where in it; :mod:`hotmess.integrations.otlp_json` turns that into an
``InputError`` naming the file and line, and maps the spans to runs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hotmess.errors import InputError
from hotmess.integrations.sources import LongLine, capped_lines, read_capped, regular_file
from hotmess.progress import Progress, reading
from hotmess.vocab.records import SpanRecord

__all__ = ["BadRecord", "EmptyFile", "file_spans", "read_records", "request_spans"]

_SPAN_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}


class BadRecord(ValueError):
    """A malformed piece of one record; becomes an InputError naming the line."""


class EmptyFile(InputError):
    """A file with nothing in it: an error alone, passed over among other files."""


# ---------------------------------------------------------------------------------------------
# reading


def _open(path: Path):
    regular_file(path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def file_spans(path: Path, where: str, progress: Progress | None = None) -> Iterator[list[SpanRecord] | InputError]:
    """For each record of the file, its spans, or the InputError naming the file and record and
    why it is skipped. A file that cannot be read raises InputError naming it (EmptyFile when it
    holds no record); what the caller does between records is not caught here."""
    try:
        for label, record in read_records(path, where, progress):
            try:
                if isinstance(record, BadRecord):
                    raise record
                spans = request_spans(record)
            except BadRecord as exc:
                yield InputError(where, label, str(exc))
                continue
            yield spans
    except EmptyFile:
        raise
    except OSError as exc:  # unreadable, or a gzip stream cut short
        raise InputError(where, None, f"cannot read the file: {exc.strerror or exc}") from None
    except EOFError as exc:
        raise InputError(where, None, f"cannot read the file: {exc}") from None


def read_records(path: Path, where: str, progress: Progress | None = None) -> Iterator[tuple[str | None, Any]]:
    """(label, parsed JSON or a BadRecord) for each record of the file, streamed line by line.

    A line holding a JSON list gives one record per item (``line 3 item 0``)."""
    with _open(path) as f:
        first = True
        size = None if progress is None else os.path.getsize(path)
        for number, line in enumerate(reading(capped_lines(f), progress, size), 1):
            label = f"line {number}"
            if isinstance(line, LongLine):
                first = False
                yield label, BadRecord(f"a line of {line.size:,} bytes, over the record cap of "
                                       f"{len(line):,} (HOTMESS_MAX_RECORD_BYTES)")
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if _SURROGATE(line):
                    record = _utf8_safe(record)
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                if first:  # perhaps the whole-file form, pretty-printed
                    whole = _whole_file(path, where, line.strip() in (b"{", b"["))
                    if whole is not None:
                        yield from _items(None, whole)
                        return
                first = False
                yield label, BadRecord(f"not valid JSON: {exc}")
                continue
            first = False
            yield from _items(label, record)
        if first:
            raise EmptyFile(where, None, "the file is empty (no OTLP JSON in it)")


# A \uD800-\uDFFF escape: JSON may spell a lone surrogate, which SQLite cannot store as UTF-8.
_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]").search


def _utf8_safe(value: Any) -> Any:
    """Lone surrogates in every string escaped as ``\\udXXX`` text, as the live exporter
    escapes them, rather than losing the line (or the whole file: SQLite refuses them)."""
    if type(value) is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if type(value) is list:
        return [_utf8_safe(v) for v in value]
    if type(value) is dict:
        return {_utf8_safe(k): _utf8_safe(v) for k, v in value.items()}
    return value


def _items(label: str | None, record: Any) -> Iterator[tuple[str | None, Any]]:
    if type(record) is list:
        for i, item in enumerate(record):
            yield f"item {i}" if label is None else f"{label} item {i}", item
    else:
        yield label, record


def _whole_file(path: Path, where: str, surely: bool) -> Any:
    """The file as one JSON value, or None if it is not one (then it is JSON lines, the first
    broken); ``surely`` (it opens with a lone ``{`` or ``[`` line) makes that an error instead."""
    try:
        with _open(path) as f:
            data = read_capped(f, where)
        return _utf8_safe(json.loads(data)) if _SURROGATE(data) else json.loads(data)
    except (ValueError, RecursionError) as exc:
        if surely:
            raise InputError(where, None, f"not valid JSON: {exc}") from None
        return None


# ---------------------------------------------------------------------------------------------
# OTLP/JSON values


def _hex_id(value: Any, size: int, name: str) -> str:
    """A trace (16 bytes) or span (8 bytes) id as lowercase hex."""
    if not isinstance(value, str) or not value:
        raise BadRecord(f"missing {name}" if value in (None, "") else f"{name} must be a string")
    if len(value) == 2 * size:
        try:
            int(value, 16)
        except ValueError:
            raise BadRecord(f"{name} {value!r} is not hex") from None
        return value.lower()
    try:  # protobuf's own JSON mapping writes bytes as base64
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise BadRecord(f"{name} {value!r} is not {size} bytes in hex (or base64)")
    return raw.hex()


_INT64 = range(-(2**63), 2**63)


def _nanos(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # then rejected below
            value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in _INT64:
        return value
    raise BadRecord(f"{name} must be nanoseconds (a 64-bit integer, or a string of its digits), got {value!r}")


def _enum(value: Any, names: dict[int, str], prefix: str, name: str) -> str:
    if value is None:
        return names[0]
    if isinstance(value, int) and not isinstance(value, bool) and value in names:
        return names[value]
    if isinstance(value, str):
        bare = value.removeprefix(prefix)
        if bare in names.values() or bare == "UNSPECIFIED":
            return names[0] if bare == "UNSPECIFIED" else bare
    raise BadRecord(f"{name} {value!r} is not a known value")


def _any_value(v: Any) -> Any:
    """An OTLP AnyValue as a Python value (arrays as lists, kvlists as dicts, bytes as base64)."""
    if type(v) is not dict:
        raise BadRecord(f"an attribute value must be an object, got {v!r}")
    for kind, x in v.items():
        if kind == "stringValue":
            if type(x) is not str:
                raise BadRecord(f"stringValue must be a string, got {x!r}")
            return x
        if kind == "intValue":
            if isinstance(x, bool) or not isinstance(x, int | str):
                raise BadRecord(f"intValue must be an integer or a string of digits, got {x!r}")
            try:
                x = int(x)
            except ValueError:
                raise BadRecord(f"intValue {x!r} is not an integer") from None
            if x not in _INT64:
                raise BadRecord(f"intValue {x} is out of the 64-bit range")
            return x
        if kind == "doubleValue":
            if isinstance(x, bool) or not isinstance(x, int | float | str):
                raise BadRecord(f"doubleValue must be a number, got {x!r}")
            try:
                return float(x)  # "NaN" / "Infinity" are proto3 JSON spellings
            except ValueError:
                raise BadRecord(f"doubleValue {x!r} is not a number") from None
        if kind == "boolValue":
            if type(x) is not bool:
                raise BadRecord(f"boolValue must be true or false, got {x!r}")
            return x
        if kind == "arrayValue":
            return [_any_value(e) for e in _list(_obj(x, kind).get("values"), "arrayValue.values")]
        if kind == "kvlistValue":
            return _attributes(_obj(x, kind).get("values"))
        if kind == "bytesValue":
            if type(x) is not str:
                raise BadRecord(f"bytesValue must be a base64 string, got {x!r}")
            return x
    return None  # an empty AnyValue


def _obj(x: Any, name: str) -> dict[str, Any]:
    if type(x) is not dict:
        raise BadRecord(f"{name} must be an object, got {_kind(x)}")
    return x


def _list(x: Any, name: str) -> list[Any]:
    if x is None:
        return []
    if type(x) is not list:
        raise BadRecord(f"{name} must be a list, got {_kind(x)}")
    return x


def _kind(x: Any) -> str:
    return "null" if x is None else type(x).__name__


def _attributes(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not items:
        return out
    if type(items) is not list:
        raise BadRecord(f"attributes must be a list of {{key, value}}, got {_kind(items)}")
    for kv in items:
        if type(kv) is not dict:
            raise BadRecord(f"an attribute must be a {{key, value}} object, got {kv!r}")
        key = kv.get("key")
        if type(key) is not str:
            raise BadRecord(f"an attribute key must be a string, got {key!r}")
        v = kv.get("value")
        if v is None:
            continue
        # the common case first: a plain string
        s = v.get("stringValue") if type(v) is dict and len(v) == 1 else None
        value = s if type(s) is str else _any_value(v)
        if value is not None:
            out[key] = value
    return out


def _span(s: Any, resource: dict[str, Any], scope: str | None) -> SpanRecord:
    if type(s) is not dict:
        raise BadRecord(f"a span must be an object, got {_kind(s)}")
    trace_id = _hex_id(s.get("traceId"), 16, "traceId")
    span_id = _hex_id(s.get("spanId"), 8, "spanId")
    parent = s.get("parentSpanId")
    parent_id = _hex_id(parent, 8, "parentSpanId") if parent else None
    name = s.get("name", "")
    if type(name) is not str:
        raise BadRecord(f"name must be a string, got {_kind(name)}")
    status = s.get("status")
    code, message = "UNSET", None
    if status:
        status = _obj(status, "status")
        code = _enum(status.get("code"), _STATUS_CODES, "STATUS_CODE_", "status.code")
        message = status.get("message") or None
        if message is not None and type(message) is not str:
            raise BadRecord(f"status.message must be a string, got {_kind(message)}")
    end = _nanos(s.get("endTimeUnixNano"), "endTimeUnixNano")
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_id,
        name=name,
        kind=_enum(s.get("kind"), _SPAN_KINDS, "SPAN_KIND_", "kind"),
        start_ns=_nanos(s.get("startTimeUnixNano"), "startTimeUnixNano"),
        end_ns=end or None,  # never ended (or not said): the run shows as incomplete
        status_code=code,
        status_message=message,
        attributes=_attributes(s.get("attributes")),
        events=[
            {
                "name": _obj(e, "an event").get("name", ""),
                "timestamp": _nanos(e.get("timeUnixNano"), "event timeUnixNano"),
                "attributes": _attributes(e.get("attributes")),
            }
            for e in _list(s.get("events"), "events")
        ],
        links=[
            {
                "trace_id": _hex_id(_obj(link, "a link").get("traceId"), 16, "link traceId"),
                "span_id": _hex_id(link.get("spanId"), 8, "link spanId"),
                "attributes": _attributes(link.get("attributes")),
            }
            for link in _list(s.get("links"), "links")
        ],
        resource=resource,
        scope=scope,
    )


_HEX32 = re.compile(r"[0-9a-f]{32}").fullmatch
_HEX16 = re.compile(r"[0-9a-f]{16}").fullmatch
_ANY = (KeyError, TypeError, ValueError, AttributeError)


def _span_fast(s: dict[str, Any], resource: dict[str, Any], scope: str | None) -> SpanRecord | None:
    """:func:`_span` for the collector's usual spelling (lowercase hex ids, integer enums,
    no events or links), without its checks' overhead; None (or an exception) for anything
    else, which :func:`_span` then reads or rejects. It accepts nothing that _span rejects."""
    trace_id, span_id = s["traceId"], s["spanId"]
    parent = s.get("parentSpanId") or None
    if (
        type(trace_id) is not str or not _HEX32(trace_id) or type(span_id) is not str
        or not _HEX16(span_id) or (parent is not None and (type(parent) is not str or not _HEX16(parent)))
        or "events" in s or "links" in s
    ):
        return None
    name = s.get("name", "")
    kind = _SPAN_KINDS.get(s.get("kind", 0)) if type(s.get("kind", 0)) is int else None
    start, end = s.get("startTimeUnixNano", 0), s.get("endTimeUnixNano", 0)
    start = int(start) if type(start) is str else start
    end = int(end) if type(end) is str else end
    if (
        type(name) is not str or kind is None or type(start) is not int or type(end) is not int
        or start not in _INT64 or end not in _INT64
    ):
        return None
    code, message = "UNSET", None
    status = s.get("status")
    if status:
        code = status.get("code", 0)
        code = _STATUS_CODES.get(code) if type(code) is int else None
        message = status.get("message") or None
        if code is None or (message is not None and type(message) is not str):
            return None
    attrs: dict[str, Any] = {}
    for kv in s.get("attributes") or ():
        key, v = kv["key"], kv["value"]
        if type(key) is not str:
            return None
        x = v.get("stringValue")
        if type(x) is str and len(v) == 1:
            attrs[key] = x
        else:
            x = _any_value(v)
            if x is not None:
                attrs[key] = x
    return SpanRecord(
        trace_id, span_id, parent, name, kind, start, end or None, code, message, attrs, [], [],
        resource, scope,
    )


def request_spans(request: Any, rejected: list[str] | None = None) -> list[SpanRecord]:
    """Every span of one ExportTraceServiceRequest; BadRecord (with where it is) if any is malformed.

    With ``rejected`` (a list), a malformed span is left out and what is wrong with it appended
    there instead (OTLP/HTTP's partial success); a malformed request around the spans still raises."""
    if type(request) is not dict:
        raise BadRecord(f"expected an OTLP ExportTraceServiceRequest object, got {_kind(request)}")
    if "resourceSpans" not in request:
        if "resourceLogs" in request or "resourceMetrics" in request or "resourceProfiles" in request:
            return []  # another signal in the same collector file
        raise BadRecord("not an OTLP trace request: no resourceSpans")
    out: list[SpanRecord] = []
    for ri, rs in enumerate(_list(request["resourceSpans"], "resourceSpans")):
        where = f"resourceSpans[{ri}]"
        try:
            rs = _obj(rs, where)
            resource = _attributes(_obj(rs.get("resource") or {}, "resource").get("attributes"))
            scope_spans = _list(rs.get("scopeSpans", rs.get("instrumentationLibrarySpans")), "scopeSpans")
        except BadRecord as exc:
            raise BadRecord(f"{where}: {exc}") from None
        for si, ss in enumerate(scope_spans):
            where = f"resourceSpans[{ri}].scopeSpans[{si}]"
            try:
                ss = _obj(ss, where)
                scope = _obj(ss.get("scope") or ss.get("instrumentationLibrary") or {}, "scope").get("name") or None
                spans = _list(ss.get("spans"), "spans")
            except BadRecord as exc:
                raise BadRecord(f"{where}: {exc}") from None
            for pi, s in enumerate(spans):
                try:
                    rec = _span_fast(s, resource, scope)
                except _ANY:
                    rec = None
                if rec is None:
                    try:
                        rec = _span(s, resource, scope)
                    except BadRecord as exc:
                        if rejected is None:
                            raise BadRecord(f"{where}.spans[{pi}]: {exc}") from None
                        rejected.append(f"{where}.spans[{pi}]: {exc}")
                        continue
                out.append(rec)
    return out


