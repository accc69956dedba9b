"""OTLP JSON trace files → hotmess runs, steps and spans (the parsing half of ``import otlp``).

Formats
-------
- **JSON lines**, as the OpenTelemetry Collector's ``file`` exporter writes them: one
  ``ExportTraceServiceRequest`` per line (``{"resourceSpans": [{"resource": ..., "scopeSpans":
  [{"scope": ..., "spans": [...]}]}]}``). Lines of other signals (``resourceLogs``,
  ``resourceMetrics``) and blank lines are passed over.
- **Whole file**: one such object, or a JSON list of them, pretty-printed or not (a line that
  holds a list is read item by item).
- Either one gzip-compressed (recognised by its magic bytes, not its name).

A file is read line by line; only the spans are kept until the end, because the collector
spreads one trace over many lines. (The whole-file form is, by its nature, parsed at once.)

Values follow the OTLP/JSON encoding: ``traceId`` / ``spanId`` as hex (base64, what
protobuf's ``MessageToJson`` writes, is accepted too: the lengths tell them apart), times as
strings or integers of nanoseconds, ``kind`` and ``status.code`` as integers or enum names
(``SPAN_KIND_CLIENT``, ``STATUS_CODE_ERROR``), attributes as ``[{"key", "value": {"stringValue"
| "intValue" | "doubleValue" | "boolValue" | "arrayValue" | "kvlistValue" | "bytesValue"}}]``.

Mapping
-------
Spans are grouped by trace over all the files of one import (the collector spreads one trace
over many lines, and over two files when it rotates them). **One trace is one run**,
``run_id`` = the trace id, so a trace recorded live by hotmess and the same trace imported
from a collector file are one run, and importing a file twice adds nothing.

- The root: the span carrying ``hotmess.run``; else the span without a parent. With several
  such spans the earliest to start is the root and the others are steps at depth 1, as are
  spans whose parent is missing. When every span has a parent and some parents are missing,
  the root has not arrived (it was still running when the file was written; it comes in a
  later file): the run is ``incomplete`` (no end, outcome or success; the task id from the
  attribute or the first user message if the spans there are have one, else ``""``) and every
  span is a step, until an import brings the root (see :func:`insert_otlp`). Except for an
  agent called from another service (its caller's spans went to that service's collector):
  a span whose parent is missing and that is an agent invocation (``invoke_agent``, or
  OpenInference ``AGENT``) is the root. A trace whose only orphans are other kinds of span
  (a tool call, an LLM call) waits for its root.
- Every other span of the trace is a step: ``step_index`` in start order (a parent before a
  child that starts in the same nanosecond), ``depth`` 1 under the root and one more per level,
  exactly as the live exporter numbers them. Rows come from :mod:`hotmess.store.rows` (the
  live exporter's mapping): the step kind from ``hotmess.step.kind``, else
  ``gen_ai.operation.name`` (chat → llm, execute_tool → tool, invoke_agent → agent), else
  ``openinference.span.kind`` (LLM, TOOL, AGENT, CHAIN, RETRIEVER/EMBEDDING/RERANKER); tool
  names, arguments, results, messages, ``input.value`` / ``output.value``, token counts and
  models from the GenAI and OpenInference attributes.
- The run: :func:`hotmess.store.rows.run_row` of the root, ``source`` ``"otlp"``. For a trace
  that hotmess recorded (its root has ``hotmess.run``) that is all, so it round-trips exactly.
  For other traces the outcome (the agent's final answer; none for a crash), the agent, the
  task id and the tool arguments are read by the rules of :mod:`hotmess.vocab.conventions`;
  ``success`` is ``hotmess.success`` when present, else unknown. ``--agent`` overrides the
  agent of every run.
- Task id: the attribute named by ``task_attr`` (default ``hotmess.task.id``; a dotted name
  reaches into a JSON attribute) on the root, else on the resource, else on any span in start
  order; with the default, also ``metadata.task_id`` and OpenLLMetry's association property.
  Failing that, :func:`~hotmess.vocab.instructions.message_task_id` of the first user message
  (``"msg:"`` + 16 hex digits of its sha256, the LangChain handler's rule): the first ``user``
  message of ``gen_ai.input.messages`` or of OpenInference's ``llm.input_messages.N.message.*``
  on the spans in start order (root first; :func:`~hotmess.vocab.instructions.attributes_user_message`),
  else of a ``gen_ai.user.message`` event, else the root's ``input.value``. So repeats of one
  prompt group into one task. With no user message
  either, ``"span:"`` + the root span's name.
- Traces without a single ``hotmess.*``, ``gen_ai.*``, ``llm.*`` or ``openinference.*``
  attribute (HTTP or database spans of the same service), and traces that only built an agent
  (``create_agent``) without running it, are not agent runs: they are counted
  in :attr:`OtlpBatch.ignored_traces` and not imported, unless their trace is a run stored
  by an earlier import (then their spans are merged into it, see below).
- A span repeated in the files (same trace and span id, e.g. a collector retry) counts once;
  the last copy wins, except that an ended copy wins over one not ended.
- A trace stored before by an OTLP import that gets new spans is merged with them
  (:func:`insert_otlp`): the run and steps are mapped again from all its spans, exactly as if
  they had come in one file.

Errors
------
Each line (JSON lines) or list item (whole file) is checked as a unit: one that is not JSON,
not an object, or holds a span with a missing or malformed ``traceId`` / ``spanId``, a
mistyped field or an integer beyond 64 bits is skipped whole and recorded as an
:class:`~hotmess.errors.InputError` naming the file and the line (``line 7``) or item
(``item 3``) and where in it (``resourceSpans[0].scopeSpans[0].spans[2]: missing traceId``);
every other line is kept. A trace cut by a skipped line is imported with the spans that
remain. :func:`parse_otlp_json` raises only when nothing can be imported: an unreadable,
empty or non-JSON file, a pretty-printed whole file that does not parse, or no span in any good
line (the error then quotes the first problems); with several files, when any one cannot be
read or parsed at all (an empty one among them is passed over). Files with spans but no agent
trace are decided by :func:`insert_otlp`: their spans are merged into the stored runs of their
traces, and when no trace of theirs is a stored run it raises the same "nothing to import"
error, naming the files. ``hotmess import otlp`` follows ``import tau-bench``: an error is one line and exit code 1, and the database is
not touched; otherwise it imports what is good from all its files (one transaction), lists the
skipped lines, and exits 0.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from hotmess.errors import InputError
from hotmess.integrations.otlp_wire import BadRecord, EmptyFile, read_records, request_spans
from hotmess.progress import Progress, counted
from hotmess.redact import Redactor, make_redactor
from hotmess.store import rows
from hotmess.store.rows import SPAN_END, SPAN_ID, step_kind
from hotmess.store.writer import (
    ImportResult,
    delete_runs,
    import_transaction,
    log_import,
    stored_runs,
    stored_spans,
    write_rows,
)
from hotmess.vocab import attributes as A
from hotmess.vocab import conventions
from hotmess.vocab.instructions import attributes_user_message, message_task_id
from hotmess.vocab.records import SpanRecord
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

__all__ = [
    "DEFAULT_TASK_ATTR", "MAX_ERRORS", "SOURCE", "OtlpBatch", "OtlpFile", "OtlpImportResult", "insert_otlp",
    "parse_otlp_json",
]

SOURCE = "otlp"
DEFAULT_TASK_ATTR = A.TASK_ID
#: Errors kept in the batch; the rest are only counted.
MAX_ERRORS = 100

_AGENT_PREFIXES = ("hotmess.", "gen_ai.", "llm.", "openinference.")


@dataclass
class OtlpFile:
    """What one file of an import held: records (non-blank lines or list items) read, spans
    read from them, records skipped as malformed, and the traces its spans belong to."""

    path: str
    records: int = 0
    spans: int = 0
    skipped: int = 0
    empty: bool = False
    trace_ids: set[str] = field(default_factory=set, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "records": self.records, "spans": self.spans, "skipped": self.skipped,
                "traces": len(self.trace_ids), "empty": self.empty}


@dataclass
class OtlpBatch:
    """Everything parsed from the files of one import, ready for :func:`insert_otlp` (or
    :func:`hotmess.store.writer.insert_runs`, which never touches a run already stored).

    ``runs`` / ``steps`` are row dicts keyed by the runs and steps columns (steps grouped by
    run, in step order); ``spans`` are rows of the lossless ``spans`` table. ``errors`` holds
    the first :data:`MAX_ERRORS` skipped lines' errors (each naming its file), ``skipped``
    counts them all; ``files`` has the same counts per file. ``path`` is the file, or the
    files joined by ``", "``.
    """

    path: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    spans: list[tuple] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    skipped: int = 0
    records: int = 0  # non-blank lines (or list items) read, good or bad
    ignored_traces: int = 0
    hashed_task_ids: int = 0  # runs whose task id is the hash of their first user message
    rootless: int = 0  # runs whose root span is in none of the files: incomplete for now
    files: list[OtlpFile] = field(default_factory=list)
    # for insert_otlp: the traces left out as not an agent's (they may belong to a stored run),
    # and how to map a trace again (task_attr, agent, redactor, max_chars)
    unmapped: dict[str, list[SpanRecord]] = field(default_factory=dict, repr=False)
    options: tuple = field(default=(DEFAULT_TASK_ATTR, None, None, 0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "runs": len(self.runs), "steps": len(self.steps),
            "spans": len(self.spans), "records": self.records, "skipped": self.skipped,
            "errors": [str(e) for e in self.errors], "ignored_traces": self.ignored_traces,
            "hashed_task_ids": self.hashed_task_ids, "rootless": self.rootless,
            "files": [f.to_dict() for f in self.files],
        }


# ---------------------------------------------------------------------------------------------
# traces → runs


def _is_agent_trace(spans: list[SpanRecord]) -> bool:
    """Whether a trace records an agent at work: some span has an agent attribute, and it is
    more than the agent being built (OpenLLMetry traces each ``create_agent`` call on its own)."""
    if all(rec.attributes.get(A.OPERATION) == "create_agent" for rec in spans):
        return False
    return any(k.startswith(_AGENT_PREFIXES) for rec in spans for k in rec.attributes)


def _root(spans: list[SpanRecord], ids: set[str]) -> SpanRecord | None:
    """The run's root span; None when it has not arrived (every span has a parent, and some
    parents are in none of the files read: the root was still running when they were written)."""
    marked = [s for s in spans if s.attributes.get(A.RUN)]
    if not marked:
        marked = [s for s in spans if s.parent_span_id is None]
    if not marked:
        orphans = [s for s in spans if s.parent_span_id not in ids]
        if not orphans:
            marked = spans  # every span has a parent in the trace: a cycle; take the earliest
        else:
            # An agent called from another service: its parent is the caller's span, which
            # went to that service's collector. A child that lost its parent is no agent (a
            # hotmess step, kind "agent" or not, never roots a run: hotmess marks its roots).
            marked = [
                s for s in orphans
                if A.STEP_KIND not in s.attributes and step_kind(s.attributes) == "agent"
            ]
            if not marked:
                return None
    return min(marked, key=lambda s: s.start_ns)


def _depths(spans: list[SpanRecord], root: SpanRecord | None) -> dict[str, int]:
    """Depth of each span: 0 for the root, 1 under it (or with a missing parent), +1 per level."""
    parent_of = {s.span_id: s.parent_span_id for s in spans}
    depth: dict[str, int] = {} if root is None else {root.span_id: 0}
    for s in spans:
        chain: list[str] = []
        node: str | None = s.span_id
        while node is not None and node not in depth:
            if node in chain or node not in parent_of:  # a cycle, or above the spans we have
                break
            chain.append(node)
            node = parent_of[node]
        base = depth.get(node, 0) if node is not None else 0
        for i, span_id in enumerate(reversed(chain)):
            depth[span_id] = base + i + 1
    return depth


def _first_user_message(root: SpanRecord | None, ordered: list[SpanRecord]) -> str | None:
    """The trace's first user message: in the spans' attributes (root first, then in start
    order; :func:`~hotmess.vocab.instructions.attributes_user_message`), else in a
    ``gen_ai.user.message`` event, else the root's ``input.value``."""
    everyone = ordered if root is None else (root, *ordered)
    for rec in everyone:
        text = attributes_user_message(rec.attributes)
        if text:
            return text
    for rec in everyone:
        for event in rec.events:
            if event["name"] == "gen_ai.user.message":
                content = event["attributes"].get("content")
                if isinstance(content, str) and content:
                    return content
    value = None if root is None else root.attributes.get("input.value")
    return value if isinstance(value, str) and value else None


