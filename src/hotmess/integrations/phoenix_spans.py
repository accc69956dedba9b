"""Arize Phoenix spans → hotmess runs and steps (``hotmess import phoenix``).

Source
------
- A file of Phoenix's spans dataframe (``px.Client().get_spans_dataframe()`` /
  ``phoenix.client.Client().spans.get_spans_dataframe()``) written by the user as Parquet
  (``df.to_parquet``, read with pyarrow: ``hotmess[parquet]``) or JSON lines
  (``df.to_json(orient="records", lines=True)``; a JSON list too, gzip ok): one span per row,
  columns ``context.span_id``, ``context.trace_id``, ``parent_id``, ``name``, ``span_kind``,
  ``start_time``, ``end_time``, ``status_code``, ``status_message``, ``events`` and
  ``attributes.*`` (OpenInference attributes, semantic conventions split into columns such as
  ``attributes.llm.input_messages``, ``attributes.input.value``, ``attributes.metadata``).
- A file of the spans Phoenix's REST API returns (``GET /v1/projects/{project}/spans``: pages
  ``{"data": [...], "next_cursor": ...}`` or the spans themselves, with ``context`` and
  ``attributes`` nested and the attributes flattened, ``llm.input_messages.0.message.role``).
- A Phoenix server (``endpoint``): that REST endpoint read page by page with its cursor (GET
  only, nothing written back), the API key from ``PHOENIX_API_KEY`` sent as a bearer token.

Mapping
-------
Phoenix spans are OpenInference spans: each becomes a
:class:`~hotmess.vocab.records.SpanRecord` with its attributes flattened back to the dotted keys
OpenInference sends over OTLP (``span_kind`` → ``openinference.span.kind``; ``metadata`` and
``tool.parameters`` as JSON text) and is mapped by the same rules as ``import otlp``
(:mod:`hotmess.integrations.otlp_traces` through :func:`~hotmess.integrations.platform_traces.add_traces`):
**one trace is one run** (``run_id`` = the trace id, ``source`` ``"phoenix"``), the root span's
output is the outcome, ``status_code`` ``ERROR`` and the ``exception`` event the error, LLM /
TOOL / AGENT / CHAIN / RETRIEVER kinds as steps, the task id from ``task_attr`` (the root's
``metadata``, then span attributes, then the first user message's hash).

Left out: annotations and evaluations (not read as success), Phoenix's span row ids, sessions and
projects other than the one read. A trace whose root span was not exported is ``incomplete``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any

from hotmess.errors import HotmessError
from hotmess.integrations.otlp_wire import BadRecord, EmptyFile, read_records
from hotmess.integrations.platform_traces import (
    PlatformBatch,
    add_traces,
    iso_ns,
    json_text,
    parse_file,
    parse_time,
    require,
)
from hotmess.integrations.platform_traces import (
    newest_stored as platform_newest_stored,
)
from hotmess.progress import Progress
from hotmess.vocab import attributes as A
from hotmess.vocab.records import SpanRecord
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

__all__ = ["SOURCE", "STORE_ATTR", "check_endpoint", "newest_stored", "parse_phoenix_file", "read_phoenix_server", "server_spans",
           "span_record"]

SOURCE = "phoenix"

#: The run attribute naming the server and project a run was read from (``resume`` reads it).
STORE_ATTR = "phoenix.source"

#: Attributes Phoenix parses from JSON text (``JSON_STRING_ATTRIBUTES``), sent as JSON text again.
_JSON_TEXT = ("metadata", "tool.parameters", "llm.prompt_template.variables", "document.metadata")
_STATUS = {"OK": "OK", "ERROR": "ERROR", "UNSET": "UNSET"}


def _flatten(key: str, value: Any, out: dict[str, Any]) -> None:
    """A Phoenix attribute (nested as the dataframe holds it, or already dotted) → OTLP's dotted keys."""
    if value is None or (isinstance(value, float) and value != value):  # absent, or pandas' NaN
        return
    if key.endswith(_JSON_TEXT) and isinstance(value, (dict, list)):
        out[key] = json_text(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{key}.{k}" if key else str(k), v, out)
    elif isinstance(value, (list, tuple)) and any(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            _flatten(f"{key}.{i}", v, out)
    elif isinstance(value, (list, tuple)):
        out[key] = list(value)
    elif isinstance(value, datetime):
        out[key] = value.isoformat()
    else:
        out[key] = value


def _listed(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listed(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items) and sorted(map(int, items)) == list(range(len(items))):
        return [items[str(i)] for i in range(len(items))]
    return items


def _json_texts(attrs: dict[str, Any]) -> None:
    """JSON-text attributes the REST API flattened (``metadata.task_id``, ``metadata.path.0``)
    gathered back into one JSON text (``metadata``), in place."""
    for name in ("metadata", "tool.parameters", "llm.prompt_template.variables"):
        prefix = name + "."
        keys = [k for k in attrs if k.startswith(prefix)]
        if not keys or name in attrs:
            continue
        tree: dict[str, Any] = {}
        for key in keys:
            node = tree
            *path, leaf = key[len(prefix):].split(".")
            for part in path:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    break
            else:
                node[leaf] = attrs.pop(key)
        attrs[name] = json_text(_listed(tree))


def _time(value: Any, what: str) -> int | None:
    if isinstance(value, datetime):  # Parquet's timestamps (and pandas')
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1_000_000) * 1000
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 1e17:
        return int(value)  # nanoseconds
    return iso_ns(value, what)


def _hex(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRecord(f"{what} missing")
    return value


def span_record(span: Any) -> SpanRecord:
    """One Phoenix span (a dataframe row, or a span of the REST API) → a span record of its trace."""
    if not isinstance(span, dict):
        raise BadRecord("not an object (a Phoenix span)")
    context = span.get("context") if isinstance(span.get("context"), dict) else {}
    span_id = _hex(context.get("span_id", span.get("context.span_id", span.get("span_id"))), "context.span_id")
    trace_id = _hex(context.get("trace_id", span.get("context.trace_id", span.get("trace_id"))),
                    f"span {span_id}: context.trace_id")
    attrs: dict[str, Any] = {}
    if isinstance(span.get("attributes"), dict):
        _flatten("", span["attributes"], attrs)
    for column, value in span.items():
        if column.startswith("attributes."):
            _flatten(column[len("attributes."):], value, attrs)
    _json_texts(attrs)
    kind = span.get("span_kind")
    if isinstance(kind, str) and kind and kind != "UNKNOWN":
        attrs.setdefault("openinference.span.kind", kind)
    try:
        start = _time(span.get("start_time"), "start_time")
        end = _time(span.get("end_time"), "end_time")
    except BadRecord as exc:
        raise BadRecord(f"span {span_id}: {exc}") from None
    if start is None:
        raise BadRecord(f"span {span_id}: start_time missing")
    events = []
    for event in span.get("events") or []:
        if not isinstance(event, dict):
            continue
        event_attrs: dict[str, Any] = {}
        _flatten("", event.get("attributes") or {}, event_attrs)
        try:
            stamp = _time(event.get("timestamp"), "event timestamp")
        except BadRecord:
            stamp = None
        events.append({"name": str(event.get("name") or ""), "timestamp": stamp or end or start,
                       "attributes": event_attrs})
    parent = span.get("parent_id")
    parent = parent if isinstance(parent, str) and parent else None
    code = _STATUS.get(str(span.get("status_code") or "UNSET").upper(), "UNSET")
    message = span.get("status_message") or None
    return SpanRecord(trace_id, span_id, parent, str(span.get("name") or kind or "span"), start_ns=start, end_ns=end,
                      status_code=code, status_message=message if isinstance(message, str) else None,
                      attributes=attrs, events=events, scope="phoenix")


def _spans_of(record: Any) -> list[SpanRecord]:
    """A file record's spans: a REST page (``{"data": [...]}``) or one span."""
    if isinstance(record, dict) and isinstance(record.get("data"), list) and "next_cursor" in record:
        return [span_record(s) for s in record["data"]]
    return [span_record(record)]


def _parquet_rows(path: Path, where: str, progress: Progress | None) -> Iterator[tuple[str | None, Any]]:
    pq = require("pyarrow.parquet", "parquet")
    try:
        table = pq.read_table(path)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow's ArrowInvalid and kin: not a Parquet file
        raise OSError(f"not a Parquet file ({exc})") from None
    if table.num_rows == 0:
        raise EmptyFile(where, None, "the file is empty")
    for i, row in enumerate(table.to_pylist(), 1):
        yield f"row {i}", row


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


def parse_phoenix_file(
    path: str | PathLike[str], *, task_attr: str = A.TASK_ID, agent: str | None = None, redact: bool = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS, progress: Progress | None = None, since: Any = None,
    until: Any = None,
) -> PlatformBatch:
    """A Phoenix spans dataframe (Parquet or JSON lines) or a file of REST spans pages → a batch,
    one run per trace. A malformed span is skipped and named (``row 3: ...``); an unreadable or
    empty file raises InputError naming the file."""
    reader = _parquet_rows if _is_parquet(Path(path)) else read_records
    return parse_file(path, source=SOURCE, unit="span", what="Phoenix spans", to_spans=_spans_of,
                      task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars, progress=progress,
                      since=since, until=until, reader=reader)


# ---------------------------------------------------------------------------------------------
# a server


def _label(endpoint: str, project: str) -> str:
    parts = urllib.parse.urlsplit(endpoint.rstrip("/"))
    netloc = parts.netloc.rsplit("@", 1)[-1]  # a user and password are not shown or stored
    return f"{urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, '', ''))}/projects/{project}"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def server_spans(
    endpoint: str, *, project: str = "default", since: Any = None, page_size: int = 1000,
    api_key: str | None = None, timeout: float = 30.0,
) -> Iterator[dict[str, Any]]:
    """Each span of a project, as ``GET {endpoint}/v1/projects/{project}/spans`` returns them
    (newest first), page by page with its cursor; ``since``: only spans starting then or later
    (the endpoint's ``start_time``). ``api_key`` (default ``PHOENIX_API_KEY``) goes as a bearer
    token. HotmessError when the server cannot be read."""
    key = api_key if api_key is not None else os.environ.get("PHOENIX_API_KEY")
    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    base = f"{endpoint.rstrip('/')}/v1/projects/{urllib.parse.quote(project, safe='')}/spans"
    since_ns = parse_time(since, "since")
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": page_size}
        if since_ns is not None:
            query["start_time"] = _iso(since_ns)
        if cursor:
            query["cursor"] = cursor
        url = f"{base}?{urllib.parse.urlencode(query)}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as reply:
                page = json.load(reply)
        except urllib.error.HTTPError as exc:
            hint = {401: " (set PHOENIX_API_KEY)", 403: " (set PHOENIX_API_KEY)",
                    404: f" (no project {project!r}?)"}.get(exc.code, "")
            raise HotmessError(f"{_label(endpoint, project)}: the Phoenix server answered HTTP {exc.code}{hint}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise HotmessError(f"{_label(endpoint, project)}: cannot read the Phoenix server: {reason}") from None
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise HotmessError(f"{_label(endpoint, project)}: not a Phoenix spans page (no data list)")
        yield from page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return


def read_phoenix_server(
    endpoint: str, *, project: str = "default", since: Any = None, until: Any = None, task_attr: str = A.TASK_ID,
    agent: str | None = None, redact: bool = True, max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    page_size: int = 1000, api_key: str | None = None,
) -> PlatformBatch:
    """Every trace of a Phoenix project whose root starts in ``[since, until)`` → a batch, as for a
    file. ``since`` is sent to the server; ``until`` is applied here (to the root's start, so a
    trace is never cut at the bound). A trace without its root (it started before ``since``) is
    left out (``outside``)."""
    label = _label(endpoint, project)
    batch = PlatformBatch(SOURCE, label, unit="span", is_file=False,
                          since_ns=parse_time(since, "since"), until_ns=parse_time(until, "until"))
    traces: dict[str, dict[str, SpanRecord]] = {}
    for n, span in enumerate(server_spans(endpoint, project=project, since=since, page_size=page_size,
                                          api_key=api_key), 1):
        batch.records += 1
        try:
            rec = span_record(span)
        except BadRecord as exc:
            batch.skip(f"span {n}", str(exc))
            continue
        trace = traces.setdefault(rec.trace_id, {})
        if rec.end_ns is not None or rec.span_id not in trace:
            trace[rec.span_id] = rec
    whole = {}
    for trace_id, trace in traces.items():
        roots = [s for s in trace.values() if s.parent_span_id is None]
        if batch.since_ns is not None and not roots:
            batch.outside += 1
            continue
        for root in roots:
            root.attributes[STORE_ATTR] = label
        whole[trace_id] = trace
    add_traces(batch, whole, task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars)
    return batch


def newest_stored(conn: Any, endpoint: str, project: str = "default") -> datetime | None:
    """When the newest run read from this server's project started (``resume``: the next import
    asks only for spans from then on), less a millisecond; None when none was."""
    return platform_newest_stored(conn, SOURCE, STORE_ATTR, _label(endpoint, project))


def check_endpoint(endpoint: str) -> None:
    """A HotmessError unless ``endpoint`` is an http(s) URL."""
    if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
        raise HotmessError(f"endpoint must be an http:// or https:// URL, not {endpoint!r}")

