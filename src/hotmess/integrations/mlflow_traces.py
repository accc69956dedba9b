"""MLflow Tracing → hotmess runs and steps (``hotmess import mlflow``).

Sources
-------
- **A tracking store**, read through MLflow's own client (``mlflow.MlflowClient.search_traces``,
  page by page, oldest first; ``pip install 'hotmess[mlflow]'``): a tracking URI
  (``sqlite:///mlruns.db``, ``http://127.0.0.1:5000``, ``file:///.../mlruns``), a directory
  (a file store), or an SQLite file of a tracking store. Every experiment, or those named;
  ``since`` / ``until`` bound the trace's request time. Nothing is written to the store.
- **A file of traces** as ``Trace.to_json()`` writes them: one per line (JSON lines), or one
  trace or a JSON list of them (pretty-printed or not), optionally gzipped. Read without MLflow.

Mapping
-------
**One trace is one run**, ``run_id`` = MLflow's trace id (``tr-...``), ``source`` ``"mlflow"``.
Each span becomes a :class:`~hotmess.vocab.records.SpanRecord` (ids as hex, the JSON-encoded
attribute values decoded) with the attributes the OTLP mapping reads, so the rules of
:mod:`hotmess.integrations.otlp_traces` and :mod:`hotmess.vocab.conventions` apply:

- ``mlflow.spanType`` → the step kind: ``LLM`` / ``CHAT_MODEL`` → ``llm``, ``TOOL`` → ``tool``,
  ``AGENT`` → ``agent``, ``CHAIN`` → ``chain`` (both wrappers: not counted as steps),
  ``RETRIEVER`` / ``EMBEDDING`` / ``RERANKER`` → ``retriever``, others → ``step``.
- ``mlflow.spanInputs`` / ``mlflow.spanOutputs`` → ``input.value`` / ``output.value`` (a string
  as it is, anything else as JSON): a tool's inputs are its named arguments, the root's output
  is the run's outcome (its final answer; a message list or LangGraph state gives its last
  assistant message). A chat model's ``messages`` input and its ``choices[].message`` (or
  message) output become ``gen_ai.input.messages`` / ``gen_ai.output.messages``, so the first
  user message gives the task id hash when no task id is named.
- ``mlflow.chat.tokenUsage`` (else an OpenAI ``usage`` in the output) → token counts;
  ``mlflow.llm.model`` (else the ``model`` input) → the model; a tool span's name → the tool.
- Span status ``ERROR`` → the step's (and the root's: the run's) error, from its ``exception``
  event (``KeyError: 'no such city'``); a crashed run without an output has no outcome, so
  crashes key by exception type. A trace still ``IN_PROGRESS`` (root unended) is ``incomplete``.
- Task id: ``task_attr`` in the trace's tags or metadata (``task_id``, ``tags.task_id``,
  ``metadata.task_id``); else by the OTLP rules over the spans (``input.value.task_id`` reaches
  into the root's inputs); else the hash of the first user message.
- Agent: ``agent``, else the root's name (the trace name).
- The trace's tags and metadata (without MLflow's bulky ``mlflow.traceInputs`` /
  ``mlflow.traceOutputs`` / size statistics) are the run's attributes ``mlflow.tags`` and
  ``mlflow.metadata``, with ``mlflow.trace_id``, ``mlflow.experiment_id`` and ``mlflow.state``.

Success: a ``hotmess.success`` tag, else the feedback assessment named by ``success_key``
(default: the first of ``success``, ``correctness``, ``correct``, ``pass``, ``passed``; a boolean,
a 0-1 number read as success when ≥ 0.5, or ``pass`` / ``fail`` text). Left out: expectations,
span links, and traces whose spans the store does not hold (skipped and named).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any

from hotmess.errors import HotmessError, InputError
from hotmess.integrations import platform_traces
from hotmess.integrations.otlp_wire import BadRecord, EmptyFile, read_records
from hotmess.integrations.platform_traces import (
    PlatformBatch,
    add_trace,
    json_text,
    messages_in,
    messages_out,
    named_task,
    parse_time,
    require,
    success_of,
    value_text,
)
from hotmess.progress import Progress
from hotmess.redact import make_redactor
from hotmess.vocab import attributes as A
from hotmess.vocab.records import SpanRecord
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

__all__ = [
    "SOURCE", "STORE_ATTR", "is_tracking_uri", "newest_stored", "parse_mlflow_file", "read_mlflow_store",
    "shown_uri", "store_traces", "trace_spans",
]

SOURCE = "mlflow"

_KINDS = {"LLM": "LLM", "CHAT_MODEL": "LLM", "TOOL": "TOOL", "AGENT": "AGENT", "CHAIN": "CHAIN",
          "RETRIEVER": "RETRIEVER", "EMBEDDING": "EMBEDDING", "RERANKER": "RERANKER"}
_INPUTS, _OUTPUTS = "mlflow.spanInputs", "mlflow.spanOutputs"
_DROPPED = {_INPUTS, _OUTPUTS, "mlflow.traceRequestId"}
_BULKY_METADATA = {"mlflow.traceInputs", "mlflow.traceOutputs", "mlflow.trace.sizeStats"}
_STATUS = {"STATUS_CODE_OK": "OK", "STATUS_CODE_ERROR": "ERROR", "STATUS_CODE_UNSET": "UNSET",
           "OK": "OK", "ERROR": "ERROR", "UNSET": "UNSET"}


# ---------------------------------------------------------------------------------------------
# one trace (Trace.to_dict()) → span records


def _hex_id(value: Any, what: str, size: int) -> str:
    """A span or trace id as hex: MLflow 3 writes base64 (OTLP's protobuf JSON), MLflow 2 hex."""
    if not isinstance(value, str) or not value:
        raise BadRecord(f"missing {what}")
    text = value[2:] if value.startswith("0x") else value
    if len(text) == size * 2:
        try:
            int(text, 16)
            return text.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRecord(f"malformed {what}: {value[:40]!r}") from None
    return raw.hex()


def _decoded(attributes: Any) -> dict[str, Any]:
    """MLflow keeps each attribute value as JSON text: the values, decoded where they are JSON."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise BadRecord("attributes is not an object")
    out = {}
    for key, value in attributes.items():
        if isinstance(value, str):
            with contextlib.suppress(ValueError, RecursionError):
                value = json.loads(value)
        out[str(key)] = value
    return out






def _usage(decoded: dict[str, Any], outputs: Any) -> tuple[Any, Any]:
    usage = decoded.get("mlflow.chat.tokenUsage")
    if isinstance(usage, dict):
        return usage.get("input_tokens"), usage.get("output_tokens")
    usage = outputs.get("usage") if isinstance(outputs, dict) else None
    if isinstance(usage, dict):
        return (usage.get("prompt_tokens", usage.get("input_tokens")),
                usage.get("completion_tokens", usage.get("output_tokens")))
    return None, None


def _attributes(name: str, decoded: dict[str, Any]) -> dict[str, Any]:
    """The OTLP-convention attributes of one MLflow span (module docstring)."""
    attrs = {k: v for k, v in decoded.items() if k not in _DROPPED}
    inputs, outputs = decoded.get(_INPUTS), decoded.get(_OUTPUTS)
    span_type = decoded.get("mlflow.spanType")
    kind = _KINDS.get(span_type.upper()) if isinstance(span_type, str) else None
    if kind:
        attrs["openinference.span.kind"] = kind
    if inputs is not None:
        attrs["input.value"] = value_text(inputs)
    if outputs is not None:
        attrs["output.value"] = value_text(outputs)
    if kind == "TOOL":
        attrs[A.TOOL_NAME] = name
    elif kind == "LLM":
        found_in, found_out = messages_in(inputs), messages_out(outputs)
        if found_in:
            attrs[A.INPUT_MESSAGES] = json_text(found_in)
        if found_out:
            attrs[A.OUTPUT_MESSAGES] = json_text(found_out)
        model = decoded.get("mlflow.llm.model") or (inputs.get("model") if isinstance(inputs, dict) else None)
        if isinstance(model, str) and model:
            attrs[A.REQUEST_MODEL] = model
        tokens_in, tokens_out = _usage(decoded, outputs)
        if tokens_in is not None:
            attrs[A.INPUT_TOKENS] = tokens_in
        if tokens_out is not None:
            attrs[A.OUTPUT_TOKENS] = tokens_out
    return attrs


def _time(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRecord(f"{what} is not a number of nanoseconds")
    try:
        return int(value)
    except ValueError:
        raise BadRecord(f"{what} is not a number of nanoseconds: {value[:40]!r}") from None


def _span(d: Any, trace_id: str, i: int) -> SpanRecord:
    where = f"data.spans[{i}]"
    if not isinstance(d, dict):
        raise BadRecord(f"{where}: not an object")
    try:
        context = d.get("context") if isinstance(d.get("context"), dict) else {}  # MLflow 2
        span_id = _hex_id(d.get("span_id", context.get("span_id")), "span_id", 8)
        parent = d.get("parent_span_id", d.get("parent_id"))
        parent = None if parent in (None, "") else _hex_id(parent, "parent_span_id", 8)
        start = _time(d.get("start_time_unix_nano", d.get("start_time")), "start time") or 0
        end = _time(d.get("end_time_unix_nano", d.get("end_time")), "end time")
        status = d.get("status")
        if isinstance(status, dict):
            code, message = status.get("code"), status.get("message") or status.get("description")
        else:
            code, message = d.get("status_code", status), d.get("status_message")
        events = []
        for event in d.get("events") or []:
            if not isinstance(event, dict):
                raise BadRecord("an event is not an object")
            events.append({"name": str(event.get("name", "")),
                           "timestamp": _time(event.get("time_unix_nano", event.get("timestamp")), "event time") or 0,
                           "attributes": event.get("attributes") if isinstance(event.get("attributes"), dict) else {}})
        name = str(d.get("name") or "span")
        attrs = _attributes(name, _decoded(d.get("attributes")))
    except BadRecord as exc:
        raise BadRecord(f"{where}: {exc}") from None
    return SpanRecord(trace_id, span_id, parent, name, start_ns=start, end_ns=end,
                      status_code=_STATUS.get(str(code).upper(), "UNSET") if code else "UNSET",
                      status_message=None if not message else str(message), attributes=attrs, events=events,
                      scope="mlflow")


def _assessments(info: dict[str, Any]) -> dict[str, Any]:
    """The trace's feedback assessments, name → value (the newest of a name wins)."""
    out: dict[str, Any] = {}
    for a in info.get("assessments") or []:
        if isinstance(a, dict) and isinstance(a.get("feedback"), dict) and a.get("valid", True) is not False:
            name = a.get("assessment_name", a.get("name"))
            if isinstance(name, str):
                out[name] = a["feedback"].get("value")
    return out


def trace_spans(trace: Any, success_key: str | None = None) -> tuple[list[SpanRecord], dict[str, Any], dict[str, Any]]:
    """One trace as ``Trace.to_dict()`` (or ``to_json()``) gives it → its span records (the
    root carrying the trace's fields), its tags and its metadata. Raises BadRecord. Success:
    a ``hotmess.success`` tag, else the feedback assessment ``success_key`` names (default:
    :data:`~hotmess.integrations.platform_traces.SUCCESS_KEYS`)."""
    if not isinstance(trace, dict):
        raise BadRecord("not an object (a trace is {\"info\": ..., \"data\": {\"spans\": [...]}})")
    info, data = trace.get("info"), trace.get("data")
    if not isinstance(info, dict) or not isinstance(data, dict):
        raise BadRecord("not an MLflow trace: no \"info\" and \"data\" objects")
    trace_id = info.get("trace_id", info.get("request_id"))
    if not isinstance(trace_id, str) or not trace_id:
        raise BadRecord("info.trace_id missing")
    spans = data.get("spans")
    if not isinstance(spans, list):
        raise BadRecord(f"{trace_id}: data.spans is not a list")
    if not spans:
        raise BadRecord(f"{trace_id}: no spans (the store holds only the trace's info)")
    tags = info.get("tags") if isinstance(info.get("tags"), dict) else {}
    metadata = info.get("trace_metadata", info.get("request_metadata"))
    metadata = metadata if isinstance(metadata, dict) else {}
    records = [_span(d, trace_id, i) for i, d in enumerate(spans)]
    ids = {s.span_id for s in records}
    location = info.get("trace_location") if isinstance(info.get("trace_location"), dict) else {}
    experiment = (location.get("mlflow_experiment") or {}).get("experiment_id", info.get("experiment_id"))
    for rec in records:
        if rec.parent_span_id is None or rec.parent_span_id not in ids:
            rec.attributes.update({
                "mlflow.trace_id": trace_id,
                "mlflow.experiment_id": experiment,
                "mlflow.state": info.get("state", info.get("status")),
                "mlflow.tags": {k: v for k, v in tags.items() if k != "mlflow.artifactLocation"},
                "mlflow.metadata": {k: v for k, v in metadata.items() if k not in _BULKY_METADATA},
            })
            success = tags.get(A.SUCCESS, metadata.get(A.SUCCESS))
            if success is None:
                success = success_of(_assessments(info), success_key)
            if success is not None:
                rec.attributes[A.SUCCESS] = success
            break
    return records, tags, metadata


#: The run attribute naming the tracking store a run was read from (``resume`` reads it).
STORE_ATTR = "mlflow.tracking_uri"


def _add(batch: PlatformBatch, label: str | None, trace: Any, options: dict[str, Any], store: str | None = None,
         success_key: str | None = None) -> None:
    batch.records += 1
    try:
        spans, tags, metadata = trace_spans(trace, success_key)
    except BadRecord as exc:
        batch.skip(label, str(exc))
        return
    if store is not None:
        for rec in spans:
            if "mlflow.trace_id" in rec.attributes:  # the root
                rec.attributes[STORE_ATTR] = store
    task_id = named_task(options["task_attr"], {"tags": tags, "metadata": metadata})
    add_trace(batch, spans, task_id=task_id, **options)


# ---------------------------------------------------------------------------------------------
# sources


def parse_mlflow_file(
    path: str | PathLike[str], *, task_attr: str = A.TASK_ID, agent: str | None = None, redact: bool = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS, progress: Progress | None = None, since: Any = None,
    until: Any = None, success_key: str | None = None,
) -> PlatformBatch:
    """A file of ``Trace.to_json()`` traces (JSON lines, one trace, or a list; gzip ok) → a batch.
    A malformed record is skipped and named (``line 3: ...``); an unreadable or empty file
    raises :class:`~hotmess.errors.InputError`."""
    where = str(path)
    batch = PlatformBatch(SOURCE, where,
                          since_ns=parse_time(since, "since"), until_ns=parse_time(until, "until"))
    options = dict(task_attr=task_attr, agent=agent, redactor=make_redactor(redact), max_chars=max_chars)
    try:
        for label, record in read_records(Path(path), where, progress):
            if isinstance(record, BadRecord):
                batch.records += 1
                batch.skip(label, str(record))
                continue
            _add(batch, label, record, options, success_key=success_key)
    except EmptyFile:
        raise InputError(where, None, "the file is empty (no MLflow traces in it)") from None
    except (OSError, EOFError) as exc:
        raise InputError(where, None, f"cannot read the file: {getattr(exc, 'strerror', None) or exc}") from None
    return batch


def is_tracking_uri(source: str | PathLike[str]) -> bool:
    """Whether ``source`` names a tracking store rather than a file of traces: a URI, a
    directory, or an SQLite file."""
    text = str(source)
    if "://" in text or text.startswith(("databricks", "sqlite:")):
        return True
    path = Path(text)
    if path.is_dir():
        return True
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _uri(source: str | PathLike[str]) -> str:
    """The tracking URI of a source: a URI as it is; a directory holding ``mlflow.db`` (where
    ``mlflow server`` and MLflow 3 keep their store by default) or ``mlruns.db``, that SQLite
    file; another directory as a file store; an SQLite file as itself."""
    text = str(source)
    if "://" in text or text.startswith(("databricks", "sqlite:")):
        return text
    path = Path(text).resolve()
    if path.is_dir():
        for name in ("mlflow.db", "mlruns.db"):
            if (path / name).is_file():
                return f"sqlite:///{path / name}"
        return path.as_uri()
    return f"sqlite:///{path}"


def shown_uri(source: str | PathLike[str]) -> str:
    """A source as it may be shown and stored: a URI's user and password left out."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", str(source), flags=re.I)


def _experiment_ids(client: Any, experiments: Iterable[str] | None) -> list[str]:
    if experiments:
        ids = []
        for name in experiments:
            found = client.get_experiment_by_name(name)
            if found is None:
                try:
                    found = client.get_experiment(name)
                except Exception:  # noqa: BLE001 - MLflow raises its own errors for unknown ids
                    found = None
            if found is None:
                raise HotmessError(f"no MLflow experiment named or numbered {name!r}")
            ids.append(found.experiment_id)
        return ids
    ids, token = [], None
    while True:
        page = client.search_experiments(view_type=3, max_results=1000, page_token=token)  # 3: active and deleted
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids


def store_traces(
    source: str | PathLike[str], *, experiments: Iterable[str] | None = None, since: Any = None, until: Any = None,
    page_size: int = 100,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(trace id, ``Trace.to_dict()``) of each trace in a tracking store, oldest first, read page
    by page through ``MlflowClient.search_traces`` (request time in ``[since, until)``)."""
    require("mlflow", "mlflow")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=_uri(source))
    ids = _experiment_ids(client, experiments)
    if not ids:
        return
    bounds = []
    for value, op, option in ((since, ">=", "since"), (until, "<", "until")):
        ns = parse_time(value, option)
        if ns is not None:
            bounds.append(f"trace.timestamp_ms {op} {ns // 1_000_000}")
    token = None
    while True:
        page = client.search_traces(locations=ids, filter_string=" AND ".join(bounds) or None,
                                    max_results=page_size, order_by=["timestamp_ms ASC"], page_token=token)
        for trace in page:
            yield trace.info.trace_id, trace.to_dict()
        token = page.token
        if not token:
            return