def _task_id(
    root: SpanRecord | None, ordered: list[SpanRecord], task_attr: str
) -> tuple[str, bool]:
    """The run's task id, and whether it is the hash of the first user message. Without the
    root (not arrived yet) the same search over the spans there are, and failing it ``""``
    (unknown, as for a live run without one) rather than a step's name."""
    top = ordered[0] if root is None else root
    first = () if root is None else (root.attributes,)
    # the named attribute (a dotted path reaches into JSON objects), then with the default the
    # places instrumentors keep a task id the user set in the run's metadata
    names = (task_attr, *conventions.METADATA_TASK_KEYS) if task_attr == A.TASK_ID else (task_attr,)
    for name in names:
        for attrs in (*first, top.resource, *(s.attributes for s in ordered)):
            value = conventions.lookup(attrs, name)
            if value is not None and value != "" and not isinstance(value, (dict, list)):
                return str(value), False
    text = _first_user_message(root, ordered)
    if text is not None:
        return message_task_id(text), True
    return ("" if root is None else "span:" + root.name), False


def _agent(root: SpanRecord | None, ordered: list[SpanRecord]) -> str | None:
    name = conventions.agent_name(
        None if root is None else root.attributes, (s.attributes for s in ordered),
        None if root is None else root.name,
    )
    if name:
        return name
    name = (ordered[0] if root is None else root).resource.get("service.name")
    return None if name is None else str(name)


