"""Sending spans to an OTLP/HTTP endpoint (Jaeger, Phoenix, a collector) beside SQLite.

The official exporter behind the SDK's BatchSpanProcessor, in its own background thread, so
a slow endpoint never slows the agent or the SQLite writer. Secrets are redacted first.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from hotmess.errors import HotmessError
from hotmess.redact import Redactor


class RedactingSpanExporter(SpanExporter):
    """Passes copies of the spans with secrets redacted (attributes, event attributes, name)."""

    def __init__(self, exporter: SpanExporter, redactor: Redactor | None):
        self._exporter = exporter
        self._redactor = redactor

    def _redact(self, span: ReadableSpan) -> ReadableSpan:
        r = self._redactor
        from opentelemetry.sdk.trace import Event

        return ReadableSpan(
            name=r(span.name),
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes={k: r.value(v) for k, v in (span.attributes or {}).items()},
            events=[
                Event(e.name, {k: r.value(v) for k, v in (e.attributes or {}).items()}, e.timestamp)
                for e in span.events
            ],
            links=span.links,
            kind=span.kind,
            instrumentation_scope=span.instrumentation_scope,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._redactor is not None:
            spans = [self._redact(s) for s in spans]
        return self._exporter.export(spans)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def otlp_processor(endpoint: str, *, redactor: Redactor | None = None) -> BatchSpanProcessor:
    """A batch processor exporting to ``endpoint`` (``http://host:4318``, or the full ``/v1/traces`` URL)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise HotmessError(
            "configure(otlp_endpoint=...) needs the OTLP exporter: pip install 'hotmess[otlp]'"
        ) from None
    url = endpoint if endpoint.rstrip("/").endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
    return BatchSpanProcessor(RedactingSpanExporter(OTLPSpanExporter(endpoint=url), redactor), max_queue_size=65536)
