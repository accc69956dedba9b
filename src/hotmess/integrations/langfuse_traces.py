"""Langfuse traces and observations → hotmess runs and steps (``hotmess import langfuse``).

Source
------
A file of what Langfuse's public API returns (its generated pydantic models' JSON, camelCase):
one record per line (JSON lines) or a JSON list, optionally gzipped. A record is

- an **observation** (``ObservationV2``: ``id``, ``traceId``, ``parentObservationId``, ``type``,
  ``startTime``, ``input``, ``output``, ``metadata``, ``level``, ``statusMessage``, ``model``,
  ``usageDetails``, ``traceName``, ``tags``, ``sessionId``);
- a **page** of them (``ObservationsV2Response``: ``{"data": [...], "meta": {...}}``), as
  ``GET /api/public/v2/observations`` returns;
- a **trace with its observations** (``{"id", "name", "input", "output", "metadata", "tags",
  "sessionId", "timestamp", "observations": [...]}``, the older trace API and the UI's export).

Observations are grouped by ``traceId`` over the whole file. Read without the Langfuse SDK.

Mapping
-------
**One trace is one run**, ``run_id`` = Langfuse's trace id, ``source`` ``"langfuse"``; each
observation is a span (parent ``parentObservationId``) mapped by the OTLP rules
(:mod:`hotmess.integrations.otlp_traces`):

- ``type`` ``GENERATION`` → ``llm``, ``TOOL`` → ``tool``, ``AGENT`` → ``agent``, ``CHAIN`` →
  ``chain`` (wrappers), ``RETRIEVER`` / ``EMBEDDING`` → ``retriever``, ``SPAN`` / ``EVENT`` /
  ``EVALUATOR`` / ``GUARDRAIL`` → ``step``.
- The root: a trace record is its own root span (its input, output and metadata; its
  top-level observations under it); with observations only, the observation without a parent
  (the earliest if several; the others are steps at depth 1). Its output is the run's outcome
  (its final answer).
- ``input`` / ``output`` → the step's; a generation's message list (or ``{"messages": [...]}``)
  and its assistant message (or ``choices[].message``) are its messages; a tool's input its
  named arguments. ``model`` → the model; ``usageDetails`` (``input`` / ``output``) or ``usage``
  → tokens.
- ``level`` ``ERROR`` → the step's error from ``statusMessage`` (``ExceptionType: message``
  when it says the type, else ``Error: message``); on the root, the run's.
- Task id: ``task_attr`` in the trace's (root's) ``metadata`` (``task_id``, ``metadata.task_id``),
  else the OTLP rules, else the hash of the first user message. Agent: ``agent``, else the
  trace's name. Metadata, tags, session and user ids, release and environment are run attributes.

Left out: scores (not read as success), costs, prompt links, observation versions.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

from hotmess.integrations.otlp_wire import BadRecord
from hotmess.integrations.platform_traces import (
    PlatformBatch,
    exception_of,
    iso_ns,
    json_text,
    messages_in,
    messages_out,
    parse_file,
    value_text,
)
from hotmess.progress import Progress
from hotmess.vocab import attributes as A
from hotmess.vocab.records import SpanRecord
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

__all__ = ["SOURCE", "observation_record", "parse_langfuse_file"]

SOURCE = "langfuse"

_KINDS = {"GENERATION": "LLM", "TOOL": "TOOL", "AGENT": "AGENT", "CHAIN": "CHAIN", "RETRIEVER": "RETRIEVER",
          "EMBEDDING": "EMBEDDING"}
_RUN_FIELDS = (("sessionId", "langfuse.session_id"), ("userId", "langfuse.user_id"), ("tags", "langfuse.tags"),
               ("release", "langfuse.release"), ("environment", "langfuse.environment"),
               ("version", "langfuse.version"))


def _get(d: dict[str, Any], camel: str) -> Any:
    """A field by its API (camelCase) name, or its Python (snake_case) one."""
    if camel in d:
        return d[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return d.get(snake)






def _tokens(d: dict[str, Any]) -> tuple[Any, Any]:
    for usage in (_get(d, "usageDetails"), _get(d, "usage")):
        if isinstance(usage, dict):
            return (usage.get("input", usage.get("promptTokens", usage.get("prompt_tokens"))),
                    usage.get("output", usage.get("completionTokens", usage.get("completion_tokens"))))
    return None, None


def _span(d: dict[str, Any], trace_id: str, span_id: str, parent: str | None, kind: str | None,
          start: int | None, end: int | None) -> SpanRecord:
    attrs: dict[str, Any] = {"langfuse.type": _get(d, "type") or "TRACE"}
    if kind:
        attrs["openinference.span.kind"] = kind
    inputs, outputs = _get(d, "input"), _get(d, "output")
    if inputs is not None:
        attrs["input.value"] = value_text(inputs)
    if outputs is not None:
        attrs["output.value"] = value_text(outputs)
    metadata = _get(d, "metadata")
    if metadata not in (None, {}, ""):
        attrs["metadata"] = value_text(metadata)
    name = str(_get(d, "name") or _get(d, "type") or "observation")
    if kind == "TOOL":
        attrs[A.TOOL_NAME] = name
    elif kind == "LLM":
        found_in, found_out = messages_in(inputs), messages_out(outputs)
        if found_in:
            attrs[A.INPUT_MESSAGES] = json_text(found_in)
        if found_out:
            attrs[A.OUTPUT_MESSAGES] = json_text(found_out)
        model = _get(d, "model")
        if isinstance(model, str) and model:
            attrs[A.REQUEST_MODEL] = model
        tokens_in, tokens_out = _tokens(d)
        if tokens_in is not None:
            attrs[A.INPUT_TOKENS] = tokens_in
        if tokens_out is not None:
            attrs[A.OUTPUT_TOKENS] = tokens_out
    code, message, events = ("OK" if end is not None else "UNSET"), None, []
    if str(_get(d, "level") or "").upper() == "ERROR":
        kind_name, text = exception_of(str(_get(d, "statusMessage") or "error"))
        code, message = "ERROR", f"{kind_name}: {text}" if text else kind_name
        events.append({"name": "exception", "timestamp": end or start or 0,
                       "attributes": {"exception.type": kind_name, "exception.message": text}})
    return SpanRecord(trace_id, span_id, parent, name, start_ns=start or 0, end_ns=end, status_code=code,
                      status_message=message, attributes=attrs, events=events, scope="langfuse")


def observation_record(d: Any, trace_id: str | None = None) -> SpanRecord:
    """One observation (API JSON, camelCase or snake_case) → a span record. Raises BadRecord."""
    if not isinstance(d, dict):
        raise BadRecord("not an object (a Langfuse observation)")
    obs_id = d.get("id")
    if not isinstance(obs_id, str) or not obs_id:
        raise BadRecord("missing id")
    trace_id = _get(d, "traceId") or trace_id
    if not isinstance(trace_id, str) or not trace_id:
        raise BadRecord(f"observation {obs_id}: no traceId")
    kind_name = _get(d, "type")
    if not isinstance(kind_name, str):
        raise BadRecord(f"observation {obs_id}: type missing")
    parent = _get(d, "parentObservationId")
    rec = _span(d, trace_id, obs_id, None if not parent else str(parent), _KINDS.get(kind_name.upper()),
                iso_ns(_get(d, "startTime"), "startTime"), iso_ns(_get(d, "endTime"), "endTime"))
    if rec.parent_span_id is None:
        _run_fields(rec, d)
        if _get(d, "traceName") and not _get(d, "name"):
            rec.name = str(_get(d, "traceName"))
    return rec


def _run_fields(rec: SpanRecord, d: dict[str, Any]) -> None:
    for camel, key in _RUN_FIELDS:
        value = _get(d, camel)
        if value not in (None, [], ""):
            rec.attributes[key] = value
    rec.attributes["langfuse.trace_id"] = rec.trace_id


def _trace(d: dict[str, Any]) -> list[SpanRecord]:
    """A trace with its observations: the trace as the root span, its observations under it."""
    trace_id = d.get("id")
    if not isinstance(trace_id, str) or not trace_id:
        raise BadRecord("trace without an id")
    observations = d["observations"]
    if not isinstance(observations, list):
        raise BadRecord(f"trace {trace_id}: observations is not a list")
    spans = []
    for i, o in enumerate(observations):
        try:
            spans.append(observation_record(o, trace_id))
        except BadRecord as exc:
            raise BadRecord(f"trace {trace_id}: observations[{i}]: {exc}") from None
    start = iso_ns(d.get("timestamp"), "timestamp")
    starts = [s.start_ns for s in spans if s.start_ns]
    ends = [s.end_ns for s in spans if s.end_ns is not None]
    start = start if start is not None else (min(starts) if starts else 0)
    end = max([start, *ends]) if (ends or not spans) else None
    root_id = f"trace-{trace_id}"
    for s in spans:
        if s.parent_span_id is None:
            s.parent_span_id = root_id
    root = _span(d, trace_id, root_id, None, "AGENT" if d.get("name") else None, start, end)
    if any(s.status_code == "ERROR" for s in spans if s.parent_span_id == root_id) and d.get("output") is None:
        failed = next(s for s in spans if s.parent_span_id == root_id and s.status_code == "ERROR")
        root.status_code, root.status_message, root.events = "ERROR", failed.status_message, list(failed.events)
    _run_fields(root, d)
    return [root, *spans]


def _records(record: Any) -> list[SpanRecord]:
    if isinstance(record, dict) and "observations" in record:
        return _trace(record)
    if isinstance(record, dict) and isinstance(record.get("data"), list) and "id" not in record:
        out = []
        for i, item in enumerate(record["data"]):
            try:
                out.extend(_records(item))
            except BadRecord as exc:
                raise BadRecord(f"data[{i}]: {exc}") from None
        return out
    return [observation_record(record)]


def parse_langfuse_file(
    path: str | PathLike[str], *, task_attr: str = A.TASK_ID, agent: str | None = None, redact: bool = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS, progress: Progress | None = None, since: Any = None,
    until: Any = None,
) -> PlatformBatch:
    """A file of Langfuse observations, pages of them or traces (JSON lines or a list; gzip ok)
    → a batch, one run per trace. A malformed record is skipped and named."""
    return parse_file(path, source=SOURCE, unit="record", what="Langfuse traces", to_spans=_records,
                      task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars, progress=progress,
                      since=since, until=until)