def _outcome(root: SpanRecord, steps: list[dict[str, Any]]) -> Any:
    """The run's outcome: ``hotmess.outcome``, else the final answer as the conventions give it."""
    if root.attributes.get(A.OUTCOME) is not None:
        return rows._text(root.attributes[A.OUTCOME])
    finals = sorted((s for s in steps if s["kind"] == "llm" and s["output"] is not None),
                    key=lambda s: (s["end_ns"] or 0, s["step_index"]), reverse=True)
    outcome = conventions.run_outcome(root.attributes, root.status_code == "ERROR", (s["output"] for s in finals))
    return rows._text(outcome)


_COUNTED = ("n_steps", "n_tool_calls", "n_llm_calls", "n_errors", "input_tokens", "output_tokens")


def _counts(steps: list[dict[str, Any]]) -> dict[str, int]:
    """The per-run counts, as :data:`hotmess.store.rows.RUN_COUNTS` computes them in SQL."""
    n_steps = n_tools = n_llm = n_errors = tokens_in = tokens_out = 0
    for s in steps:
        kind = s["kind"]
        if kind not in rows.UNCOUNTED_KINDS:
            n_steps += 1
        if kind == "tool":
            n_tools += 1
        elif kind == "llm":
            n_llm += 1
        if s["error"] is not None:
            n_errors += 1
        tokens_in += s["input_tokens"]
        tokens_out += s["output_tokens"]
    return dict(zip(_COUNTED, (n_steps, n_tools, n_llm, n_errors, tokens_in, tokens_out), strict=True))


