"""``hotmess serve`` under load: spans per second accepted from several exporter processes, with
nothing lost, then the UI's page times on the database they filled.

The server is the CLI (``hotmess serve --port 0 --json``) in its own process. Each of
``--senders`` processes is an agent that knows nothing of hotmess: a plain OpenTelemetry SDK
TracerProvider, a BatchSpanProcessor sized so that it never drops (its queue holds everything)
and the real OTLP/HTTP protobuf exporter, sending ``--traces`` GenAI-style traces (an
``invoke_agent`` root, ``--steps`` chat / execute_tool children). The clock runs from the
senders' start to the last one's ``shutdown()`` (every export answered); then the stored spans
are counted: every one sent must be there. Then each UI page is fetched ``--repeats`` times
(the first fetch of an analysis page computes it; later ones are served until the data changes).

    .venv/bin/python bench/serve_throughput.py [--senders 4] [--traces 500] [--steps 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fetch_seconds  # noqa: E402


def sender(endpoint: str, name: str, traces: int, steps: int) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

    failures = []

    class Counted(OTLPSpanExporter):
        def export(self, spans):
            result = super().export(spans)
            if result != SpanExportResult.SUCCESS:
                failures.append(len(spans))
            return result

    provider = TracerProvider()
    queue = traces * (steps + 1) + 1  # holds every span: the processor never drops one
    provider.add_span_processor(BatchSpanProcessor(
        Counted(endpoint=f"{endpoint}/v1/traces", timeout=30), max_queue_size=queue,
        max_export_batch_size=min(512, queue), schedule_delay_millis=200))
    tracer = provider.get_tracer("bench")
    for i in range(traces):
        with tracer.start_as_current_span(f"invoke_agent {name}") as root:
            root.set_attribute("gen_ai.operation.name", "invoke_agent")
            root.set_attribute("gen_ai.agent.name", name)
            root.set_attribute("hotmess.task.id", f"task-{i % 50}")
            for s in range(steps):
                op = "chat" if s % 2 == 0 else "execute_tool"
                with tracer.start_as_current_span(f"{op} {s}") as span:
                    span.set_attribute("gen_ai.operation.name", op)
                    if op == "execute_tool":
                        span.set_attribute("gen_ai.tool.name", f"tool_{s % 4}")
                        span.set_attribute("gen_ai.tool.call.arguments", json.dumps({"order": i, "step": s}))
                    else:
                        span.set_attribute("gen_ai.usage.input_tokens", 100 + s)
            root.set_attribute("hotmess.outcome", f"answer {i % 3}")
            root.set_attribute("hotmess.success", i % 3 == 0)
    provider.shutdown()
    print(json.dumps({"failed_exports": len(failures), "failed_spans": sum(failures)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--traces", type=int, default=500, help="traces per sender")
    ap.add_argument("--steps", type=int, default=8, help="child spans per trace")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sender", nargs=4, metavar=("ENDPOINT", "NAME", "TRACES", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sender:
        endpoint, name, traces, steps = args.sender
        sender(endpoint, name, int(traces), int(steps))
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "served.db"
        server = subprocess.Popen([sys.executable, "-c", "from hotmess.cli import main; main()", "serve",
                                   "--db", str(db), "--port", "0", "--json"], env=env, stdout=subprocess.PIPE, text=True)
        try:
            where = json.loads(server.stdout.readline())
            url = where["otlp_endpoint"]
            start = time.perf_counter()
            senders = [subprocess.Popen([sys.executable, __file__, "--sender", url, f"agent-{k}", str(args.traces),
                                         str(args.steps)], env=env, stdout=subprocess.PIPE, text=True)
                       for k in range(args.senders)]
            outputs = [p.communicate(timeout=3600)[0].strip().splitlines() for p in senders]
            if any(p.returncode or not out for p, out in zip(senders, outputs, strict=True)):
                raise SystemExit(f"a sender failed (exit codes {[p.returncode for p in senders]}): see its error above")
            reports = [json.loads(out[-1]) for out in outputs]
            elapsed = time.perf_counter() - start
            sent = args.senders * args.traces * (args.steps + 1)
            with sqlite3.connect(db) as conn:
                stored_spans = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
                stored_runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
                stored_steps = conn.execute("SELECT count(*) FROM steps").fetchone()[0]
                run_id = conn.execute("SELECT run_id FROM runs LIMIT 1").fetchone()[0]
            pages = {"overview": "/", "runs": "/runs", "runs, filtered and searched": "/runs?agent=agent-0&q=answer",
                     "run": f"/runs/{run_id}", "task": "/tasks/task-1", "drift": "/drift?window=1h"}
            times = {name: [fetch_seconds(url + path) for _ in range(args.repeats)] for name, path in pages.items()}
        finally:
            server.terminate()
            server.wait(30)
    out = {
        "senders": args.senders, "spans_sent": sent, "spans_stored": stored_spans, "runs": stored_runs,
        "steps": stored_steps, "lost": sent - stored_spans, "failed_exports": sum(r["failed_exports"] for r in reports),
        "seconds": elapsed, "spans_per_second": sent / elapsed,
        "pages_ms": {name: {"first": ts[0] * 1000, "median_after": statistics.median(ts[1:]) * 1000 if len(ts) > 1 else None}
                     for name, ts in times.items()},
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"{sent:,} spans from {args.senders} exporter processes in {elapsed:.2f} s: "
          f"{out['spans_per_second']:,.0f} spans/s; stored {stored_spans:,} ({out['lost']} lost), "
          f"{stored_runs:,} runs, {stored_steps:,} steps")
    for name, t in out["pages_ms"].items():
        print(f"  {name:28s} first {t['first']:8.1f} ms   then {t['median_after'] or 0:8.1f} ms")


if __name__ == "__main__":
    main()
