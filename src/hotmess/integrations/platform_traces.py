"""What the importers of tracing platforms (MLflow, LangSmith, Langfuse) share.

Each platform's importer turns one of its traces into :class:`~hotmess.vocab.records.SpanRecord`
objects carrying the attributes the OTLP mapping reads (``openinference.span.kind``,
``input.value`` / ``output.value``, ``gen_ai.input.messages`` / ``gen_ai.output.messages``,
``gen_ai.tool.name``, token counts, the ``exception`` event), then hands them to
:func:`add_trace`, which maps them with :func:`hotmess.integrations.otlp_traces.trace_rows`:
the same root, step order, kinds, final answer as outcome, named tool arguments, agent and
task-id rules as ``import otlp``. :func:`insert_batch` stores a batch in one transaction;
a run already stored is left as it is, so importing the same traces twice adds nothing.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotmess.errors import HotmessError, InputError
from hotmess.integrations.otlp_traces import scrub, trace_rows
from hotmess.integrations.otlp_wire import BadRecord, EmptyFile, read_records
from hotmess.progress import Progress
from hotmess.redact import Redactor, make_redactor
from hotmess.store import rows
from hotmess.store.writer import (
    ImportResult,
    import_transaction,
    log_import,
    stored_runs,
    write_rows,
)
from hotmess.vocab import attributes as A
from hotmess.vocab import conventions
from hotmess.vocab.records import SpanRecord

__all__ = [
    "MAX_ERRORS", "PlatformBatch", "add_trace", "add_traces", "check_batch", "exception_of", "insert_batch",
    "SUCCESS_KEYS", "iso_ns", "json_text", "messages_in", "messages_out", "named_task", "newest_stored",
    "parse_file", "parse_time", "require", "success_of", "value_text",
]

#: Errors kept in a batch; the rest are only counted.
MAX_ERRORS = 100


def require(module: str, extra: str) -> Any:
    """``import module``, or a HotmessError naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise HotmessError(
            f"this import needs the {module.split('.')[0]} package: pip install 'hotmess[{extra}]'"
        ) from None


@dataclass
class PlatformBatch:
    """The runs, steps and spans rows read from one platform's traces, with what was skipped.

    ``records`` counts the traces (file records, or traces the platform's API returned) read,
    ``skipped`` the malformed ones (the first :data:`MAX_ERRORS` in ``errors``, each naming
    its record), ``duplicates`` traces read twice (kept once)."""

    source: str
    path: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    spans: list[tuple] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    records: int = 0
    skipped: int = 0
    duplicates: int = 0
    hashed_task_ids: int = 0
    is_file: bool = True
    since_ns: int | None = None  # only traces that start in [since_ns, until_ns)
    until_ns: int | None = None
    outside: int = 0  # traces left out as starting outside those bounds
    unit: str = "trace"  # what one record is: a trace (MLflow), a run (LangSmith), ...
    _seen: set[str] = field(default_factory=set, repr=False)

    def skip(self, record: str | int | None, message: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(InputError(self.path, record, message))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "source": self.source, "records": self.records, "runs": len(self.runs),
                "steps": len(self.steps), "spans": len(self.spans), "skipped": self.skipped,
                "duplicates": self.duplicates, "outside": self.outside, "errors": [str(e) for e in self.errors],
                "hashed_task_ids": self.hashed_task_ids}


