"""Langfuse traces and observations → hotmess runs and steps (``hotmess import langfuse``).

Sources
-------
- **A Langfuse server** (``read_langfuse_server``; ``hotmess import langfuse --host URL``, else
  ``LANGFUSE_HOST``): ``GET /api/public/traces`` page by page (``page`` / ``limit``, oldest
  first, ``fromTimestamp`` / ``toTimestamp`` from ``since`` / ``until``), then each trace with
  its observations and scores (``GET /api/public/traces/{id}``), with basic auth
  ``LANGFUSE_PUBLIC_KEY`` : ``LANGFUSE_SECRET_KEY``, through the standard library (nothing is
  written to the server).
- **A file** of what Langfuse's public API returns (its generated pydantic models' JSON, camelCase):
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

Success: the trace's ``scores`` (``{"name", "value", "stringValue", "dataType"}``): the one named
``success_key``, else the first of ``success``, ``correctness``, ``correct``, ``pass``, ``passed``;
a boolean or 0-1 numeric score is success when ≥ 0.5, a categorical one when ``pass`` / ``true``
/ ``correct``; a score repeated keeps its newest value; none of them: success unknown.

Left out: observation scores, costs, prompt links, observation versions.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from os import PathLike
from typing import Any

from hotmess.errors import HotmessError, InputError
from hotmess.integrations.otlp_wire import BadRecord
from hotmess.integrations.platform_traces import (
    PlatformBatch,
    add_traces,
    exception_of,
    iso_ns,
    json_text,
    messages_in,
    messages_out,
    parse_file,
    parse_time,
    success_of,
    value_text,
)
from hotmess.progress import Progress
from hotmess.vocab import attributes as A
from hotmess.vocab.records import SpanRecord
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

__all__ = ["SERVER_ATTR", "SOURCE", "host_of", "observation_record", "parse_langfuse_file", "read_langfuse_server",
           "server_traces"]

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


def _scores(d: dict[str, Any]) -> dict[str, Any]:
    """A trace's scores, name → value (the newest of a name wins; text for categorical ones)."""
    found = [x for x in d.get("scores") or [] if isinstance(x, dict) and isinstance(x.get("name"), str)
             and not _get(x, "observationId")]
    found.sort(key=lambda x: str(x.get("timestamp") or ""))
    out: dict[str, Any] = {}
    for x in found:
        kind = str(_get(x, "dataType") or "").upper()
        value = _get(x, "stringValue") if kind == "CATEGORICAL" else x.get("value")
        out[x["name"]] = bool(value) if kind == "BOOLEAN" and value is not None else value
    return out


def _trace(d: dict[str, Any], success_key: str | None = None) -> list[SpanRecord]:
    """A trace with its observations: the trace as the root span, its observations under it;
    its score named ``success_key`` (module docstring) the run's success."""
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
    success = success_of(_scores(d), success_key)
    if success is not None:
        root.attributes[A.SUCCESS] = success
    return [root, *spans]


def _records(record: Any, success_key: str | None = None) -> list[SpanRecord]:
    if isinstance(record, dict) and "observations" in record:
        return _trace(record, success_key)
    if isinstance(record, dict) and isinstance(record.get("data"), list) and "id" not in record:
        out = []
        for i, item in enumerate(record["data"]):
            try:
                out.extend(_records(item, success_key))
            except BadRecord as exc:
                raise BadRecord(f"data[{i}]: {exc}") from None
        return out
    return [observation_record(record)]


def parse_langfuse_file(
    path: str | PathLike[str], *, task_attr: str = A.TASK_ID, agent: str | None = None, redact: bool = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS, progress: Progress | None = None, since: Any = None,
    until: Any = None, success_key: str | None = None,
) -> PlatformBatch:
    """A file of Langfuse observations, pages of them or traces (JSON lines or a list; gzip ok)
    → a batch, one run per trace. A malformed record is skipped and named."""
    return parse_file(path, source=SOURCE, unit="record", what="Langfuse traces",
                      to_spans=lambda record: _records(record, success_key),
                      task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars, progress=progress,
                      since=since, until=until)



# ---------------------------------------------------------------------------------------------
# a Langfuse server

#: The run attribute naming the server a run was read from (``resume`` reads it).
SERVER_ATTR = "langfuse.host"


def host_of(host: str | None = None) -> str:
    """The server: ``host``, else ``LANGFUSE_HOST`` (or ``LANGFUSE_BASE_URL``), else Langfuse's cloud."""
    url = host or os.environ.get("LANGFUSE_HOST") or os.environ.get("LANGFUSE_BASE_URL") \
        or "https://cloud.langfuse.com"
    return url.rstrip("/")


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def server_traces(
    host: str | None = None, *, since: Any = None, until: Any = None, page_size: int = 50,
    public_key: str | None = None, secret_key: str | None = None, timeout: float = 30.0,
) -> Iterator[dict[str, Any]]:
    """Each trace of a Langfuse project (its keys') with its observations and scores, oldest
    first: ``GET /api/public/traces`` page by page, then ``GET /api/public/traces/{id}`` (read-only)."""
    base = host_of(host)
    public = public_key or os.environ.get("LANGFUSE_PUBLIC_KEY", "")
    secret = secret_key or os.environ.get("LANGFUSE_SECRET_KEY", "")
    auth = "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()

    def get(path: str, query: dict[str, Any] | None = None) -> Any:
        url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, headers={"Authorization": auth, "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the user's own server
            return json.loads(response.read().decode("utf-8"))

    query: dict[str, Any] = {"limit": page_size, "orderBy": "timestamp.asc"}
    for value, name, option in ((since, "fromTimestamp", "since"), (until, "toTimestamp", "until")):
        ns = parse_time(value, option)
        if ns is not None:
            query[name] = _iso(ns)
    page = 1
    while True:
        body = get("/api/public/traces", {**query, "page": page})
        data = body.get("data") if isinstance(body, dict) else None
        if not data:
            return
        for trace in data:
            if isinstance(trace, dict) and isinstance(trace.get("id"), str):
                yield get(f"/api/public/traces/{urllib.parse.quote(trace['id'], safe='')}")
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        if page >= int(meta.get("totalPages") or page):
            return
        page += 1


def read_langfuse_server(
    host: str | None = None, *, since: Any = None, until: Any = None, task_attr: str = A.TASK_ID,
    agent: str | None = None, redact: bool = True, max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    success_key: str | None = None, page_size: int = 50, public_key: str | None = None,
    secret_key: str | None = None,
) -> PlatformBatch:
    """Every trace on a Langfuse server (:func:`server_traces`) → a batch, one run per trace."""
    base = host_of(host)
    batch = PlatformBatch(SOURCE, base, unit="trace", is_file=False,
                          since_ns=parse_time(since, "since"), until_ns=parse_time(until, "until"))
    traces: dict[str, dict[str, SpanRecord]] = {}
    try:
        for trace in server_traces(base, since=since, until=until, page_size=page_size, public_key=public_key,
                                   secret_key=secret_key):
            batch.records += 1
            try:
                spans = _trace(trace if "observations" in trace else {**trace, "observations": []}, success_key)
            except BadRecord as exc:
                batch.skip(trace.get("id") if isinstance(trace, dict) else None, str(exc))
                continue
            spans[0].attributes[SERVER_ATTR] = base
            traces[spans[0].trace_id] = {s.span_id: s for s in spans}
    except HotmessError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InputError(base, None, f"cannot read the Langfuse server: {type(exc).__name__}: {exc}") from None
    add_traces(batch, traces, task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars)
    return batch