def _scrub(
    spans: list[SpanRecord], redactor: Redactor | None, max_chars: int,
    resources: dict[int, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """Redact and cut, as the live exporter does; each resource (shared by all the spans of
    a resourceSpans entry) once, not once per span."""
    for s in spans:
        resource = s.resource
        s.resource = {}
        s.redacted(redactor, max_chars)
        seen = resources.get(id(resource))
        if seen is None:  # the original is kept in the value, so its id is never reused
            clean = SpanRecord("", "", None, "", resource=resource).redacted(redactor, max_chars).resource
            seen = resources[id(resource)] = (resource, clean)
        s.resource = seen[1]


def _build(
    spans: list[SpanRecord], task_attr: str, agent: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]], bool, bool]:
    """One trace's run and steps rows; whether its task id is a hash of the first user
    message; whether its root is missing. Without a root span (not arrived yet) every span is
    a step and the run is ``incomplete``, as a run recorded live is until its root ends."""
    ids = {s.span_id for s in spans}
    root = _root(spans, ids)
    depth = _depths(spans, root)
    # start order, a parent before a child started in the same nanosecond (sort is stable)
    ordered = sorted((s for s in spans if s is not root), key=lambda s: (s.start_ns, depth[s.span_id]))
    run_id = spans[0].trace_id
    steps = [rows.step_row(s, run_id, i, depth[s.span_id]) for i, s in enumerate(ordered)]
    conventions.name_tool_arguments(steps, [conventions.tool_call_id(s.attributes) for s in ordered])
    task_id, hashed = _task_id(root, ordered, task_attr)
    if root is None:
        run = dict.fromkeys(rows.RUN_FIELDS)
        run.update(run_id=run_id, task_id=task_id, agent=_agent(None, ordered), source=SOURCE,
                   status="incomplete", start_ns=ordered[0].start_ns)
    else:
        run = rows.run_row(root, task_id=task_id, source=SOURCE)
        if not root.attributes.get(A.RUN):  # not recorded by hotmess: read the other conventions
            run["outcome"] = _outcome(root, steps)
            run["agent"] = _agent(root, ordered)
    if agent is not None:
        run["agent"] = agent
    run.update(_counts(steps))
    return run, steps, hashed, root is None


