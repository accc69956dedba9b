"""From spans to rows: the ``spans``, ``runs`` and ``steps`` records of one span.

A span arrives here as a plain :class:`SpanRecord` (hex ids, a dict of attributes), so the
exporter (live OpenTelemetry spans) and the OTLP importer (JSON logs) share one mapping.
"""

from __future__ import annotations

import json
from typing import Any

from hotmess.vocab import attributes as A
from hotmess.vocab import conventions
from hotmess.vocab.records import SpanRecord
from hotmess.vocab.serialize import as_text

# OpenInference (Arize Phoenix) span kinds, for spans imported from such agents.
_OPENINFERENCE_KIND = {
    "LLM": "llm",
    "TOOL": "tool",
    "AGENT": "agent",
    "CHAIN": "chain",
    "RETRIEVER": "retriever",
    "EMBEDDING": "retriever",
    "RERANKER": "retriever",
}


# One encoder for every row: json.dumps with options builds a new encoder on each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=repr)


def json_column(value: Any) -> str | None:
    """A JSON column's text (attributes, events, links, resource): None stays NULL."""
    if value is None:
        return None
    if not value and type(value) is list:  # most spans have no events and no links
        return "[]"
    return _ENCODER.encode(value)


def span_row(rec: SpanRecord, *, resource_json: str | None = None) -> tuple:
    """The ``spans`` row; ``resource_json``, when given, is ``rec.resource`` already as JSON
    (spans share their resource, so the exporter encodes it once)."""
    return (
        rec.trace_id,
        rec.span_id,
        rec.parent_span_id,
        rec.name,
        rec.kind,
        rec.start_ns,
        rec.end_ns,
        rec.status_code,
        rec.status_message,
        json_column(rec.attributes),
        json_column(rec.events),
        json_column(rec.links),
        resource_json if resource_json is not None else json_column(rec.resource),
        rec.scope,
    )


def record_from_row(row: tuple | list) -> SpanRecord:
    """The inverse of :func:`span_row`: a ``spans`` row (as stored, JSON columns as text) back
    as a :class:`SpanRecord`, so stored spans can be mapped again (an import merging new spans
    of a trace into the ones stored before)."""
    (trace_id, span_id, parent, name, kind, start, end, code, message, attributes, events, links,
     resource, scope) = row
    return SpanRecord(
        trace_id, span_id, parent, name, kind or "INTERNAL", start or 0, end, code or "UNSET", message,
        json.loads(attributes) if attributes else {}, json.loads(events) if events else [],
        json.loads(links) if links else [], json.loads(resource) if resource else {}, scope,
    )


#: Positions in a ``spans`` row (:func:`span_row`): the span's id, and its end (None: not ended).
SPAN_ID, SPAN_END = 1, 6
SPAN_INSERT = "INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# A run root's start: never over the row of the same span already written at its end.
SPAN_START = "INSERT OR IGNORE INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _error(rec: SpanRecord) -> str | None:
    """The exception recorded on the span, else its error status message."""
    for event in rec.events:
        if event.get("name") == "exception":
            attrs = event.get("attributes", {})
            kind = attrs.get("exception.type", "Exception")
            message = attrs.get("exception.message", "")
            return f"{kind}: {message}" if message else str(kind)
    if rec.status_code == "ERROR":
        return column_text(rec.status_message) or "error"
    return None