def read_mlflow_store(
    source: str | PathLike[str], *, experiments: Iterable[str] | None = None, since: Any = None,
    until: Any = None, task_attr: str = A.TASK_ID, agent: str | None = None, redact: bool = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS, page_size: int = 100, success_key: str | None = None,
) -> PlatformBatch:
    """Every trace of a tracking store (:func:`store_traces`) → a batch, as for a file."""
    batch = PlatformBatch(SOURCE, shown_uri(source), is_file=False)
    options = dict(task_attr=task_attr, agent=agent, redactor=make_redactor(redact), max_chars=max_chars)
    try:
        for trace_id, trace in store_traces(source, experiments=experiments, since=since, until=until,
                                            page_size=page_size):
            _add(batch, trace_id, trace, options, batch.path, success_key)
    except HotmessError:
        raise
    except Exception as exc:  # noqa: BLE001 - MLflow's own errors (a bad URI, a server down)
        raise InputError(shown_uri(source), None, f"cannot read the MLflow tracking store: {type(exc).__name__}: {exc}") from None
    return batch


def newest_stored(conn: Any, source: str | PathLike[str]) -> datetime | None:
    """When the newest run read from this tracking store started (``resume``), less a millisecond;
    see :func:`hotmess.integrations.platform_traces.newest_stored`."""
    return platform_traces.newest_stored(conn, SOURCE, STORE_ATTR, shown_uri(source))
