"""A span as plain data: the one shape every path in hands on (the live exporter, the OTLP
importer, the stored ``spans`` rows), so they all share one mapping to runs and steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from hotmess.redact import Redactor
from hotmess.vocab.serialize import as_text, scrub_attributes, scrub_text, storable_attributes

__all__ = ["SpanRecord", "record_from_span"]


@dataclass
class SpanRecord:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str = "INTERNAL"
    start_ns: int = 0
    end_ns: int | None = None  # None: the span has started and not ended (a run in progress)
    status_code: str = "UNSET"
    status_message: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str | None = None

    def redacted(self, redactor: Redactor | None, max_chars: int = 0) -> SpanRecord:
        """Secrets redacted, then every text cut to ``max_chars`` (0: no cap), in place."""
        if redactor is None and max_chars <= 0:
            return self
        # a step named after a URL may carry its api_key
        self.name = scrub_text(self.name, max_chars, redactor)[0]
        self.attributes = scrub_attributes(self.attributes, max_chars, redactor)
        self.events = [
            {**e, "name": scrub_text(e["name"], max_chars, redactor)[0] if isinstance(e.get("name"), str) else e.get("name"),
             "attributes": scrub_attributes(e.get("attributes", {}), max_chars, redactor)}
            for e in self.events
        ]
        self.links = [
            {**link, "attributes": scrub_attributes(link.get("attributes", {}), max_chars, redactor)}
            for link in self.links
        ]
        self.resource = scrub_attributes(self.resource, max_chars, redactor)
        if isinstance(self.scope, str) and self.scope:
            self.scope = scrub_text(self.scope, max_chars, redactor)[0]
        if self.status_message:
            self.status_message = scrub_text(self.status_message, max_chars, redactor)[0]
        return self



def record_from_span(span: ReadableSpan, *, with_resource: bool = True) -> SpanRecord:
    """A plain copy of an SDK span (hex ids, dict attributes); its resource left empty
    without ``with_resource`` (the exporter stores the resource it already encoded).

    Every value is coerced to what can be stored (:func:`hotmess.vocab.serialize.storable`):
    a span named ``None`` or ``b"..."``, or an attribute no SDK validated, is stored as the
    text it becomes rather than failing its batch."""
    ctx = span.context
    parent = span.parent
    status = span.status
    scope = span.instrumentation_scope
    return SpanRecord(
        trace_id=format(ctx.trace_id, "032x"),
        span_id=format(ctx.span_id, "016x"),
        parent_span_id=format(parent.span_id, "016x") if parent is not None else None,
        name=as_text(span.name),
        kind=span.kind.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time,
        status_code=status.status_code.name,
        status_message=None if status.description is None else as_text(status.description),
        attributes=storable_attributes(span.attributes),
        events=[
            {"name": as_text(e.name), "timestamp": e.timestamp, "attributes": storable_attributes(e.attributes)}
            for e in span.events
        ],
        links=[
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
                "attributes": storable_attributes(link.attributes),
            }
            for link in span.links
        ],
        resource=storable_attributes(span.resource.attributes) if with_resource and span.resource is not None else {},
        scope=as_text(scope.name) if scope is not None and scope.name is not None else None,
    )