def _as_bool(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        return 1 if value.strip().lower() in ("1", "true", "yes", "pass", "passed", "ok") else 0
    return 1 if value else 0


def _as_int(value: Any) -> int:
    if value is None:  # most steps have no token counts: no exception for them
        return 0
    if type(value) is int:
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


_RUN_KEYS = {
    A.RUN, A.TASK_ID, A.INSTANCE, A.AGENT_NAME, A.OUTCOME, A.SUCCESS, A.REFERENCE, A.SCORE,
}


def run_row(rec: SpanRecord, *, task_id: str | None = None, source: str = "trace") -> dict[str, Any]:
    """The ``runs`` row of a run's root span; an unended root gives an ``incomplete`` run."""
    a = rec.attributes
    if rec.end_ns is None:
        status = "incomplete"
    elif rec.status_code == "ERROR":
        status = "error"
    else:
        status = "ok"
    score = a.get(A.SCORE)
    try:
        score = None if score is None else float(score)
    except (TypeError, ValueError):
        score = None
    extra = {k: v for k, v in a.items() if k not in _RUN_KEYS}
    return {
        "run_id": rec.trace_id,
        "task_id": str(task_id if task_id is not None else a.get(A.TASK_ID, "")),
        "agent": column_text(a.get(A.AGENT_NAME)),
        "instance": None if a.get(A.INSTANCE) is None else str(a.get(A.INSTANCE)),
        "source": source,
        "status": status,
        "start_ns": rec.start_ns,
        "end_ns": rec.end_ns,
        "outcome": column_text(a.get(A.OUTCOME)),
        "success": _as_bool(a.get(A.SUCCESS)),
        "reference": column_text(a.get(A.REFERENCE)),
        "score": score,
        "error": _error(rec),
        "attributes": json_column(extra) if extra else None,
    }


RUN_FIELDS = (
    "run_id", "task_id", "agent", "instance", "source", "status", "start_ns", "end_ns", "outcome",
    "success", "reference", "score", "error", "attributes",
)
RUN_UPSERT = (
    f"INSERT INTO runs ({', '.join(RUN_FIELDS)}) VALUES ({', '.join('?' * len(RUN_FIELDS))}) "
    "ON CONFLICT (run_id) DO UPDATE SET "
    + ", ".join(f"{f} = excluded.{f}" for f in RUN_FIELDS[1:])
)
# A run's start is written only if its end has not been written already.
RUN_START = f"INSERT OR IGNORE INTO runs ({', '.join(RUN_FIELDS)}) VALUES ({', '.join('?' * len(RUN_FIELDS))})"


def step_kind(attrs: dict[str, Any]) -> str:
    kind = attrs.get(A.STEP_KIND)
    if kind:
        return str(kind)
    op = attrs.get(A.OPERATION)
    if op in A.KIND_FOR_OPERATION:
        return A.KIND_FOR_OPERATION[op]
    oi = attrs.get("openinference.span.kind")
    if isinstance(oi, str) and oi.upper() in _OPENINFERENCE_KIND:
        return _OPENINFERENCE_KIND[oi.upper()]
    return "step"


def _first(attrs: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def column_text(value: Any) -> str | None:
    """A column's text: a string as it is, anything else (a list-valued model, a kvlist
    outcome) as its JSON, so one odd value is stored as what it is, never failing its row."""
    if value is None or isinstance(value, str):
        return value
    try:
        return _ENCODER.encode(value)
    except Exception:  # noqa: BLE001 - circular or unencodable: its text, never a failed row
        return as_text(value)


def step_row(rec: SpanRecord, run_id: str, step_index: int, depth: int) -> dict[str, Any]:
    a = rec.attributes
    kind = step_kind(a)
    error = _error(rec)
    if kind == "tool":  # the named arguments and the tool message's content (conventions)
        step_input = conventions.tool_arguments(a)
        step_output, handled = conventions.tool_result(a)
        error = error or handled
    elif kind == "llm":
        step_input = conventions.messages(a, "input", rec.events)
        step_output = conventions.messages(a, "output", rec.events)
    else:
        step_input = _first(a, A.INPUT, A.INPUT_MESSAGES, "input.value")
        step_output = _first(a, A.OUTPUT, A.OUTPUT_MESSAGES, "output.value")
    return {
        "run_id": run_id,
        "span_id": rec.span_id,
        "parent_span_id": rec.parent_span_id,
        "step_index": step_index,
        "depth": depth,
        "kind": kind,
        "name": column_text(rec.name),
        "tool": column_text(_first(a, A.TOOL_NAME, "tool.name")) if kind == "tool" else None,
        "input": column_text(step_input),
        "output": column_text(step_output),
        "goal": column_text(a.get(A.GOAL)),
        "error": error,
        "start_ns": rec.start_ns,
        "end_ns": rec.end_ns,
        "input_tokens": _as_int(_first(a, A.INPUT_TOKENS, "llm.token_count.prompt")),
        "output_tokens": _as_int(_first(a, A.OUTPUT_TOKENS, "llm.token_count.completion")),
        "model": column_text(_first(a, A.RESPONSE_MODEL, A.REQUEST_MODEL, "llm.model_name")),
    }


STEP_FIELDS = (
    "run_id", "span_id", "parent_span_id", "step_index", "depth", "kind", "name", "tool", "input",
    "output", "goal", "error", "start_ns", "end_ns", "input_tokens", "output_tokens", "model",
)
STEP_INSERT = (
    f"INSERT OR REPLACE INTO steps ({', '.join(STEP_FIELDS)}) VALUES ({', '.join('?' * len(STEP_FIELDS))})"
)

#: Step kinds that are not steps of the run's length: goal records, and the wrappers
#: (LangGraph's node chains, an agent span around its own model and tool calls), which stay in
#: the step tree but would make a run of two tool calls ten steps long.
UNCOUNTED_KINDS = ("goal", "chain", "agent")

# The counts kept on each run, recomputed from its steps after every batch that touched it.
RUN_COUNTS = f"""
UPDATE runs SET
    n_steps = (SELECT count(*) FROM steps s WHERE s.run_id = runs.run_id
               AND s.kind NOT IN ({", ".join(repr(k) for k in UNCOUNTED_KINDS)})),
    n_tool_calls = (SELECT count(*) FROM steps s WHERE s.run_id = runs.run_id AND s.kind = 'tool'),
    n_llm_calls = (SELECT count(*) FROM steps s WHERE s.run_id = runs.run_id AND s.kind = 'llm'),
    n_errors = (SELECT count(*) FROM steps s WHERE s.run_id = runs.run_id AND s.error IS NOT NULL),
    input_tokens = (SELECT coalesce(sum(input_tokens), 0) FROM steps s WHERE s.run_id = runs.run_id),
    output_tokens = (SELECT coalesce(sum(output_tokens), 0) FROM steps s WHERE s.run_id = runs.run_id)
WHERE run_id = ?
"""

# The same for many runs in one statement: the id list as one JSON parameter.
RUN_COUNTS_MANY = RUN_COUNTS.replace("WHERE run_id = ?", "WHERE run_id IN (SELECT value FROM json_each(?))")
assert RUN_COUNTS_MANY != RUN_COUNTS


def values(row: dict[str, Any], fields: tuple[str, ...]) -> tuple:
    return tuple(row.get(f) for f in fields)
