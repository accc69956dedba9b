"""``configure()``: the OpenTelemetry pipeline hotmess records into.

TracerProvider ─ RunSpanProcessor ─ SQLiteSpanExporter (background thread, one transaction per batch)
              └ BatchSpanProcessor ─ OTLPSpanExporter  (only with ``otlp_endpoint``)

When the application already has an SDK TracerProvider, hotmess adds its processors to it
rather than replacing it; otherwise it makes its own (and leaves the global one alone).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from hotmess._version import __version__
from hotmess.errors import HotmessError
from hotmess.redact import Redactor, make_redactor
from hotmess.store.database import default_path
from hotmess.store.exporter import SQLiteSpanExporter
from hotmess.tracer.processor import ProcessorStats, RunSpanProcessor, check_backpressure
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS

logger = logging.getLogger("hotmess")

__all__ = ["DEFAULT_MAX_ATTRIBUTE_CHARS", "Config", "configure", "flush", "get_config", "shutdown", "stats"]


@dataclass(frozen=True)
class Config:
    db: str
    service_name: str
    otlp_endpoint: str | None
    max_attribute_chars: int
    redactor: Redactor | None
    provider: TracerProvider
    owns_provider: bool


class _State:
    lock = threading.RLock()
    config: Config | None = None
    tracer: trace.Tracer | None = None
    processors: list = []


def configure(
    db: str | os.PathLike[str] | None = None,
    *,
    otlp_endpoint: str | None = None,
    service_name: str = "hotmess",
    redact: bool | Iterable[str] | Callable[[str], str] | Redactor | None = True,
    max_attribute_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    tracer_provider: TracerProvider | None = None,
    flush_interval: float = 0.5,
    max_queue_size: int = 200_000,
    max_lag: float | None = 0.5,
    lag_timeout: float = 1.0,
) -> Config:
    """Set where runs are recorded. Calling it again replaces the previous set-up (flushing it).

    db: the SQLite file (default ``$HOTMESS_DB`` or ``./hotmess.db``).
    otlp_endpoint: also send every span to this OTLP/HTTP endpoint (e.g. ``http://localhost:4318``).
    redact: True for the built-in secret patterns, False to store values as they are, a list
        of extra regular expressions, a function ``str -> str``, or a :class:`Redactor`.
    max_attribute_chars: every text stored or sent (inputs, outputs, messages, tool arguments
        and results, exception messages, any attribute) longer than this is cut after
        redaction, with a visible ``…[truncated N chars]`` mark and its key listed in the
        span's ``hotmess.truncated`` attribute; 0 for no cap.
    tracer_provider: the SDK provider to add hotmess to; default: the global one when it is
        an SDK provider, else a new provider of hotmess's own.
    flush_interval: seconds between writes to SQLite (at most 1 s keeps the durability promise).
    max_queue_size: spans queued for the writer at most; beyond it spans are dropped and
        counted (``stats().dropped``).
    max_lag: backpressure, in seconds. When the oldest span not yet written ended more than
        this long ago (an agent making spans faster than the writer stores them), the span
        that ends waits, for at most ``lag_timeout``, until the writer has caught up to half
        of it; at half of it the writer is woken early. So a killed process loses at most
        about the last ``max_lag`` seconds of spans, even under overload. At normal load the
        agent never waits. None or 0: never wait (spans queue, then drop, as the queue allows).
    lag_timeout: the longest one wait lasts. A writer that finishes no batch in that time
        (a lock held elsewhere, a slow disk) is taken as stuck: hotmess logs it once and the
        agent stops waiting until a write succeeds again.
    """
    check_backpressure(max_lag, lag_timeout)  # before the current set-up is touched
    with _State.lock:
        redactor = make_redactor(redact)
        path = str(db if db is not None else default_path())
        exporter = SQLiteSpanExporter(path, redactor=redactor, max_chars=max_attribute_chars)
        # Fail here, in the caller's thread, on a bad path or foreign file, and before the
        # previous set-up is shut down: a failed configure() leaves the old one recording.
        exporter.open()
        _shutdown_processors()
        provider = tracer_provider
        owns = False
        if provider is None:
            global_provider = trace.get_tracer_provider()
            if isinstance(global_provider, TracerProvider):
                provider = global_provider
            else:
                provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
                owns = True
        processor = RunSpanProcessor(
            exporter,
            flush_interval=flush_interval,
            max_queue_size=max_queue_size,
            max_lag=max_lag,
            lag_timeout=lag_timeout,
        )
        provider.add_span_processor(processor)
        _State.processors = [processor]
        if otlp_endpoint:
            from hotmess.tracer.otlp_export import otlp_processor

            otlp = otlp_processor(otlp_endpoint, redactor=redactor, max_chars=max_attribute_chars)
            provider.add_span_processor(otlp)
            _State.processors.append(otlp)
        _State.config = Config(
            db=path,
            service_name=service_name,
            otlp_endpoint=otlp_endpoint,
            max_attribute_chars=max_attribute_chars,
            redactor=redactor,
            provider=provider,
            owns_provider=owns,
        )
        _State.tracer = provider.get_tracer("hotmess", __version__)
        return _State.config


def _shutdown_processors() -> None:
    # A processor added to someone else's provider cannot be removed from it; shut down,
    # it ignores every span from then on.
    for processor in _State.processors:
        processor.shutdown()
    _State.processors = []


def get_config() -> Config:
    """The current configuration, configuring the default on first use.

    When that default cannot be used (``$HOTMESS_DB`` in a read-only directory, say), hotmess
    says so once and records nothing; the agents run as they would without it. An explicit
    :func:`configure` afterwards starts recording.
    """
    config = _State.config
    if config is None:
        with _State.lock:
            if _State.config is None:
                try:
                    configure()
                except (HotmessError, sqlite3.Error, OSError) as exc:
                    _record_nothing(exc)
            config = _State.config
    return config


def _record_nothing(reason: BaseException) -> None:
    logger.error(
        "hotmess: cannot record runs (%s); agents run untraced until hotmess.configure() succeeds",
        reason,
    )
    _State.config = Config(
        db=default_path(),
        service_name="hotmess",
        otlp_endpoint=None,
        max_attribute_chars=DEFAULT_MAX_ATTRIBUTE_CHARS,
        redactor=None,
        provider=TracerProvider(),  # no processor: nothing is kept or sent
        owns_provider=True,
    )
    _State.tracer = trace.NoOpTracer()


def get_tracer() -> trace.Tracer:
    if _State.tracer is None:
        get_config()
    return _State.tracer


def flush(timeout: float = 30.0) -> bool:
    """Write everything recorded so far. Never needed on the agent's path; useful in tests and scripts."""
    ok = True
    for processor in list(_State.processors):
        ok = processor.force_flush(int(timeout * 1000)) and ok
    return ok


def shutdown() -> None:
    """Flush and stop recording; the next traced run configures afresh."""
    with _State.lock:
        _shutdown_processors()
        _State.config = None
        _State.tracer = None


def stats() -> ProcessorStats:
    """Counts of spans queued, written, dropped (queue full) and failed (write errors), and
    of the agent's waits for the writer (``waits``, ``wait_s``: backpressure, see ``max_lag``)."""
    for processor in _State.processors:
        if isinstance(processor, RunSpanProcessor):
            return processor.stats
    return ProcessorStats()
