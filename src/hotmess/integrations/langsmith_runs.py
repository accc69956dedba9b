"""LangSmith runs → hotmess runs and steps (``hotmess import langsmith``).

Sources
-------
- **A LangSmith server** (``read_langsmith_server``; ``hotmess import langsmith --project NAME``):
  the project's runs through the official client (``langsmith.Client().list_runs``, ``pip install
  'hotmess[langsmith]'``), which reads ``LANGSMITH_API_KEY`` and ``LANGSMITH_ENDPOINT`` as it
  always does and pages ``POST /runs/query`` by its cursors. ``since`` is sent as the query's
  ``start_time``; ``until`` bounds the root's start; a trace whose root run started before
  ``since`` (only its later child runs returned) is left out as outside the bounds. Nothing is
  written to the server (no run, feedback or project is created or updated).
- **A file** of LangSmith runs as the SDK serialises them (``RunTree.model_dump_json()`` /
``Run.json()``, what ``Client.list_runs`` returns): one run per line (JSON lines), or a JSON
list, optionally gzipped; a run holding ``child_runs`` has them read too. Runs are grouped by
``trace_id`` (else the first id of ``dotted_order``) over the whole file. Read without the
LangSmith SDK.

Mapping
-------
**One trace is one run**, ``run_id`` = LangSmith's trace id (the root run's uuid), ``source``
``"langsmith"``; each LangSmith run becomes a :class:`~hotmess.vocab.records.SpanRecord` (parent
from ``parent_run_id``) mapped by :mod:`hotmess.integrations.otlp_traces`' rules:

- ``run_type`` ``llm`` → ``llm``, ``tool`` → ``tool``, ``chain`` → ``chain`` (a wrapper: not a
  counted step), ``retriever`` / ``embedding`` → ``retriever``, others (``prompt``,
  ``parser``) → ``step``.
- ``inputs`` / ``outputs`` → the step's input and output; ``{"output": value}`` (how the SDK
  wraps what a function returned) is unwrapped, so the root's output is the run's outcome (its
  final answer; LangChain ``generations`` and message states give the last AI message). A tool's
  inputs are its named arguments. An LLM run's ``messages`` input and ``choices[].message``
  output are its messages.
- ``error`` (the SDK writes ``repr(exception)`` then the traceback) → the step's error, as
  ``ExceptionType: message``; on the root, the run's (a crash without output has no outcome).
- Tokens from ``extra.metadata.usage_metadata``, ``outputs.usage_metadata``,
  ``llm_output.token_usage`` or the run's ``prompt_tokens`` / ``completion_tokens``; the model
  from ``extra.metadata.ls_model_name`` or ``extra.invocation_params.model``.
- Task id: ``task_attr`` in the root's ``extra.metadata`` (``task_id``, ``metadata.task_id``;
  the default also tries ``task_id``), else the OTLP rules, else the first user message's hash.
  Agent: ``agent``, else ``metadata.lc_agent_name``, else the root's name (unless a framework
  default such as ``LangGraph``).
- The root's metadata (``metadata``), ``tags``, ``session_name`` and ``reference_example_id``
  are kept as run attributes (``metadata``, ``langsmith.*``).

Success: the root run's ``feedback_stats`` (what ``list_runs`` and ``Run.json()`` carry: per
feedback key its ``avg``), the key ``success_key`` names, else the first of ``success``,
``correctness``, ``correct``, ``pass``, ``passed``: success when the mean score is ≥ 0.5 (a
boolean or 0-1 feedback); none of them: success unknown.

Left out: feedback on child runs, feedback comments and corrections, events other than errors,
attachments, ``serialized``. A trace whose root run is not in the file is ``incomplete``.
"""

from __future__ import annotations

import json
import warnings
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
    parse_file,
    parse_time,
    require,
    success_of,
    value_text,
)
from hotmess.progress import Progress
from hotmess.vocab import attributes as A
from hotmess.vocab.records import SpanRecord
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

__all__ = ["SERVER_ATTR", "SOURCE", "exception_of", "parse_langsmith_file", "read_langsmith_server", "run_record",
           "server_label", "server_runs"]

SOURCE = "langsmith"

_KINDS = {"llm": "LLM", "tool": "TOOL", "chain": "CHAIN", "retriever": "RETRIEVER", "embedding": "EMBEDDING"}


def _unwrapped(outputs: Any) -> Any:
    """What the run returned: ``{"output": value}`` unwrapped; ``{}`` (a run that ended in an
    error has no outputs) is None."""
    if isinstance(outputs, dict) and set(outputs) == {"output"}:
        return outputs["output"]
    return None if outputs == {} else outputs