def _run(batch: OtlpBatch, spans: list[SpanRecord], task_attr: str, agent: str | None) -> None:
    run, steps, hashed, rootless = _build(spans, task_attr, agent)
    batch.hashed_task_ids += hashed
    batch.rootless += rootless
    batch.runs.append(run)
    batch.steps.extend(steps)
    batch.spans.extend(rows.span_row(s) for s in spans)


def parse_otlp_json(
    paths: str | PathLike[str] | Iterable[str | PathLike[str]],
    *,
    task_attr: str = DEFAULT_TASK_ATTR,
    agent: str | None = None,
    redact: bool | Redactor = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    progress: Progress | None = None,
) -> OtlpBatch:
    """Read OTLP JSON trace files (JSON lines or whole file, optionally gzipped): one path, or
    several (a collector's rotated files), whose spans are grouped by trace over all of them
    before runs are made, so a trace cut between two files is one run.

    Returns the runs, steps and spans rows of their agent traces, with the lines that were
    skipped and why (per file in ``files``). ``redact`` and ``max_chars`` as in
    :func:`hotmess.configure` (``max_attribute_chars``): by default secrets (API keys, tokens,
    passwords) are replaced and texts longer than 8192 characters are cut (marked, and named in
    ``hotmess.truncated``) before anything is stored, as on the live path; ``max_chars=0`` keeps
    them whole. ``progress`` (:mod:`hotmess.progress`) is told the bytes read (of all the files),
    then the traces made into runs. Store the batch with :func:`insert_otlp`, which also merges
    traces already stored by an earlier import.

    Raises :class:`~hotmess.errors.InputError` naming the file when nothing can be imported
    (unreadable, empty, not JSON, no span) or when one of several files cannot be read at all
    (an empty one among several is passed over); see the module docstring for the mapping and
    the error rules. Spans of no agent trace are kept (``unmapped``) for :func:`insert_otlp`:
    they may belong to a run stored by an earlier import, so a batch may hold no run.
    """
    if isinstance(paths, str | PathLike):
        paths = [paths]
    files: dict[Path, str] = {}
    for path in paths:  # a file named twice (a glob and its name) is read once
        files.setdefault(Path(path), str(path))
    if not files:
        raise ValueError("no file to import")
    if agent is not None and (not isinstance(agent, str) or not agent.strip()):
        raise ValueError(f"agent must be a non-empty string, got {agent!r}")
    with _no_gc():
        return _parse(files, task_attr, agent, make_redactor(redact), max_chars, progress)


@contextlib.contextmanager
def _no_gc():
    """The cyclic garbage collector off while parsing: the parse makes millions of small
    acyclic dicts and lists, and the collections they set off took ~30% of its time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _bytes_of_all(progress: Progress | None, files: dict[Path, str]) -> Iterator[Progress | None]:
    """For each file, the progress callback that reports its bytes as a part of all the files'."""
    if progress is None or len(files) == 1:
        yield from (progress for _ in files)
        return
    sizes = []
    for file in files:
        try:
            sizes.append(os.path.getsize(file))
        except OSError:
            sizes.append(0)
    total, offset = sum(sizes), 0
    for size in sizes:
        yield lambda unit, done, _total, offset=offset: progress(unit, offset + done, total)
        offset += size