def add_trace(
    batch: PlatformBatch, spans: list[SpanRecord], *, task_attr: str, agent: str | None,
    redactor: Redactor | None, max_chars: int, task_id: str | None = None,
) -> None:
    """Map one trace's spans (one run) into the batch. ``task_id``, when the platform's trace
    carries one outside its spans (a tag, metadata), is the run's; else the OTLP rules over the
    spans' attributes (``task_attr``, then the first user message's hash). A trace already in
    the batch is counted in ``duplicates`` and left out; one whose root starts outside
    ``batch.since_ns`` / ``until_ns`` is counted in ``outside`` and left out."""
    trace_id = spans[0].trace_id
    if trace_id in batch._seen:
        batch.duplicates += 1
        return
    batch._seen.add(trace_id)
    if batch.since_ns is not None or batch.until_ns is not None:
        roots = [s.start_ns for s in spans if s.parent_span_id is None] or [s.start_ns for s in spans]
        start = min(roots)
        if (batch.since_ns is not None and start < batch.since_ns) or (
                batch.until_ns is not None and start >= batch.until_ns):
            batch.outside += 1
            return
    if redactor is not None or max_chars > 0:
        scrub(spans, redactor, max_chars, {})
    if task_id is not None:
        task_attr = A.TASK_ID
        for s in spans:
            if s.parent_span_id is None:
                s.attributes[A.TASK_ID] = task_id
    run, steps, hashed, _ = trace_rows(spans, task_attr, agent)
    run["source"] = batch.source
    if run["agent"] is None:
        roots = [s for s in spans if s.parent_span_id is None]
        run["agent"] = roots[0].name if roots else None
    batch.hashed_task_ids += hashed
    batch.runs.append(run)
    batch.steps.extend(steps)
    batch.spans.extend(rows.span_row(s) for s in spans)


def parse_file(
    path: str | os.PathLike[str], *, source: str, unit: str, what: str,
    to_spans: Callable[[Any], list[SpanRecord]], task_attr: str, agent: str | None, redact: bool | Redactor,
    max_chars: int, progress: Progress | None, since: Any, until: Any,
    reader: Callable[[Path, str, Progress | None], Iterable[tuple[str | None, Any]]] = read_records,
) -> PlatformBatch:
    """A file of a platform's records (JSON lines or a list; gzip ok) → a batch, one run per
    trace: ``to_spans(record)`` gives each record's spans (raising BadRecord for a malformed
    one, which is skipped and named); a span repeated keeps its ended copy. An unreadable or
    empty file raises InputError (``what`` names what it should hold). ``reader`` gives the
    file's (label, record) pairs (default: JSON, :func:`~hotmess.integrations.otlp_wire.read_records`;
    it raises EmptyFile, OSError or EOFError for a file it cannot read)."""
    where = str(path)
    batch = PlatformBatch(source, where, unit=unit,
                          since_ns=parse_time(since, "since"), until_ns=parse_time(until, "until"))
    traces: dict[str, dict[str, SpanRecord]] = {}
    try:
        for label, record in reader(Path(path), where, progress):
            batch.records += 1
            try:
                if isinstance(record, BadRecord):
                    raise record
                spans = to_spans(record)
            except BadRecord as exc:
                batch.skip(label, str(exc))
                continue
            for rec in spans:
                trace = traces.setdefault(rec.trace_id, {})
                if rec.end_ns is not None or rec.span_id not in trace:  # an ended copy wins
                    trace[rec.span_id] = rec
    except EmptyFile:
        raise InputError(where, None, f"the file is empty (no {what} in it)") from None
    except (OSError, EOFError) as exc:
        raise InputError(where, None, f"cannot read the file: {getattr(exc, 'strerror', None) or exc}") from None
    add_traces(batch, traces, task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars)
    return batch


def add_traces(
    batch: PlatformBatch, traces: Mapping[str, Mapping[str, SpanRecord]], *, task_attr: str,
    agent: str | None, redact: bool | Redactor, max_chars: int,
) -> None:
    """:func:`add_trace` for each trace (span id → span), its task id from the ``task_attr``
    key of its root's ``metadata`` attribute (a JSON object) when that names one."""
    redactor = make_redactor(redact)
    for trace in traces.values():
        spans = list(trace.values())
        roots = sorted((s for s in spans if s.parent_span_id is None), key=lambda s: s.start_ns)
        task_id = named_task(task_attr, {"metadata": _root_metadata(roots[0])}) if roots else None
        add_trace(batch, spans, task_attr=task_attr, agent=agent, redactor=redactor, max_chars=max_chars,
                  task_id=task_id)


