"""OTLP JSON trace files → hotmess runs, steps and spans: ``import otlp`` reads them, then stores them.

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

- Each trace's run and steps are mapped by :func:`hotmess.integrations.otlp_traces.trace_rows`
  (the root, step order and depth, kinds, outcome, agent, task id). Traces with no agent at
  work (:func:`~hotmess.integrations.otlp_traces.is_agent_trace`: no ``hotmess.*``,
  ``gen_ai.*``, ``llm.*`` or ``openinference.*`` attribute, e.g. HTTP or database spans of the
  same service; or only an agent being built) are counted in :attr:`OtlpBatch.ignored_traces`
  and not imported, unless their trace is a run stored by an earlier import (then their spans
  are merged into it, see below).
- A span repeated in the files (same trace and span id, e.g. a collector retry) counts once;
  the last copy wins, except that an ended copy wins over one not ended.
- A trace stored before by an OTLP import that gets new spans is merged with them
  (:func:`insert_otlp`, :mod:`hotmess.store.merge`): the run and steps are mapped again from
  all its spans, exactly as if they had come in one file.

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
error, naming the files. ``hotmess import otlp`` follows ``import tau-bench``: an error is
one line and exit code 1, and the database is left as it was; otherwise it imports what is
good from all its files (one transaction), lists the skipped lines, and exits 0.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from hotmess.errors import InputError
from hotmess.integrations.otlp_traces import (
    DEFAULT_TASK_ATTR,
    SOURCE,
    is_agent_trace,
    scrub,
    trace_rows,
)
from hotmess.integrations.otlp_wire import BadRecord, EmptyFile, file_spans, request_spans
from hotmess.progress import Progress, counted
from hotmess.redact import Redactor, make_redactor
from hotmess.store import rows
from hotmess.store.merge import write_traces
from hotmess.store.writer import ImportResult, import_transaction, log_import, stored_runs
from hotmess.vocab.records import SpanRecord
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

__all__ = [
    "DEFAULT_TASK_ATTR", "MAX_ERRORS", "SOURCE", "OtlpBatch", "OtlpFile", "OtlpImportResult", "insert_otlp",
    "parse_otlp_json", "parse_otlp_requests",
]

#: Errors kept in the batch; the rest are only counted.
MAX_ERRORS = 100


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
# files → traces → runs


def _run(batch: OtlpBatch, spans: list[SpanRecord], task_attr: str, agent: str | None) -> None:
    run, steps, hashed, rootless = trace_rows(spans, task_attr, agent)
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
            for spans in file_spans(file, name, file_progress):
                info.records += 1
                if isinstance(spans, InputError):
                    info.skipped += 1
                    if len(batch.errors) < MAX_ERRORS:
                        batch.errors.append(spans)
                    continue
                info.spans += len(spans)
                for rec in spans:
                    _add_span(traces, rec)
                    if many:
                        info.trace_ids.add(rec.trace_id)
        except EmptyFile:
            if not many:
                raise
            info.empty = True
        batch.records += info.records
        batch.skipped += info.skipped
    if not many:
        batch.files[0].trace_ids = set(traces)
    _map_traces(batch, traces, task_attr, agent, redactor, max_chars, progress)
    if not batch.runs and not batch.unmapped:
        if batch.skipped == 1 and batch.records == 1:
            raise batch.errors[0]
        raise InputError(where, None, _nothing_message(batch, len(traces)))
    return batch  # with no run, but traces that may be stored runs' (insert_otlp decides)


def _add_span(traces: dict[str, dict[str, SpanRecord]], rec: SpanRecord) -> None:
    trace = traces.get(rec.trace_id)
    if trace is None:
        trace = traces[rec.trace_id] = {}
    if rec.end_ns is not None or rec.span_id not in trace:  # an ended copy wins
        trace[rec.span_id] = rec


def _map_traces(
    batch: OtlpBatch, traces: dict[str, dict[str, SpanRecord]], task_attr: str, agent: str | None,
    redactor: Redactor | None, max_chars: int, progress: Progress | None,
) -> None:
    """Each trace's spans made into a run of the batch, or kept aside as no agent's (``unmapped``)."""
    resources: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for trace_id, trace in counted(traces.items(), progress, "traces", len(traces)):
        spans = list(trace.values())
        if not is_agent_trace(spans):
            batch.ignored_traces += 1
            batch.unmapped[trace_id] = spans  # unless a stored run is this trace (insert_otlp)
            continue
        if redactor is not None or max_chars > 0:
            scrub(spans, redactor, max_chars, resources)
        _run(batch, spans, task_attr, agent)


def parse_otlp_requests(
    requests: Iterable[Any],
    *,
    where: str = "OTLP/HTTP request",
    task_attr: str = DEFAULT_TASK_ATTR,
    agent: str | None = None,
    redact: bool | Redactor = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
) -> tuple[OtlpBatch, list[str]]:
    """ExportTraceServiceRequests already decoded to their OTLP/JSON dict form (a request body
    that ``hotmess serve`` received, protobuf through ``MessageToDict``) → the batch
    :func:`parse_otlp_json` makes of a file holding them, mapped the same way; and the spans
    rejected as malformed, each saying what is wrong with it (the others are kept: OTLP's
    partial success). Raises :class:`~hotmess.errors.InputError` when a request is not an OTLP
    trace request at all. A batch may hold nothing (no spans; only traces of no agent, which
    :func:`insert_otlp` merges into their stored runs, if any). Nothing is logged in the
    ``imports`` table for it (the batch has no ``files``)."""
    batch = OtlpBatch(path=where, options=(task_attr, agent, make_redactor(redact), max_chars))
    traces: dict[str, dict[str, SpanRecord]] = {}
    rejected: list[str] = []
    for i, request in enumerate(requests):
        batch.records += 1
        try:
            spans = request_spans(request, rejected)
        except BadRecord as exc:
            raise InputError(where, None if i == 0 else f"request {i}", str(exc)) from None
        for rec in spans:
            _add_span(traces, rec)
    _map_traces(batch, traces, task_attr, agent, batch.options[2], max_chars, None)
    return batch, rejected


def _nothing_message(batch: OtlpBatch, n_traces: int) -> str:
    if batch.skipped:
        first = "; ".join(f"{e.record}: {e.message}" for e in batch.errors[:3])
        rest = "" if batch.skipped == batch.records else ", the others hold no agent trace nor spans of a stored run"
        return f"nothing to import: {batch.skipped} of {batch.records} records are malformed{rest} (first: {first})"
    if n_traces:
        return (
            f"nothing to import: none of its {n_traces} traces has a hotmess.*, gen_ai.*, llm.* or "
            "openinference.* attribute (not an agent's traces), nor is a run stored before"
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

    A trace not stored yet becomes a new run. A trace stored before is merged as
    :mod:`hotmess.store.merge` says: a run of an earlier OTLP import that the batch brings new
    spans to is mapped again from all its spans (the run that importing them from one file
    makes); a trace whose spans are all stored already changes nothing (importing a file twice
    adds nothing); new spans of a run from another source (recorded live, ``trace``;
    ``tau-bench``) are left out and counted (``left_out_spans``), never merged into it.

    Spans of traces with no agent at work (``batch.unmapped``: HTTP or database calls) are merged
    like any others when their trace is a stored run, and counted in ``ignored_traces`` when not.
    A batch with no run none of whose traces is stored raises :class:`~hotmess.errors.InputError`
    naming its files ("nothing to import"), and nothing is written.
    """
    with import_transaction(conn, batch.path):
        stored = stored_runs(conn, [r["run_id"] for r in batch.runs] + list(batch.unmapped))
        if not batch.runs and stored.keys().isdisjoint(batch.unmapped):
            raise InputError(batch.path, None, _nothing_message(batch, len(batch.unmapped)))
        task_attr, agent = batch.options[:2]
        written = write_traces(
            conn, batch.runs, batch.steps, batch.spans, stored=stored, source=SOURCE,
            rebuild=lambda spans: trace_rows(spans, task_attr, agent)[:2],
            more_spans=_late_spans(batch, stored), progress=progress,
        )
        touched = {r["run_id"] for r in batch.runs} | (stored.keys() & batch.unmapped.keys())
        for info in batch.files:  # the import log: one row per file
            mine = touched if len(batch.files) == 1 else touched & info.trace_ids
            log_import(conn, SOURCE, info.path, len(mine), sum(1 for t in mine if t not in stored))
    return OtlpImportResult(
        batch.path, SOURCE, len(touched), written.new, written.steps, len(written.merged), written.left_out_spans,
        written.left_out_runs, sum(1 for t in batch.unmapped if t not in stored),
        tuple(f.to_dict() for f in batch.files),
    )


def _late_spans(batch: OtlpBatch, stored: dict[str, str]) -> dict[str, list[tuple]]:
    """The ``spans`` rows of each stored trace the batch left out as not an agent's (its agent
    spans were in an earlier import), redacted and cut now (only those: most such traces are
    health checks that are never stored)."""
    late: dict[str, list[tuple]] = {}
    _, _, redactor, max_chars = batch.options
    resources: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for trace_id, spans in batch.unmapped.items():
        if trace_id in stored:
            if redactor is not None or max_chars > 0:
                scrub(spans, redactor, max_chars, resources)
            late[trace_id] = [rows.span_row(s) for s in spans]
    return late