def _parse(
    files: dict[Path, str], task_attr: str, agent: str | None, redactor: Redactor | None, max_chars: int,
    progress: Progress | None = None,
) -> OtlpBatch:
    where = ", ".join(files.values())
    batch = OtlpBatch(path=where, options=(task_attr, agent, redactor, max_chars))
    traces: dict[str, dict[str, SpanRecord]] = {}
    many = len(files) > 1
    for (file, name), file_progress in zip(files.items(), _bytes_of_all(progress, files), strict=True):
        info = OtlpFile(name)
        batch.files.append(info)
        try:
            for label, record in read_records(file, name, file_progress):
                info.records += 1
                try:
                    if isinstance(record, BadRecord):
                        raise record
                    spans = request_spans(record)
                except BadRecord as exc:
                    info.skipped += 1
                    if len(batch.errors) < MAX_ERRORS:
                        batch.errors.append(InputError(name, label, str(exc)))
                    continue
                info.spans += len(spans)
                for rec in spans:
                    trace = traces.get(rec.trace_id)
                    if trace is None:
                        trace = traces[rec.trace_id] = {}
                    if rec.end_ns is not None or rec.span_id not in trace:  # an ended copy wins
                        trace[rec.span_id] = rec
                    if many:
                        info.trace_ids.add(rec.trace_id)
        except EmptyFile:
            if not many:
                raise
            info.empty = True
        except OSError as exc:  # unreadable, or a gzip stream cut short
            raise InputError(name, None, f"cannot read the file: {exc.strerror or exc}") from None
        except EOFError as exc:
            raise InputError(name, None, f"cannot read the file: {exc}") from None
        batch.records += info.records
        batch.skipped += info.skipped
    if not many:
        batch.files[0].trace_ids = set(traces)
    resources: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for trace_id, trace in counted(traces.items(), progress, "traces", len(traces)):
        spans = list(trace.values())
        if not _is_agent_trace(spans):
            batch.ignored_traces += 1
            batch.unmapped[trace_id] = spans  # unless a stored run is this trace (insert_otlp)
            continue
        if redactor is not None or max_chars > 0:
            _scrub(spans, redactor, max_chars, resources)
        _run(batch, spans, task_attr, agent)
    if not batch.runs and not batch.unmapped:
        if batch.skipped == 1 and batch.records == 1:
            raise batch.errors[0]
        raise InputError(where, None, _nothing_message(batch, len(traces)))
    return batch  # with no run, but traces that may be stored runs' (insert_otlp decides)


def _nothing_message(batch: OtlpBatch, n_traces: int) -> str:
    if batch.skipped:
        first = "; ".join(f"{e.record}: {e.message}" for e in batch.errors[:3])
        rest = "" if batch.skipped == batch.records else ", the others hold no agent trace"
        return f"nothing to import: {batch.skipped} of {batch.records} records are malformed{rest} (first: {first})"
    if n_traces:
        return (
            f"nothing to import: none of its {n_traces} traces has a hotmess.*, gen_ai.*, llm.* or "
            "openinference.* attribute (not an agent's traces)"
        )
    return "nothing to import: no spans in the file"


# ---------------------------------------------------------------------------------------------
# storing: new runs, and runs stored before merged with their new spans


@dataclass(frozen=True)
class OtlpImportResult(ImportResult):
    """:class:`~hotmess.store.writer.ImportResult` of an OTLP import, plus: ``merged`` runs
    already stored that new spans added to (rebuilt and replaced); spans ``left_out`` because
    their trace is a run from another source (``left_out_runs``: source → runs), which an OTLP
    import never rewrites; ``ignored_traces`` without agent spans that are no stored run either;
    per file in ``files``."""

    left_out_spans: int = 0
    left_out_runs: dict[str, int] = field(default_factory=dict)
    ignored_traces: int = 0
    files: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "merged": self.merged,
                "left_out": {"spans": self.left_out_spans, "runs": dict(self.left_out_runs)}}