def _root_metadata(root: SpanRecord) -> dict[str, Any]:
    try:
        value = json.loads(root.attributes.get("metadata", "{}"))
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def messages_in(value: Any) -> list[dict[str, Any]] | None:
    """A chat request's messages (``{"messages": [...]}`` or the list itself), else None."""
    node = value.get("messages") if isinstance(value, dict) else value
    if isinstance(node, list) and node and all(isinstance(m, dict) and "role" in m for m in node):
        return node
    return None


def messages_out(value: Any) -> list[dict[str, Any]] | None:
    """A chat reply's messages (an OpenAI-style ``choices`` list, or one assistant message), else None."""
    if isinstance(value, dict) and isinstance(value.get("choices"), list):
        found = [c["message"] for c in value["choices"] if isinstance(c, dict) and isinstance(c.get("message"), dict)]
        return found or None
    if isinstance(value, dict) and value.get("role") == "assistant":
        return [value]
    return None


def named_task(task_attr: str, places: Mapping[str, Mapping[str, Any] | None]) -> str | None:
    """The task id in a trace's own fields (``places``: ``{"tags": {...}, "metadata": {...}}``):
    ``task_attr`` as a key of any of them (``task_id``), or a path into one (``tags.task_id``,
    ``metadata.run.task``). With the default name (``hotmess.task.id``) ``task_id`` is tried too."""
    names = [task_attr, *(("task_id",) if task_attr == A.TASK_ID else ())]
    for name in names:
        head, _, rest = name.partition(".")
        if rest and places.get(head) is not None:
            candidates = [(places[head], rest)]
        else:
            candidates = [(p, name) for p in places.values() if p is not None]
        for place, path in candidates:
            value = conventions.lookup(dict(place), path)
            if value is not None and value != "" and not isinstance(value, (dict, list)):
                return str(value)
    return None


_REPR = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.S)
_TYPED = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)): ?(.*)$", re.S)


def exception_of(error: str) -> tuple[str, str]:
    """(type, message) of a LangSmith error: ``ConnectionError('down')`` (+ traceback) as the
    SDK writes it, or ``ValueError: boom``; anything else is type ``Error``."""
    first = error.strip().split("\n\n", 1)[0].strip()
    found = _REPR.match(first)
    if found:
        kind, args = found.groups()
        try:
            value = ast.literal_eval(args) if args else ""
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = args
        return kind, value if isinstance(value, str) else str(value)
    found = _TYPED.match(first)
    if found:
        return found.group(1), found.group(2)
    return "Error", first.splitlines()[0] if first else "error"


def iso_ns(value: Any, what: str) -> int | None:
    """A record's time in nanoseconds since the epoch: an ISO 8601 text (UTC unless it says
    otherwise), or a number of seconds (or milliseconds); BadRecord when it is neither."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 1e9) if value < 1e12 else int(value * 1e6)  # seconds or milliseconds
    if not isinstance(value, str):
        raise BadRecord(f"{what} is not a time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRecord(f"{what} is not an ISO time: {value[:40]!r}") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def json_text(value: Any) -> str:
    """A value as JSON text (what cannot be JSON as its repr)."""
    return json.dumps(value, ensure_ascii=False, default=repr)


def value_text(value: Any) -> str:
    """An input or output as ``input.value`` / ``output.value`` hold it: a string as it is
    (a final answer stays its text), anything else as JSON."""
    return value if isinstance(value, str) else json_text(value)


def parse_time(value: str | int | float | datetime | None, option: str = "time") -> int | None:
    """A ``--since`` / ``--until`` bound in nanoseconds since the epoch: an ISO 8601 date or
    date-time (UTC unless it says otherwise), or a number of seconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)  # exact to the microsecond (a float timestamp is not)
        return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise HotmessError(f"{option}: not a time: {value!r}")
        return int(value * 1e9)
    text = str(value).strip()
    try:
        return int(float(text) * 1e9)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HotmessError(
            f"{option}: not a time: {text!r} (an ISO date such as 2026-01-31 or 2026-01-31T12:00, "
            "or seconds since the epoch)") from None
    return parse_time(moment, option)