def _tokens(run: dict[str, Any], metadata: dict[str, Any], outputs: Any) -> tuple[Any, Any]:
    for usage in (metadata.get("usage_metadata"), outputs.get("usage_metadata") if isinstance(outputs, dict) else None):
        if isinstance(usage, dict):
            return usage.get("input_tokens"), usage.get("output_tokens")
    llm_output = outputs.get("llm_output") if isinstance(outputs, dict) else None
    usage = llm_output.get("token_usage") if isinstance(llm_output, dict) else None
    if not isinstance(usage, dict) and isinstance(outputs, dict) and isinstance(outputs.get("usage"), dict):
        usage = outputs["usage"]
    if isinstance(usage, dict):
        return usage.get("prompt_tokens", usage.get("input_tokens")), usage.get("completion_tokens", usage.get("output_tokens"))
    return run.get("prompt_tokens"), run.get("completion_tokens")


def _llm(attrs: dict[str, Any], run: dict[str, Any], extra: dict[str, Any], metadata: dict[str, Any],
         inputs: Any, outputs: Any) -> None:
    messages = inputs.get("messages", inputs.get("prompts")) if isinstance(inputs, dict) else None
    if messages:
        attrs[A.INPUT_MESSAGES] = json_text(messages)
    if isinstance(outputs, dict) and isinstance(outputs.get("choices"), list):
        found = [c["message"] for c in outputs["choices"] if isinstance(c, dict) and isinstance(c.get("message"), dict)]
        if found:
            attrs[A.OUTPUT_MESSAGES] = json_text(found)
    params = extra.get("invocation_params") if isinstance(extra.get("invocation_params"), dict) else {}
    model = metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
    if isinstance(model, str) and model:
        attrs[A.REQUEST_MODEL] = model
    tokens_in, tokens_out = _tokens(run, metadata, outputs)
    if tokens_in is not None:
        attrs[A.INPUT_TOKENS] = tokens_in
    if tokens_out is not None:
        attrs[A.OUTPUT_TOKENS] = tokens_out


def _feedback(run: dict[str, Any]) -> dict[str, Any]:
    """``feedback_stats`` as key → mean score (``{"correctness": {"n": 2, "avg": 0.5}}``)."""
    stats = run.get("feedback_stats")
    if not isinstance(stats, dict):
        return {}
    return {k: (v.get("avg") if isinstance(v, dict) else v) for k, v in stats.items()}


def run_record(run: Any, success_key: str | None = None) -> SpanRecord:
    """One LangSmith run (a serialised ``RunTree`` or ``Run``) → a span record of its trace;
    on a root, its feedback named ``success_key`` (module docstring) is the run's success."""
    if not isinstance(run, dict):
        raise BadRecord("not an object (a LangSmith run)")
    run_id = run.get("id")
    if not isinstance(run_id, str) or not run_id:
        raise BadRecord("missing id")
    trace_id = run.get("trace_id")
    if not trace_id and isinstance(run.get("dotted_order"), str):
        trace_id = run["dotted_order"].split(".", 1)[0][-36:]
    if not trace_id and run.get("parent_run_id") is None:
        trace_id = run_id
    if not isinstance(trace_id, str) or not trace_id:
        raise BadRecord(f"run {run_id}: no trace_id")
    run_type = run.get("run_type")
    if not isinstance(run_type, str):
        raise BadRecord(f"run {run_id}: run_type missing")
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    metadata = extra.get("metadata") if isinstance(extra.get("metadata"), dict) else {}
    inputs, outputs = run.get("inputs"), _unwrapped(run.get("outputs"))
    start = iso_ns(run.get("start_time"), "start_time")
    end = iso_ns(run.get("end_time"), "end_time")
    attrs: dict[str, Any] = {}
    kind = _KINDS.get(run_type.lower())
    if kind:
        attrs["openinference.span.kind"] = kind
    if inputs is not None:
        attrs["input.value"] = value_text(inputs)
    if outputs is not None:
        attrs["output.value"] = value_text(outputs)
    if metadata:
        attrs["metadata"] = json_text(metadata)
    name = str(run.get("name") or run_type)
    if kind == "TOOL":
        attrs[A.TOOL_NAME] = name
    elif kind == "LLM":
        _llm(attrs, run, extra, metadata, inputs, outputs)
    events, code, message = [], "OK" if end is not None else "UNSET", None
    error = run.get("error")
    if error:
        kind_name, text = exception_of(str(error))
        code, message = "ERROR", f"{kind_name}: {text}" if text else kind_name
        events.append({"name": "exception", "timestamp": end or start or 0,
                       "attributes": {"exception.type": kind_name, "exception.message": text,
                                      "exception.stacktrace": str(error)}})
    parent = run.get("parent_run_id")
    if parent is None:
        attrs.update({k: v for k, v in (
            ("langsmith.trace_id", trace_id), ("langsmith.tags", run.get("tags") or None),
            ("langsmith.session_name", run.get("session_name")),
            ("langsmith.reference_example_id", run.get("reference_example_id"))) if v is not None})
        success = success_of(_feedback(run), success_key)
        if success is not None:
            attrs[A.SUCCESS] = success
    return SpanRecord(trace_id, run_id, None if parent is None else str(parent), name, start_ns=start or 0,
                      end_ns=end, status_code=code, status_message=message, attributes=attrs, events=events,
                      scope="langsmith")


