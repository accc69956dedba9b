"""The span processor: picks out the spans of hotmess runs and hands them, in batches,
to a writer in a background thread.

It follows the SDK's BatchSpanProcessor (a bounded queue, a worker that wakes on a timer
or when a batch is full, flush at shutdown) with four differences the store needs:
a run's root is queued when it *starts*, so a process killed mid-run leaves an
``incomplete`` run rather than nothing; each step gets its order and depth within its
run; spans dropped because the queue was full are counted, not lost silently; and the
writer is never allowed to fall far behind the agent (backpressure, below).

Backpressure (``max_lag``, default 0.5 s). The writer shares the GIL with the agent. An agent
that makes spans back to back, faster than the writer can store them (about 25 µs of CPU
each), starves it: the queue grows without bound and a killed process loses everything
queued, seconds of it. So the *lag* (how long ago the oldest span not yet written ended, by
the processor's own monotonic clock: when it was queued) is checked as each span ends, with
a clock read and a subtraction on the agent's thread and nothing more:

- over ``max_lag / 2`` the writer is woken at once instead of at its next timer tick (so
  while spans flow it writes at least that often; at normal load this is all that ever
  happens, and the lag never reaches ``max_lag``);
- over ``max_lag`` the agent's ``on_end`` waits on a condition (the GIL released, so the
  writer runs alone) until the writer has written every span queued more than
  ``max_lag / 2`` before it, and for at most ``lag_timeout`` seconds. An agent that makes
  spans faster than they can be stored so runs at the writer's pace. The store is then never much more than ``max_lag``
  plus one batch's write behind the agent, and a SIGKILL loses at most that. Batches are kept
  to 1024 spans for it: an overloaded agent leaves the writer almost no GIL until it waits, so a
  batch taken is mostly written during that wait, and with 4096 the store was up to 0.8 s
  behind (1024: 0.66 s, and a SIGKILL test on CI lost a span 1 s old at 4096).

The agent never waits on a writer that cannot make progress: not when the writer is failing
(database locked past its retries, disk full: the batch is dropped and counted, as before),
not once a wait of ``lag_timeout`` saw no batch finish (the writer is stuck, on a lock held
elsewhere say: logged once, and the agent stops waiting until a write succeeds again), not on
the writer's own thread, not in a forked child before its own writer has started, at
interpreter shutdown, or after ``shutdown()``. Then spans queue and, past ``max_queue_size``,
are dropped and counted, as without backpressure. ``max_lag=None`` (or 0) turns it off.
The agent never writes to SQLite itself, nor flushes per span; its waits are counted in
``stats.waits`` and ``stats.wait_s``.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from hotmess.vocab import attributes as A
from hotmess.vocab.records import SpanRecord

logger = logging.getLogger("hotmess")
_monotonic_ns = time.monotonic_ns

# How many finished runs' trace ids are remembered, so that a span ending just after its
# run's root (a leaked async task) is still stored with its run.
_RECENT_RUNS = 4096

# Spans queued that wake the writer before its timer: a burst is written in batches soon after,
# not during it (a writer woken each 1024 spans takes the GIL from the agent's burst: its steps
# cost 44 µs rather than 30, bench/step_overhead.py).
_WAKE_QUEUED = 4096


class RunWriter(Protocol):
    def write(self, started: list[SpanRecord], ended: list[tuple[ReadableSpan, int, int]]) -> int | None:
        """Store a batch; return how many of its spans could not be stored (their data), or
        raise when nothing could be (the database): the batch is then retried."""

    def shutdown(self) -> None: ...


@dataclass
class ProcessorStats:
    queued: int = 0
    written: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0  # the writer raised, after retries
    batches: int = 0
    waits: int = 0  # times the agent waited for the writer to catch up (backpressure)
    wait_s: float = 0.0  # seconds the agent spent in those waits, in all
    last_error: str | None = None


class _Run:
    """A run in progress: each open span's (step index, depth), indices in start order."""

    __slots__ = ("counter", "open")

    def __init__(self, root_span_id: int):
        self.counter = itertools.count()  # next() is atomic under the GIL
        self.open: dict[int, tuple[int, int]] = {root_span_id: (-1, 0)}


def check_backpressure(max_lag: float | None, lag_timeout: float) -> None:
    """Refuse settings of the backpressure (the module docstring) that mean nothing."""
    if max_lag is not None and not max_lag >= 0:
        raise ValueError(f"max_lag must be seconds >= 0, or None to turn backpressure off; got {max_lag!r}")
    if not lag_timeout > 0:
        raise ValueError(f"lag_timeout must be seconds > 0; got {lag_timeout!r}")