#: The feedback / score names read as a run's success when no ``success_key`` is named, first found wins.
SUCCESS_KEYS = ("hotmess.success", "success", "correctness", "correct", "pass", "passed")

_TRUE, _FALSE = {"true", "yes", "pass", "passed", "correct", "success", "1"}, {"false", "no", "fail", "failed",
                                                                                "incorrect", "failure", "0"}


def success_of(scores: Mapping[str, Any], key: str | None = None) -> bool | None:
    """A run's success from its feedback or scores (name → value): the one named ``key``, else
    the first of :data:`SUCCESS_KEYS`. A boolean as it is; a number is success when ≥ 0.5 (a 0-1
    score, or the mean of several 0/1 ones); ``true`` / ``pass`` / ``correct`` (and their
    opposites) as text; anything else, or no such score, is None (unknown).

    >>> success_of({"correctness": 1.0}), success_of({"pass": "fail"}), success_of({"x": 1}, "y")
    (True, False, None)
    """
    for name in (key,) if key else SUCCESS_KEYS:
        if name not in scores or scores[name] is None:
            continue
        value = scores[name]
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return None if not math.isfinite(value) else value >= 0.5
        text = str(value).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None
    return None


def newest_stored(conn: sqlite3.Connection, source: str, attr: str, value: str) -> datetime | None:
    """``resume``'s high-water mark: when the newest run of ``source`` whose attribute ``attr``
    is ``value`` (the store or server it was read from) started, less a millisecond so none of
    that moment is missed (runs stored already are passed over); None when none was."""
    row = conn.execute(
        "SELECT max(start_ns) FROM runs WHERE source = ? AND json_extract(attributes, ?) = ?",
        (source, f'$."{attr}"', value)).fetchone()
    if row is None or row[0] is None:
        return None
    return datetime.fromtimestamp((row[0] // 1000 - 1000) / 1e6, UTC)


def check_batch(batch: PlatformBatch) -> None:
    """An InputError when the batch holds no run ("nothing to import", quoting the first
    problems): checked before a database is opened, so a failed import creates none."""
    if not batch.runs:
        if batch.skipped:
            first = "; ".join(f"{e.record}: {e.message}" for e in batch.errors[:3])
            raise InputError(batch.path, None, f"nothing to import: {batch.skipped} of {batch.records} "
                             f"{batch.unit}s are malformed (first: {first})")
        if batch.outside:
            raise InputError(batch.path, None, f"nothing to import: all {batch.outside} traces start outside "
                             "--since/--until")
        raise InputError(batch.path, None, "nothing to import: no traces found")


def insert_batch(conn: sqlite3.Connection, batch: PlatformBatch, *, progress: Progress | None = None) -> ImportResult:
    """Store a batch in one transaction: new runs with their steps and spans; runs already
    stored (same run id) are left as they are. A batch with no run raises InputError
    ("nothing to import", quoting the first problems) and writes nothing."""
    check_batch(batch)
    with import_transaction(conn, batch.path):
        existing = stored_runs(conn, [r["run_id"] for r in batch.runs])
        new_runs = [r for r in batch.runs if r["run_id"] not in existing]
        new_ids = {r["run_id"] for r in new_runs}
        new_steps = [s for s in batch.steps if s["run_id"] in new_ids]
        new_spans = [s for s in batch.spans if s[0] in new_ids]
        write_rows(conn, new_runs, new_steps, new_spans, progress=progress)
        if batch.is_file and Path(batch.path).is_file():
            log_import(conn, batch.source, batch.path, len(batch.runs), len(new_runs))
        else:  # a store or server: the digest of the traces read stands for the file's
            digest = hashlib.sha256("\n".join(sorted(r["run_id"] for r in batch.runs)).encode()).hexdigest()
            conn.execute("INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?)",
                         (batch.source, batch.path, digest, time.time_ns(), len(batch.runs), len(new_runs)))
    return ImportResult(batch.path, batch.source, len(batch.runs), len(new_runs), len(new_steps))
