"""OTLP JSON files streamed to runs and steps rows in bounded batches, without a database.

:func:`stream_otlp_json` reads the files a Collector's file exporter writes record by record
(:func:`~hotmess.integrations.otlp_wire.read_records`), buffers each trace's spans by trace
id, and yields the rows of the traces that are complete: the mapping is
:func:`hotmess.integrations.otlp_traces.trace_rows` (with :func:`~.otlp_traces.scrub` and
:func:`~.otlp_traces.is_agent_trace`), the one ``hotmess import otlp`` applies, so a trace
gives the run and steps rows that importing into SQLite gives it. An ended copy of a span
replaces an unended one, as there.

**When a trace is written.** A trace is *closed* once a span of it without a parent (its
root) has ended: the file exporter writes a span when it ends, and a root ends after its
children. Every ``batch_spans`` spans read, the closed traces are mapped and yielded as one
:class:`RowBatch` and forgotten (but their ids); at the end of the files every trace left is
mapped as it is (a trace whose root never came is an ``incomplete`` run, as in SQLite).

**Limits.** Memory holds the spans of the traces still open (a trace whose root is open for
long, or never arrives, stays buffered until the end) plus one id per trace written. A span
that arrives after its trace was written (a child ending after its root, in a later batch) is
not merged into the written run, as the SQLite import's merge would: it is counted
(``late_spans``) and left out. Traces of no agent are skipped (``ignored_traces``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from hotmess.errors import InputError
from hotmess.integrations.otlp_traces import DEFAULT_TASK_ATTR, is_agent_trace, scrub, trace_rows
from hotmess.integrations.otlp_wire import EmptyFile, file_spans
from hotmess.redact import Redactor, make_redactor
from hotmess.vocab.records import SpanRecord
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

__all__ = ["BATCH_SPANS", "OtlpStream", "RowBatch", "stream_otlp_json"]

#: Spans read between two flushes of the closed traces.
BATCH_SPANS = 100_000
#: Errors kept; the rest are only counted.
MAX_ERRORS = 100


@dataclass
class RowBatch:
    """The runs and steps rows (dicts keyed by the runs / steps columns) of closed traces."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OtlpStream:
    """What a stream read: records, spans, skipped records (with the first errors), runs and
    steps yielded, traces of no agent, spans too late for their written trace, runs whose
    root never came, runs with a hashed task id, and the most spans buffered at once."""

    records: int = 0
    spans: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    runs: int = 0
    steps: int = 0
    batches: int = 0
    ignored_traces: int = 0
    late_spans: int = 0
    rootless: int = 0
    hashed_task_ids: int = 0
    max_buffered_spans: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stream_otlp_json(
    paths: str | PathLike[str] | Iterable[str | PathLike[str]],
    stats: OtlpStream,
    *,
    task_attr: str = DEFAULT_TASK_ATTR,
    agent: str | None = None,
    redact: bool | Redactor = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    batch_spans: int = BATCH_SPANS,
) -> Iterator[RowBatch]:
    """The :class:`RowBatch` es of the agent traces in ``paths`` (the module docstring), the
    counts in ``stats`` as it goes. The options are those of
    :func:`hotmess.integrations.otlp_json.parse_otlp_json`.

    Raises :class:`~hotmess.errors.InputError` naming the file when a file cannot be read."""
    if isinstance(paths, str | PathLike):
        paths = [paths]
    files = list(dict.fromkeys(Path(p) for p in paths))
    if not files:
        raise ValueError("no file to import")
    if batch_spans < 1:
        raise ValueError(f"batch_spans must be at least 1, got {batch_spans}")
    redactor = make_redactor(redact)
    traces: dict[str, dict[str, SpanRecord]] = {}
    closed: set[str] = set()
    written: set[str] = set()
    buffered = since_flush = 0

    def flush(trace_ids: Iterable[str]) -> RowBatch:
        nonlocal buffered
        batch = RowBatch()
        resources: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}  # per batch: bounded
        for trace_id in list(trace_ids):
            spans = list(traces.pop(trace_id).values())
            buffered -= len(spans)
            written.add(trace_id)
            if not is_agent_trace(spans):
                stats.ignored_traces += 1
                continue
            if redactor is not None or max_chars > 0:
                scrub(spans, redactor, max_chars, resources)
            run, steps, hashed, rootless = trace_rows(spans, task_attr, agent)
            stats.hashed_task_ids += hashed
            stats.rootless += rootless
            batch.runs.append(run)
            batch.steps.extend(steps)
        stats.runs += len(batch.runs)
        stats.steps += len(batch.steps)
        stats.batches += bool(batch.runs)
        return batch

    for file in files:
        name = str(file)
        try:
            for spans in file_spans(file, name):
                stats.records += 1
                if isinstance(spans, InputError):
                    stats.skipped += 1
                    if len(stats.errors) < MAX_ERRORS:
                        stats.errors.append(str(spans))
                    continue
                for rec in spans:
                    stats.spans += 1
                    if rec.trace_id in written:
                        stats.late_spans += 1
                        continue
                    trace = traces.setdefault(rec.trace_id, {})
                    if rec.end_ns is not None or rec.span_id not in trace:  # an ended copy wins
                        buffered += rec.span_id not in trace
                        trace[rec.span_id] = rec
                    if rec.parent_span_id is None and rec.end_ns is not None:
                        closed.add(rec.trace_id)
                since_flush += len(spans)
                stats.max_buffered_spans = max(stats.max_buffered_spans, buffered)
                if since_flush >= batch_spans and closed:
                    since_flush = 0
                    batch = flush(closed)
                    closed.clear()
                    if batch.runs:
                        yield batch
        except EmptyFile:
            continue
    closed.clear()
    batch = flush(list(traces))
    if batch.runs:
        yield batch
