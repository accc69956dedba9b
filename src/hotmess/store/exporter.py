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
import weakref
from collections.abc import Sequence
from itertools import chain
from typing import NamedTuple

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hotmess.redact import Redactor
from hotmess.store import rows
from hotmess.store.database import connect, transaction
from hotmess.vocab import attributes as A
from hotmess.vocab.records import SpanRecord, record_from_span
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS, as_text, storable_attributes

logger = logging.getLogger("hotmess")

_CHUNK_SIZES = (1024, 256, 64, 16, 4, 1)  # rows per INSERT, largest first
#: Connections a forked child inherited: never used, never closed (see after_fork_in_child).
_INHERITED_CONNECTIONS: list[sqlite3.Connection] = []


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


class _Unit(NamedTuple):
    """The rows of one span: what is stored, or left out, together."""

    trace_id: str
    name: str
    rows: tuple[tuple[str, tuple], ...]


# The statements of a batch in the order they apply: a run's start never replaces its end
# (RUN_START and SPAN_START are INSERT OR IGNORE, the ends INSERT OR REPLACE / upserts).
_ORDER = (rows.RUN_START, rows.SPAN_INSERT, rows.SPAN_START, rows.STEP_INSERT, rows.RUN_UPSERT)


def _span_name(span: object) -> object:
    try:
        return span.name  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return "?"