class RunSpanProcessor(SpanProcessor):
    def __init__(
        self,
        writer: RunWriter,
        *,
        flush_interval: float = 0.5,
        max_queue_size: int = 200_000,
        max_batch_size: int = 1024,
        retries: int = 3,
        max_lag: float | None = 0.5,
        lag_timeout: float = 1.0,
    ):
        check_backpressure(max_lag, lag_timeout)
        self._writer = writer
        self._flush_interval = flush_interval
        self._max_queue_size = max_queue_size
        self._max_batch_size = max_batch_size
        self._retries = retries
        self._runs: dict[int, _Run] = {}
        self._recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._started: collections.deque[SpanRecord] = collections.deque()
        # (span, step index, depth, when it was queued: time.monotonic_ns, 0 without backpressure)
        self._ended: collections.deque[tuple[ReadableSpan, int, int, int]] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0  # items taken from the queues and not yet written
        self._shutdown = False
        self.stats = ProcessorStats()
        self._warned_drop = False
        self._failing = False  # the last write failed: say so once, not once per batch
        self._failed_since_logged = 0
        # Backpressure (see the module docstring). 0 turns it off.
        self._max_lag_ns = int(max_lag * 1e9) if max_lag else 0
        self._wake_lag_ns = self._max_lag_ns // 2
        self._lag_timeout = lag_timeout
        self._inflight_since_ns = 0  # when the oldest span of the batch being written was queued; 0: none
        self._progress = 0  # batches finished, written or not
        self._stalled = False  # a wait saw no batch finish: don't wait again until a write succeeds
        self._warned_stall = False
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._work, name="hotmess-writer", daemon=True)
        self._thread.start()
        # Flush at exit even when the provider we were added to does not shut down.
        ref = weakref.ref(self)
        atexit.register(lambda: (p := ref()) is not None and p.shutdown())
        os.register_at_fork(after_in_child=lambda: (p := ref()) is not None and p._after_fork_in_child())

    def _after_fork_in_child(self) -> None:
        """A forked child starts afresh: new locks (the parent's writer may have held one at the
        fork, and would never release it here), empty queues (what the parent queued, the parent
        writes), its own writer thread and database connection. Runs open at the fork belong to
        the parent: the child records only the runs that begin in it, so it never writes over
        the parent's copy of a run (a child leaving through ``sys.exit`` inside one, say)."""
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._started.clear()
        self._ended.clear()
        self._runs.clear()
        self._recent.clear()
        self._pending = self._inflight_since_ns = 0
        self._failing = self._stalled = False
        self.stats = ProcessorStats()
        self._pid = os.getpid()
        after_fork = getattr(self._writer, "after_fork_in_child", None)
        if after_fork is not None:
            after_fork()
        if not self._shutdown:
            self._thread = threading.Thread(target=self._work, name="hotmess-writer", daemon=True)
            self._thread.start()

    # --- the agent's thread: only dictionary and deque operations here ---

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self._shutdown:
            return
        ctx = span.context
        run = self._runs.get(ctx.trace_id)
        if run is not None:
            parent = run.open.get(span.parent.span_id) if span.parent is not None else None
            run.open[ctx.span_id] = (next(run.counter), 1 if parent is None else parent[1] + 1)
            return
        attrs = span.attributes
        if attrs is None or not attrs.get(A.RUN):
            return
        self._runs[ctx.trace_id] = _Run(ctx.span_id)
        self._enqueue_start(span)

    def on_end(self, span: ReadableSpan) -> None:
        if self._shutdown:
            return
        ctx = span.context
        trace_id = ctx.trace_id
        run = self._runs.get(trace_id)
        if run is None:
            if trace_id not in self._recent:
                return
            index, depth = -1, 1
        else:
            index, depth = run.open.pop(ctx.span_id, (-1, 1))
            if depth == 0:  # the run's root: the run is over
                del self._runs[trace_id]
                self._recent[trace_id] = None
                if len(self._recent) > _RECENT_RUNS:
                    self._recent.popitem(last=False)
        if not self._max_lag_ns:
            self._enqueue(self._ended, (span, index, depth, 0))
            return
        # The processor's own clock, not the span's end time: an end time given explicitly (a
        # replay, a skewed clock) says nothing about how far behind the writer is.
        now = _monotonic_ns()
        self._enqueue(self._ended, (span, index, depth, now))
        try:
            lag = now - (self._inflight_since_ns or self._ended[0][3])
        except IndexError:  # the writer took everything meanwhile
            return
        if lag > self._wake_lag_ns:
            self._behind(now, lag)

    def _enqueue_start(self, span: Span) -> None:
        ctx = span.context
        record = SpanRecord(
            trace_id=format(ctx.trace_id, "032x"),
            span_id=format(ctx.span_id, "016x"),
            parent_span_id=None,
            name=span.name,
            kind=span.kind.name,
            start_ns=span.start_time or time.time_ns(),
            end_ns=None,
            attributes=dict(span.attributes),
            resource=dict(span.resource.attributes) if span.resource is not None else {},
        )
        self._enqueue(self._started, record)

    def _enqueue(self, queue: collections.deque, item: object) -> None:
        if len(self._started) + len(self._ended) >= self._max_queue_size:
            self.stats.dropped += 1
            if not self._warned_drop:
                self._warned_drop = True
                logger.warning(
                    "hotmess: the write queue is full (%d spans); dropping spans and counting them "
                    "(hotmess.stats().dropped). Raise configure(max_queue_size=...) or check the disk.",
                    self._max_queue_size,
                )
            return
        queue.append(item)
        self.stats.queued += 1
        if len(self._ended) >= _WAKE_QUEUED:
            self._wake.set()

    def _behind(self, now_ns: int, lag_ns: int) -> None:
        """The writer is behind: wake it and, past ``max_lag``, wait for it (bounded)."""
        if not self._wake.is_set():
            self._wake.set()
        if lag_ns <= self._max_lag_ns or self._stalled or self._failing or self._shutdown:
            return
        thread = self._thread
        if (
            os.getpid() != self._pid  # forked: the writer thread is not in this process
            or threading.get_ident() == thread.ident  # a span ended by the writer itself
            or not thread.is_alive()
            or sys.is_finalizing()
        ):
            return
        target = now_ns - self._wake_lag_ns  # wait until everything queued before this is written
        began = time.monotonic()
        deadline = began + self._lag_timeout
        progress = self._progress
        waited = False
        if not self._idle.acquire(timeout=self._lag_timeout):
            return
        try:
            while not (self._failing or self._shutdown):
                try:
                    oldest = self._inflight_since_ns or self._ended[0][3]
                except IndexError:
                    break
                if oldest >= target:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if self._progress == progress:
                        self._stall()
                    break
                self._wake.set()
                waited = True
                self._idle.wait(remaining)
        finally:
            self._idle.release()
            if waited:
                self.stats.waits += 1
                self.stats.wait_s += time.monotonic() - began

    def _stall(self) -> None:
        self._stalled = True
        log = logger.debug if self._warned_stall else logger.warning
        self._warned_stall = True
        log(
            "hotmess: the writer stored nothing in %.3g s while the agent waited for it (%s); the agent "
            "no longer waits for it until a write succeeds: spans queue meanwhile, and beyond "
            "max_queue_size are dropped and counted (hotmess.stats().dropped)",
            self._lag_timeout,
            self.stats.last_error or "no error yet: a lock held elsewhere, a slow disk?",
        )

    # --- the writer thread ---

    def _work(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._drain()
            if self._shutdown:
                self._drain()
                return

    def _drain(self) -> None:
        while self._started or self._ended:
            # Taken and counted as pending at once: force_flush() must never see a batch
            # that has left the queues and is not yet pending (it would return before the write).
            with self._idle:
                started = _take(self._started, self._max_batch_size)
                ended = _take(self._ended, self._max_batch_size)
                self._pending += len(started) + len(ended)
                self._inflight_since_ns = ended[0][3] if ended else 0
            try:
                self._write(started, [item[:3] for item in ended])
            finally:
                with self._idle:
                    self._pending -= len(started) + len(ended)
                    self._inflight_since_ns = 0
                    self._progress += 1
                    self._idle.notify_all()

    def _write(self, started: list, ended: list) -> None:
        for attempt in range(self._retries + 1):
            try:
                lost = self._writer.write(started, ended) or 0
            except Exception as exc:  # noqa: BLE001 - the tracer must never break the agent
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if attempt == self._retries:
                    n = len(started) + len(ended)
                    self.stats.failed += n
                    if self._failing:
                        self._failed_since_logged += n
                        logger.debug("hotmess: dropped %d more spans (%s)", n, self.stats.last_error)
                        return
                    self._failing = True
                    logger.error(
                        "hotmess: could not write %d spans after %d attempts (%s); they are dropped "
                        "and counted in hotmess.stats().failed. Until a write succeeds, further "
                        "failures are only counted.",
                        n,
                        attempt + 1,
                        self.stats.last_error,
                    )
                    return
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                if lost:  # spans whose data could not be stored, left out alone (the writer logs them)
                    self.stats.failed += lost
                    self.stats.last_error = getattr(self._writer, "last_error", None) or self.stats.last_error
                self.stats.written += len(started) + len(ended) - lost
                self.stats.batches += 1
                self._stalled = False
                if self._failing:
                    self._failing = False
                    logger.warning(
                        "hotmess: writing again; %d more spans were dropped meanwhile (%d in all, "
                        "hotmess.stats().failed)",
                        self._failed_since_logged,
                        self.stats.failed,
                    )
                    self._failed_since_logged = 0
                return

    # --- SpanProcessor ---

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        self._wake.set()
        with self._idle:
            while self._started or self._ended or self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._wake.set()
                self._idle.wait(min(remaining, 0.05))
        return True

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self._wake.set()
        self._thread.join(timeout=30)
        self._writer.shutdown()


def _take(queue: collections.deque, n: int) -> list:
    out = []
    while queue and len(out) < n:
        out.append(queue.popleft())
    return out
