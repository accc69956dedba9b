"""Cost of one traced step in an agent loop, side by side in one process.

Three loops of the same agent shape (a run of STEPS steps, each a tool call with small
arguments), interleaved repeat by repeat so machine noise hits all three alike:

- none:    the agent with no tracing at all
- bare:    a bare OpenTelemetry SDK span per step (root span per run), BatchSpanProcessor
           with a no-op exporter: the floor any OpenTelemetry-based tracer stands on
- hotmess: @hotmess.trace on the run and hotmess.action() per step, writing to SQLite in
           the background (the writer thread's work competes for the GIL and is counted)

Reports the median per-step cost over repeats and the ratio hotmess / bare.

    .venv/bin/python bench/step_overhead.py [--repeats 15] [--runs 100] [--steps 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import hotmess


class NoopExporter(SpanExporter):
    def export(self, spans):  # noqa: ANN001
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def tool(order_id: int) -> dict:
    return {"order_id": order_id, "status": "ok"}


def measure(runs: int, steps: int, repeats: int) -> dict:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NoopExporter()))
    bare_tracer = provider.get_tracer("bench")

    def agent_none(task: int) -> None:
        for i in range(steps):
            tool(i)

    def agent_bare(task: int) -> None:
        with bare_tracer.start_as_current_span("invoke_agent bench", attributes={"task": task}):
            for i in range(steps):
                with bare_tracer.start_as_current_span("execute_tool get_order") as span:
                    span.set_attribute("gen_ai.tool.name", "get_order")
                    span.set_attribute("gen_ai.tool.call.arguments", json.dumps({"order_id": i}))
                    tool(i)

    @hotmess.trace(task_id=lambda task: task, agent="bench")
    def agent_hotmess(task: int) -> None:
        for i in range(steps):
            hotmess.action("get_order", {"order_id": i}, tool(i))

    loops = {"none": agent_none, "bare": agent_bare, "hotmess": agent_hotmess}
    samples: dict[str, list[float]] = {name: [] for name in [*loops, "hotmess+write"]}
    for fn in loops.values():  # warm-up
        for task in range(10):
            fn(task)
    hotmess.flush()
    for _ in range(repeats):
        for name, fn in loops.items():
            start = time.perf_counter()
            for task in range(runs):
                fn(task)
            samples[name].append((time.perf_counter() - start) / (runs * steps) * 1e6)
            if name == "hotmess":
                # The same loop plus waiting for the writer thread to store it all: the whole
                # cost of recording, of which the agent itself only waits for the part above.
                hotmess.flush()
                start = time.perf_counter()
                for task in range(runs):
                    fn(task)
                hotmess.flush()
                samples["hotmess+write"].append((time.perf_counter() - start) / (runs * steps) * 1e6)
    provider.shutdown()
    med = {name: statistics.median(v) for name, v in samples.items()}
    spread = {name: (min(v), max(v)) for name, v in samples.items()}
    return {
        "per_step_us": med,
        "spread_us": spread,
        "ratio_hotmess_vs_bare": med["hotmess"] / med["bare"],
        "ratio_bare_vs_none": med["bare"] / med["none"],
        "ratio_hotmess_with_write_vs_bare": med["hotmess+write"] / med["bare"],
        "runs": runs,
        "steps_per_run": steps,
        "repeats": repeats,
        "stats": vars(hotmess.stats()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hotmess.configure(db=Path(tmp) / "bench.db")
        result = measure(args.runs, args.steps, args.repeats)
        hotmess.shutdown()
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    med, spread = result["per_step_us"], result["spread_us"]
    print(f"per-step cost, median of {args.repeats} repeats of {args.runs} runs x {args.steps} steps")
    for name in ("none", "bare", "hotmess", "hotmess+write"):
        lo, hi = spread[name]
        print(f"  {name:14s} {med[name]:8.2f} µs   (min {lo:.2f}, max {hi:.2f})")
    print(f"  hotmess / bare OpenTelemetry span, on the agent's path: {result['ratio_hotmess_vs_bare']:.2f}x (target <= 1.5x)")
    print(f"  hotmess including the background SQLite write / bare: {result['ratio_hotmess_with_write_vs_bare']:.2f}x")
    print(f"  spans written {result['stats']['written']}, dropped {result['stats']['dropped']}, failed {result['stats']['failed']}")


if __name__ == "__main__":
    main()
