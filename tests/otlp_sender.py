"""An agent in another process that knows nothing of hotmess: a plain OpenTelemetry SDK
TracerProvider and the real OTLP/HTTP protobuf exporter, GenAI-style spans (an
``invoke_agent`` root with ``chat`` and ``execute_tool`` children).

``python otlp_sender.py ENDPOINT TOKEN AGENT TASK RUNS simple|batch``: with ``simple`` every
span is its own export request (children before their root: each trace arrives in pieces).
ENDPOINT ``-``: the exporter is made with no arguments at all, so only the standard environment
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``) say where it sends."""

from __future__ import annotations

import json
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult


class Counted(OTLPSpanExporter):
    """The exporter, counting the exports that failed (the processors drop their result)."""

    failures = 0

    def export(self, spans):
        result = super().export(spans)
        if result != SpanExportResult.SUCCESS:
            Counted.failures += 1
        return result


def main(endpoint: str, token: str, agent: str, task: str, runs: int, mode: str) -> None:
    exporter = Counted() if endpoint == "-" else Counted(
        endpoint=f"{endpoint}/v1/traces", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    provider = TracerProvider(resource=Resource.create({"service.name": f"sender-{agent}"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter) if mode == "simple" else BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("otlp-sender")
    for i in range(runs):
        answer = "refund issued" if i % 2 == 0 else "escalated"
        with tracer.start_as_current_span(f"invoke_agent {agent}") as root:
            root.set_attribute("gen_ai.operation.name", "invoke_agent")
            root.set_attribute("gen_ai.agent.name", agent)
            root.set_attribute("hotmess.task.id", task)
            root.set_attribute("hotmess.instance", str(i))
            with tracer.start_as_current_span("chat gpt-test") as chat:
                chat.set_attribute("gen_ai.operation.name", "chat")
                chat.set_attribute("gen_ai.request.model", "gpt-test")
                chat.set_attribute("gen_ai.usage.input_tokens", 12)
                chat.set_attribute("gen_ai.usage.output_tokens", 5)
            with tracer.start_as_current_span("execute_tool refund") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "refund")
                tool.set_attribute("gen_ai.tool.call.arguments", json.dumps({"order": i}))
                tool.set_attribute("gen_ai.tool.call.result", "ok")
            root.set_attribute("hotmess.outcome", answer)
            root.set_attribute("hotmess.success", i % 2 == 0)
    provider.shutdown()  # flushes the batch processor; the exporter reports failures on stderr
    print("sent", runs, "failures", Counted.failures)
    sys.exit(1 if Counted.failures else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
