// An agent in another language that knows nothing of hotmess: the OpenTelemetry JavaScript SDK
// and its real OTLP/HTTP exporter, told where to send only by the standard environment variables
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS). GenAI-style spans, as
// tests/otlp_sender.py makes them in Python: an invoke_agent root with chat and execute_tool
// children.
//
//   node agent.mjs proto|json AGENT TASK RUNS
//
// proto: @opentelemetry/exporter-trace-otlp-proto (protobuf); json: -otlp-http (the JSON encoding).
// Prints "sent RUNS failures N" and exits 1 when an export failed.
import { context, trace } from "@opentelemetry/api";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";

const [encoding, agent, task, runs] = process.argv.slice(2);
const exporter = encoding === "json" ? new JsonExporter() : new ProtoExporter();
let failures = 0;
const exportSpans = exporter.export.bind(exporter);
exporter.export = (spans, done) =>
  exportSpans(spans, (result) => {
    if (result.code !== 0) failures += 1;
    done(result);
  });

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ "service.name": `js-${agent}` }),
  spanProcessors: [new BatchSpanProcessor(exporter)],
});
const tracer = provider.getTracer("js-agent");

for (let i = 0; i < Number(runs); i++) {
  const root = tracer.startSpan(`invoke_agent ${agent}`, {
    attributes: {
      "gen_ai.operation.name": "invoke_agent",
      "gen_ai.agent.name": agent,
      "hotmess.task.id": task,
      "hotmess.instance": String(i),
    },
  });
  const inRun = trace.setSpan(context.active(), root);
  const chat = tracer.startSpan("chat gpt-test", {
    attributes: {
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": "gpt-test",
      "gen_ai.usage.input_tokens": 12,
      "gen_ai.usage.output_tokens": 5,
    },
  }, inRun);
  chat.end();
  const tool = tracer.startSpan("execute_tool refund", {
    attributes: {
      "gen_ai.operation.name": "execute_tool",
      "gen_ai.tool.name": "refund",
      "gen_ai.tool.call.arguments": JSON.stringify({ order: i }),
      "gen_ai.tool.call.result": "ok",
    },
  }, inRun);
  tool.end();
  const answer = i % 2 === 0 ? "refund issued" : "escalated";
  root.setAttribute("hotmess.outcome", answer);
  root.setAttribute("hotmess.success", i % 2 === 0);
  root.end();
}
await provider.shutdown(); // flushes the batch processor
console.log(`sent ${runs} failures ${failures}`);
process.exit(failures ? 1 : 0);