def _quoted(name: object) -> str:
    """A span's name for a log line: as text, short (it is not redacted yet)."""
    text = as_text(name)
    return repr(text if len(text) <= 60 else text[:57] + "...")


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
        self._pid = os.getpid()
        # A fork waits for the write in progress: a thread inside SQLite at the fork may hold
        # SQLite's own mutexes, which the child would then wait on forever.
        ref = weakref.ref(self)
        os.register_at_fork(
            before=lambda: (e := ref()) is not None and e._lock.acquire(),
            after_in_parent=lambda: (e := ref()) is not None and e._lock.release(),
            after_in_child=lambda: (e := ref()) is not None and e.after_fork_in_child(),
        )
        self.last_error: str | None = None  # why the last span left out could not be stored
        self._warned_lost = False
        # id(resource) -> (resource, its scrubbed JSON): every span of a provider shares one
        # Resource, so it is redacted and encoded once rather than once per span.
        self._resources: dict[int, tuple[Resource | None, str]] = {}

    def after_fork_in_child(self) -> None:
        """In a forked child: a new lock (the parent's writer thread may have held this one at
        the fork) and a connection of its own on first write. The inherited connection is kept
        open and unused: SQLite connections must not cross a fork, and closing it here could
        checkpoint or unlink the WAL under the parent. Runs once per child."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._lock = threading.Lock()
        if self._conn is not None:
            _INHERITED_CONNECTIONS.append(self._conn)
        self._conn = None
        self._file_id = None

    def open(self) -> None:
        """Open (and create, or migrate) the database now, raising on a bad path or a file that
        is not a hotmess database; otherwise the first export would, in the writer's thread."""
        self._connection()

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
    ) -> int:
        """Store a batch in one transaction; returns how many of its spans could not be stored.

        Bad data never takes its batch with it: a span whose rows cannot even be built (a
        redaction function that raises, say) is left out, and when the batch's insert fails
        on its data rather than on the database (a value SQLite cannot bind, a row breaking
        the schema) every span is written alone, behind a savepoint of one transaction, and
        only the ones that still fail are left out, counted and logged. Errors of the
        database itself (locked, disk full, read-only) are raised for the caller to retry.
        """
        units: list[_Unit] = []
        lost = 0
        for rec in started:
            try:
                rec = rec.redacted(self._redactor, self._max_chars)
                units.append(_Unit(rec.trace_id, rec.name, (
                    (rows.RUN_START, rows.values(rows.run_row(rec), rows.RUN_FIELDS)),
                    (rows.SPAN_START, rows.span_row(rec)),
                )))
            except Exception as exc:  # noqa: BLE001 - one span's data must not fail the batch
                lost += 1
                self._lost(getattr(rec, "name", "?"), exc)
        for span, index, depth in ended:
            try:
                rec = record_from_span(span, with_resource=False).redacted(self._redactor, self._max_chars)
                span_row = (rows.SPAN_INSERT, rows.span_row(rec, resource_json=self._resource_json(span.resource)))
                if rec.attributes.get(A.RUN):
                    row = (rows.RUN_UPSERT, rows.values(rows.run_row(rec), rows.RUN_FIELDS))
                else:
                    row = (rows.STEP_INSERT, rows.values(rows.step_row(rec, rec.trace_id, index, depth), rows.STEP_FIELDS))
                units.append(_Unit(rec.trace_id, rec.name, (span_row, row)))
            except Exception as exc:  # noqa: BLE001
                lost += 1
                self._lost(_span_name(span), exc)
        with self._lock:
            conn = self._connection()
            try:
                self._insert(conn, units)
            except sqlite3.OperationalError:
                raise  # the database, not the data: the caller retries the whole batch
            except Exception:  # noqa: BLE001 - some span's data: find it, keep the rest
                lost += self._insert_one_by_one(conn, units)
        return lost

    def _lost(self, name: object, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {as_text(exc)}"
        name = _quoted(name)
        if self._redactor is not None:  # a log line is no place for a secret either
            try:
                error, name = self._redactor(error), self._redactor(name)
            except Exception:  # noqa: BLE001 - the redactor itself is what failed
                error, name = type(exc).__name__, "(not shown: it could not be redacted)"
        self.last_error = error
        log = logger.debug if self._warned_lost else logger.warning
        self._warned_lost = True
        log("hotmess: could not store the span %s (%s); the rest of its batch is stored. The span is "
            "counted in hotmess.stats().failed; further such spans are only counted.",
            name, error)

    @staticmethod
    def _insert(conn: sqlite3.Connection, units: Sequence[_Unit]) -> None:
        by_statement: dict[str, list[tuple]] = {sql: [] for sql in _ORDER}
        for unit in units:
            for sql, row in unit.rows:
                by_statement[sql].append(row)
        touched = {unit.trace_id for unit in units}
        with transaction(conn):
            for sql in _ORDER:
                _insert_many(conn, sql, by_statement[sql])
            if touched:
                conn.execute(rows.RUN_COUNTS_MANY, (json.dumps(sorted(touched)),))

    def _insert_one_by_one(self, conn: sqlite3.Connection, units: Sequence[_Unit]) -> int:
        """Each unit behind its own savepoint, in one transaction; the number that failed."""
        lost = 0
        touched = set()
        with transaction(conn):
            for unit in units:
                conn.execute("SAVEPOINT hotmess_span")
                try:
                    try:
                        for sql, row in unit.rows:
                            conn.execute(sql, row)
                    except UnicodeEncodeError:
                        # A lone surrogate (os.fsdecode of an odd file name, say) cannot be
                        # stored as UTF-8: escaped rather than lost.
                        conn.execute("ROLLBACK TO hotmess_span")
                        for sql, row in unit.rows:
                            conn.execute(sql, tuple(map(_utf8_safe, row)))
                except sqlite3.OperationalError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    conn.execute("ROLLBACK TO hotmess_span")
                    lost += 1
                    self._lost(unit.name, exc)
                else:
                    touched.add(unit.trace_id)
                conn.execute("RELEASE hotmess_span")
            if touched:
                conn.execute(rows.RUN_COUNTS_MANY, (json.dumps(sorted(touched)),))
        return lost

    def _resource_json(self, resource: Resource | None) -> str:
        cached = self._resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            attrs = storable_attributes(resource.attributes) if resource is not None else {}
            probe = SpanRecord(trace_id="", span_id="", parent_span_id=None, name="", resource=attrs)
            cached = (resource, rows.json_column(probe.redacted(self._redactor, self._max_chars).resource))
            if len(self._resources) >= 64:  # providers come and go in tests; keep it bounded
                self._resources.clear()
            self._resources[id(resource)] = cached
        return cached[1]

    def shutdown(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._file_id = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