def insert_otlp(
    conn: sqlite3.Connection, batch: OtlpBatch, *, progress: Progress | None = None,
) -> OtlpImportResult:
    """Store a batch in one transaction (an error anywhere leaves the database as it was).

    A trace not stored yet becomes a new run. A trace stored before by an OTLP import (source
    ``otlp``) that the batch brings new spans to (span ids not stored, or the ended copy of a
    span stored unended) is merged: its stored spans are read back from the ``spans`` table,
    combined with the new ones (a span stored before keeps its stored copy), mapped again as one
    trace, and its run, steps and spans rows replaced; the result is the run that importing all
    its spans from one file makes. A trace whose spans are all stored already is a duplicate
    and changes nothing (importing a file twice adds nothing). Spans of a trace stored as a run
    from another source (recorded live, ``trace``; ``tau-bench``) are never merged into it:
    the new ones are left out and counted (``left_out_spans``). A run of another source also
    is left alone when an OTLP run has no spans stored (nothing to merge with).

    Spans of traces with no agent at work (``batch.unmapped``: HTTP or database calls) are merged
    like any others when their trace is a stored run, and counted in ``ignored_traces`` when not.
    A batch with no run none of whose traces is stored raises :class:`~hotmess.errors.InputError`
    naming its files ("nothing to import"), and nothing is written.
    """
    with import_transaction(conn, batch.path):
        return _store(conn, batch, progress)


def _store(conn: sqlite3.Connection, batch: OtlpBatch, progress: Progress | None) -> OtlpImportResult:
    runs, steps, spans = batch.runs, batch.steps, batch.spans
    ids = [r["run_id"] for r in runs]
    stored = stored_runs(conn, ids + list(batch.unmapped))
    if not runs and stored.keys().isdisjoint(batch.unmapped):
        raise InputError(batch.path, None, _nothing_message(batch, len(batch.unmapped)))
    ignored = sum(1 for t in batch.unmapped if t not in stored)
    touched = {r["run_id"] for r in runs} | (stored.keys() & batch.unmapped.keys())
    merged: list[str] = []
    left_out_spans, left_out_runs = 0, Counter[str]()
    if stored:
        rebuilt_runs, rebuilt_steps, rebuilt_spans = [], [], []
        incoming = _incoming_spans(batch, stored)
        existing = stored_spans(conn, list(stored))
        task_attr, agent = batch.options[:2]
        for trace_id, source in stored.items():
            old = {row[SPAN_ID]: row for row in existing[trace_id]}
            fresh = [row for row in incoming[trace_id]
                     if (o := old.get(row[SPAN_ID])) is None or (o[SPAN_END] is None and row[SPAN_END] is not None)]
            if not fresh:
                continue  # a duplicate: every span is stored already
            if source != SOURCE or not old:
                left_out_spans += len(fresh)
                left_out_runs[source] += 1
                continue
            old.update((row[SPAN_ID], row) for row in fresh)
            run, run_steps, _, _ = _build([rows.record_from_row(r) for r in old.values()], task_attr, agent)
            rebuilt_runs.append(run)
            rebuilt_steps.extend(run_steps)
            rebuilt_spans.extend(sorted(old.values(), key=lambda r: r[SPAN_ID]))
            merged.append(trace_id)
        runs = [r for r in runs if r["run_id"] not in stored] + rebuilt_runs
        steps = [s for s in steps if s["run_id"] not in stored] + rebuilt_steps
        spans = [s for s in spans if s[0] not in stored] + rebuilt_spans
        delete_runs(conn, merged)
    write_rows(conn, runs, steps, spans, progress=progress)
    new = len(runs) - len(merged)
    for info in batch.files:  # the import log: one row per file
        mine = touched if len(batch.files) == 1 else touched & info.trace_ids
        log_import(conn, SOURCE, info.path, len(mine), sum(1 for t in mine if t not in stored))
    return OtlpImportResult(
        batch.path, SOURCE, len(touched), new, len(steps), len(merged), left_out_spans, dict(left_out_runs),
        ignored, tuple(f.to_dict() for f in batch.files),
    )


def _incoming_spans(batch: OtlpBatch, stored: dict[str, str]) -> dict[str, list[tuple]]:
    """The batch's ``spans`` rows of each stored trace; for a trace the batch left out as not an
    agent's (its agent spans were in an earlier import) its spans redacted and cut now."""
    incoming: dict[str, list[tuple]] = {t: [] for t in stored}
    for row in batch.spans:
        if row[0] in incoming:
            incoming[row[0]].append(row)
    _, _, redactor, max_chars = batch.options
    resources: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for trace_id, spans in batch.unmapped.items():
        if trace_id in incoming:
            if redactor is not None or max_chars > 0:
                _scrub(spans, redactor, max_chars, resources)
            incoming[trace_id].extend(rows.span_row(s) for s in spans)
    return incoming
