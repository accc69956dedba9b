"""The span exporter that writes finished spans (and started runs) into SQLite.

It runs in the span processor's background thread, one transaction per batch: the agent's
thread never waits on SQLite.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from itertools import chain

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hotmess.redact import Redactor
from hotmess.store import rows
from hotmess.store.database import connect, transaction
from hotmess.store.rows import SpanRecord
from hotmess.tracer import attributes as A
from hotmess.tracer.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

logger = logging.getLogger("hotmess")

_CHUNK_SIZES = (1024, 256, 64, 16, 4, 1)  # rows per INSERT, largest first


def span_record(span: ReadableSpan, *, with_resource: bool = True) -> SpanRecord:
    """A plain copy of an SDK span (hex ids, dict attributes); its resource left empty
    without ``with_resource`` (the exporter stores the resource it already encoded)."""
    ctx = span.context
    parent = span.parent
    return SpanRecord(
        trace_id=format(ctx.trace_id, "032x"),
        span_id=format(ctx.span_id, "016x"),
        parent_span_id=format(parent.span_id, "016x") if parent is not None else None,
        name=span.name,
        kind=span.kind.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time,
        status_code=span.status.status_code.name,
        status_message=span.status.description,
        attributes=dict(span.attributes or {}),
        events=[
            {"name": e.name, "timestamp": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
        links=[
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
                "attributes": dict(link.attributes or {}),
            }
            for link in span.links
        ],
        resource=dict(span.resource.attributes) if with_resource and span.resource is not None else {},
        scope=span.instrumentation_scope.name if span.instrumentation_scope else None,
    )


def _insert_many(conn: sqlite3.Connection, sql: str, rows_: Sequence[tuple]) -> None:
    """``conn.executemany(sql, rows_)`` as multi-row ``INSERT ... VALUES (...), (...)``.

    The sqlite3 module releases the GIL around every statement step, and executemany steps once
    per row. While the agent's thread runs Python flat out, each time the writer takes the GIL
    back it waits up to the switch interval (5 ms): row by row, a batch took tens of seconds and
    a busy agent's spans were not stored for as long (bench/durability_kill.py --sleep 0).
    Chunks of a few fixed sizes keep the statements few per batch and in the statement cache.
    Rows apply in order, as executemany's do.
    """
    if not rows_:
        return
    head, rest = sql.split(" VALUES ", 1)
    placeholders, tail = rest[: rest.index(")") + 1], rest[rest.index(")") + 1 :]
    width = placeholders.count("?")
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    lo = 0
    for size in _CHUNK_SIZES:
        if size * width > limit:
            continue
        statement = None
        while len(rows_) - lo >= size:
            if statement is None:
                statement = f"{head} VALUES {', '.join([placeholders] * size)}{tail}"
            conn.execute(statement, list(chain.from_iterable(rows_[lo : lo + size])))
            lo += size


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _utf8_safe(value: object) -> object:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class SQLiteSpanExporter(SpanExporter):
    """Writes hotmess runs, their steps and every span losslessly into a SQLite file.

    ``write(started, ended)`` is what :class:`hotmess.tracer.processor.RunSpanProcessor`
    calls: ``started`` are run roots that have begun (stored as ``incomplete`` until they
    end), ``ended`` are (span, step_index, depth) triples. ``export`` makes it usable
    behind any SDK span processor too.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        redactor: Redactor | None = None,
        max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    ):
        self.path = str(path)
        self._redactor = redactor
        self._max_chars = max_chars
        self._conn: sqlite3.Connection | None = None
        self._file_id: tuple[int, int] | None = None
        self._lock = threading.Lock()
        # id(resource) -> (resource, its scrubbed JSON): every span of a provider shares one
        # Resource, so it is redacted and encoded once rather than once per span.
        self._resources: dict[int, tuple[Resource | None, str]] = {}

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._file_id != _file_id(self.path):
            # Deleted or replaced under us: SQLite would go on writing to the unlinked inode
            # and every later run would vanish with it. Start a new file at the same path.
            logger.warning(
                "hotmess: %s was deleted or replaced while recording; writing to a new database "
                "there (runs written before are not in it)", self.path,
            )
            self._conn.close()
            self._conn = None
        if self._conn is None:
            self._conn = connect(self.path)
            self._file_id = _file_id(self.path)
        return self._conn

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self.write([], [(s, -1, -1) for s in spans])
        except sqlite3.Error:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def write(
        self,
        started: Sequence[SpanRecord],
        ended: Sequence[tuple[ReadableSpan, int, int]],
    ) -> None:
        span_rows, run_rows, start_rows, start_span_rows, step_rows = [], [], [], [], []
        touched: set[str] = set()
        for rec in started:
            rec = rec.redacted(self._redactor, self._max_chars)
            start_span_rows.append(rows.span_row(rec))
            start_rows.append(rows.values(rows.run_row(rec), rows.RUN_FIELDS))
            # its steps may have been written in an earlier batch, before the run row existed
            touched.add(rec.trace_id)
        for span, index, depth in ended:
            rec = span_record(span, with_resource=False).redacted(self._redactor, self._max_chars)
            span_rows.append(rows.span_row(rec, resource_json=self._resource_json(span.resource)))
            if rec.attributes.get(A.RUN):
                run_rows.append(rows.values(rows.run_row(rec), rows.RUN_FIELDS))
            else:
                step_rows.append(rows.values(rows.step_row(rec, rec.trace_id, index, depth), rows.STEP_FIELDS))
            touched.add(rec.trace_id)
        batch = (start_rows, span_rows, start_span_rows, step_rows, run_rows, [(t,) for t in touched])
        with self._lock:
            conn = self._connection()
            try:
                self._insert(conn, *batch)
            except UnicodeEncodeError:
                # A lone surrogate (os.fsdecode of an odd file name, say) cannot be stored as
                # UTF-8; escape it rather than lose the whole batch, other runs' spans included.
                self._insert(conn, *([tuple(map(_utf8_safe, row)) for row in part] for part in batch))

    def _resource_json(self, resource: Resource | None) -> str:
        cached = self._resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            attrs = dict(resource.attributes) if resource is not None else {}
            probe = SpanRecord(trace_id="", span_id="", parent_span_id=None, name="", resource=attrs)
            cached = (resource, rows._json(probe.redacted(self._redactor, self._max_chars).resource))
            if len(self._resources) >= 64:  # providers come and go in tests; keep it bounded
                self._resources.clear()
            self._resources[id(resource)] = cached
        return cached[1]

    @staticmethod
    def _insert(conn: sqlite3.Connection, start_rows, span_rows, start_span_rows, step_rows, run_rows, touched) -> None:
        with transaction(conn):
            _insert_many(conn, rows.RUN_START, start_rows)
            _insert_many(conn, rows.SPAN_INSERT, span_rows)
            # after the ended spans: a start never replaces its own span's end
            _insert_many(conn, rows.SPAN_START, start_span_rows)
            _insert_many(conn, rows.STEP_INSERT, step_rows)
            _insert_many(conn, rows.RUN_UPSERT, run_rows)
            if touched:
                conn.execute(rows.RUN_COUNTS_MANY, (json.dumps([t for (t,) in touched]),))

    def shutdown(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._file_id = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
