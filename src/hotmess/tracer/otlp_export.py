"""Sending spans to an OTLP/HTTP endpoint (Jaeger, Phoenix, a collector) beside SQLite.

The official exporter behind the SDK's BatchSpanProcessor, in its own background thread, so
a slow endpoint never slows the agent or the SQLite writer. Secrets are redacted first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from hotmess.errors import HotmessError
from hotmess.redact import Redactor
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS, scrub_attributes, scrub_text


class RedactingSpanExporter(SpanExporter):
    """Passes copies of the spans with secrets redacted, then texts cut to ``max_chars``
    (name, attributes, event and link attributes, status message, resource): the same
    scrubbing as the SQLite store, so nothing is sent that would not be stored."""

    def __init__(
        self,
        exporter: SpanExporter,
        redactor: Redactor | None,
        max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    ):
        self._exporter = exporter
        self._redactor = redactor
        self._max_chars = max_chars

    def _redact(self, span: ReadableSpan) -> ReadableSpan:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import Event
        from opentelemetry.trace import Link, Status

        r, n = self._redactor, self._max_chars
        status = span.status
        if status.description:
            status = Status(status.status_code, scrub_text(status.description, n, r)[0])
        resource = span.resource
        if resource is not None:
            resource = Resource(scrub_attributes(resource.attributes, n, r), resource.schema_url)
        return ReadableSpan(
            name=scrub_text(span.name, n, r)[0],
            context=span.context,
            parent=span.parent,
            resource=resource,
            attributes=scrub_attributes(span.attributes or {}, n, r),
            events=[
                Event(scrub_text(e.name, n, r)[0], scrub_attributes(e.attributes or {}, n, r), e.timestamp)
                for e in span.events
            ],
            links=[Link(link.context, scrub_attributes(link.attributes or {}, n, r)) for link in span.links],
            kind=span.kind,
            instrumentation_scope=_scope(span.instrumentation_scope, n, r),
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._redactor is not None or self._max_chars > 0:
            spans = [self._redact(s) for s in spans]
        return self._exporter.export(spans)

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def otlp_processor(
    endpoint: str, *, redactor: Redactor | None = None, max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS
) -> BatchSpanProcessor:
    """A batch processor exporting to ``endpoint`` (``http://host:4318``, or the full ``/v1/traces`` URL)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise HotmessError(
            "configure(otlp_endpoint=...) needs the OTLP exporter: pip install 'hotmess[otlp]'"
        ) from None
    url = endpoint if endpoint.rstrip("/").endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
    return BatchSpanProcessor(RedactingSpanExporter(OTLPSpanExporter(endpoint=url), redactor, max_chars), max_queue_size=65536)


def _scope(scope: Any, max_chars: int, redactor: Redactor | None) -> Any:
    """The instrumentation scope with its name and version scrubbed (any library may name it)."""
    if scope is None:
        return None
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    name = scrub_text(scope.name, max_chars, redactor)[0] if scope.name else scope.name
    version = scrub_text(scope.version, max_chars, redactor)[0] if scope.version else scope.version
    if name == scope.name and version == scope.version:
        return scope
    return InstrumentationScope(name, version, scope.schema_url)