def _flattened(record: Any) -> list[Any]:
    """A run and, depth first, the ``child_runs`` it holds (a tree serialised whole)."""
    out, todo = [], [record]
    while todo:
        node = todo.pop()
        if isinstance(node, dict) and isinstance(node.get("child_runs"), list):
            children = node["child_runs"]
            node = {k: v for k, v in node.items() if k != "child_runs"}
            todo.extend(reversed(children))
        out.append(node)
    return out


def parse_langsmith_file(
    path: str | PathLike[str], *, task_attr: str = A.TASK_ID, agent: str | None = None, redact: bool = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS, progress: Progress | None = None, since: Any = None,
    until: Any = None, success_key: str | None = None,
) -> PlatformBatch:
    """A file of LangSmith runs (JSON lines or a list; gzip ok) → a batch, one run per trace.
    A malformed record is skipped and named; an unreadable or empty file raises InputError."""
    return parse_file(path, source=SOURCE, unit="run", what="LangSmith runs",
                      to_spans=lambda record: [run_record(r, success_key) for r in _flattened(record)],
                      task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars, progress=progress,
                      since=since, until=until)



# ---------------------------------------------------------------------------------------------
# a LangSmith server

#: The run attribute naming the server and project a run was read from (``resume`` reads it).
SERVER_ATTR = "langsmith.server"


def server_label(project: str, endpoint: str | None = None) -> str:
    """``ENDPOINT/projects/NAME``: the server (``LANGSMITH_ENDPOINT``, else LangSmith's cloud)
    and project an import read, as stored on its runs and in the imports log."""
    import os

    url = endpoint or os.environ.get("LANGSMITH_ENDPOINT") or os.environ.get("LANGCHAIN_ENDPOINT") \
        or "https://api.smith.langchain.com"
    return f"{url.rstrip('/')}/projects/{project}"


def server_runs(project: str, *, since: Any = None, endpoint: str | None = None,
                api_key: str | None = None) -> Iterator[dict[str, Any]]:
    """Each run of a LangSmith project (``Run`` as JSON-ready dicts) started at ``since`` or
    later, read page by page with ``langsmith.Client().list_runs`` (read-only)."""
    require("langsmith", "langsmith")
    import langsmith

    client = langsmith.Client(api_url=endpoint, api_key=api_key)
    ns = parse_time(since, "since")
    start = None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC)
    with warnings.catch_warnings():  # list_runs is deprecated for client.runs.query (newer SDKs only)
        warnings.simplefilter("ignore", DeprecationWarning)
        runs = client.list_runs(project_name=project, start_time=start)
    for run in runs:
        yield run.model_dump(mode="json") if hasattr(run, "model_dump") else json.loads(run.json())


def read_langsmith_server(
    project: str, *, since: Any = None, until: Any = None, endpoint: str | None = None,
    api_key: str | None = None, task_attr: str = A.TASK_ID, agent: str | None = None, redact: bool = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS, success_key: str | None = None,
) -> PlatformBatch:
    """A LangSmith project's runs (:func:`server_runs`) → a batch, one run per trace; the
    traces whose root run is not among them (started before ``since``) are left out."""
    label = server_label(project, endpoint)
    batch = PlatformBatch(SOURCE, label, unit="run", is_file=False,
                          since_ns=parse_time(since, "since"), until_ns=parse_time(until, "until"))
    traces: dict[str, dict[str, SpanRecord]] = {}
    try:
        for run in server_runs(project, since=since, endpoint=endpoint, api_key=api_key):
            batch.records += 1
            try:
                rec = run_record(run, success_key)
            except BadRecord as exc:
                batch.skip(run.get("id") if isinstance(run, dict) else None, str(exc))
                continue
            trace = traces.setdefault(rec.trace_id, {})
            if rec.end_ns is not None or rec.span_id not in trace:
                trace[rec.span_id] = rec
    except HotmessError:
        raise
    except Exception as exc:  # noqa: BLE001 - the SDK's own errors (no such project, a server down, a bad key)
        raise InputError(label, None, f"cannot read the LangSmith project: {type(exc).__name__}: {exc}") from None
    rooted = {}
    for trace_id, spans in traces.items():
        root = next((s for s in spans.values() if s.parent_span_id is None), None)
        if root is None:
            batch.outside += 1
            continue
        root.attributes[SERVER_ATTR] = label
        rooted[trace_id] = spans
    add_traces(batch, rooted, task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars)
    return batch
