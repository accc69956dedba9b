"""The span processor: picks out the spans of hotmess runs and hands them, in batches,
to a writer in a background thread.

It follows the SDK's BatchSpanProcessor (a bounded queue, a worker that wakes on a timer
or when a batch is full, flush at shutdown) with three differences the store needs:
a run's root is queued when it *starts*, so a process killed mid-run leaves an
``incomplete`` run rather than nothing; each step gets its order and depth within its
run; and spans dropped because the queue was full are counted, not lost silently.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from hotmess.store.rows import SpanRecord
from hotmess.tracer import attributes as A

logger = logging.getLogger("hotmess")

# How many finished runs' trace ids are remembered, so that a span ending just after its
# run's root (a leaked async task) is still stored with its run.
_RECENT_RUNS = 4096


class RunWriter(Protocol):
    def write(self, started: list[SpanRecord], ended: list[tuple[ReadableSpan, int, int]]) -> None: ...

    def shutdown(self) -> None: ...


@dataclass
class ProcessorStats:
    queued: int = 0
    written: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0  # the writer raised, after retries
    batches: int = 0
    last_error: str | None = None


class _Run:
    """A run in progress: each open span's (step index, depth), indices in start order."""

    __slots__ = ("counter", "open")

    def __init__(self, root_span_id: int):
        self.counter = itertools.count()  # next() is atomic under the GIL
        self.open: dict[int, tuple[int, int]] = {root_span_id: (-1, 0)}


class RunSpanProcessor(SpanProcessor):
    def __init__(
        self,
        writer: RunWriter,
        *,
        flush_interval: float = 0.5,
        max_queue_size: int = 200_000,
        max_batch_size: int = 4096,
        retries: int = 3,
    ):
        self._writer = writer
        self._flush_interval = flush_interval
        self._max_queue_size = max_queue_size
        self._max_batch_size = max_batch_size
        self._retries = retries
        self._runs: dict[int, _Run] = {}
        self._recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._started: collections.deque[SpanRecord] = collections.deque()
        self._ended: collections.deque[tuple[ReadableSpan, int, int]] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0  # items taken from the queues and not yet written
        self._shutdown = False
        self.stats = ProcessorStats()
        self._warned_drop = False
        self._failing = False  # the last write failed: say so once, not once per batch
        self._failed_since_logged = 0
        self._thread = threading.Thread(target=self._work, name="hotmess-writer", daemon=True)
        self._thread.start()
        # Flush at exit even when the provider we were added to does not shut down.
        ref = weakref.ref(self)
        atexit.register(lambda: (p := ref()) is not None and p.shutdown())

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
        self._enqueue(self._ended, (span, index, depth))

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
        if len(self._ended) >= self._max_batch_size:
            self._wake.set()

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
            try:
                self._write(started, ended)
            finally:
                with self._idle:
                    self._pending -= len(started) + len(ended)
                    self._idle.notify_all()

    def _write(self, started: list, ended: list) -> None:
        for attempt in range(self._retries + 1):
            try:
                self._writer.write(started, ended)
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
                self.stats.written += len(started) + len(ended)
                self.stats.batches += 1
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
