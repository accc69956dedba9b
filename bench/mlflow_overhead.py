"""Cost of one traced step: hotmess vs MLflow tracing, side by side in one process.

The same agent loop (a run of STEPS steps, one traced tool call per step) three ways,
interleaved repeat by repeat so machine noise hits all alike:

- none:    no tracing
- bare:    a bare OpenTelemetry SDK span per step (no-op exporter): the floor under hotmess
- hotmess: @hotmess.trace on the run, @hotmess.step(kind="tool") on the tool, to SQLite
- mlflow:  @mlflow.trace on the run and on the tool, to a local SQLite tracking store
           (tracking URI sqlite:///...)

Each traced loop is measured twice: on the agent's path (what the agent waits for), and
including the write (the loop, then waiting until everything is in SQLite:
hotmess.flush(), mlflow.flush_trace_async_logging()). Both libraries write from a
background thread by default; waiting for it makes the comparison about stored traces.
After the run, the stored traces are counted in both databases to check they were written.

Peers are not hotmess dependencies: run it in the benchmark environment, where mlflow is
installed (`make bench` builds .venv-bench):

    .venv-bench/bin/python bench/mlflow_overhead.py [--repeats 7] [--runs 20] [--steps 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summary  # noqa: E402

TARGET_RATIO = 20.0  # hotmess at least this many times cheaper per step


def tool(order_id: int) -> dict:
    return {"order_id": order_id, "status": "ok"}


def measure(tmp: Path, runs: int, steps: int, repeats: int) -> dict:
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "true"  # its default; the write is waited for below
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow

    import hotmess

    mlflow_db = tmp / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{mlflow_db}")
    # Its trace artifacts (a traces.json per trace) go to the temporary folder too, not ./mlruns.
    mlflow.create_experiment("hotmess-bench", artifact_location=(tmp / "mlartifacts").as_uri())
    mlflow.set_experiment("hotmess-bench")
    hotmess.configure(db=tmp / "hotmess.db")

    def agent_none(task: int) -> None:
        for i in range(steps):
            tool(i)

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from step_overhead import NoopExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NoopExporter()))
    bare_tracer = provider.get_tracer("bench")

    def agent_bare(task: int) -> None:
        with bare_tracer.start_as_current_span("agent"):
            for i in range(steps):
                with bare_tracer.start_as_current_span("get_order"):
                    tool(i)

    hotmess_tool = hotmess.step("get_order", kind="tool")(tool)

    @hotmess.trace(task_id=lambda task: task, agent="bench")
    def agent_hotmess(task: int) -> None:
        for i in range(steps):
            hotmess_tool(i)

    mlflow_tool = mlflow.trace(name="get_order", span_type="TOOL")(tool)

    @mlflow.trace(name="agent", span_type="AGENT")
    def agent_mlflow(task: int) -> None:
        for i in range(steps):
            mlflow_tool(i)

    def flush_mlflow() -> None:
        mlflow.flush_trace_async_logging(terminate=False)

    loops = {
        "none": (agent_none, lambda: None),
        "bare": (agent_bare, lambda: None),
        "hotmess": (agent_hotmess, hotmess.flush),
        "mlflow": (agent_mlflow, flush_mlflow),
    }
    for fn, flush in loops.values():  # warm-up: imports, schema, first connections
        for task in range(3):
            fn(task)
        flush()
    samples: dict[str, list[float]] = {k: [] for k in ("none", "bare", "hotmess", "hotmess+write", "mlflow", "mlflow+write")}
    per_step = 1e6 / (runs * steps)
    for _ in range(repeats):
        for name, (fn, flush) in loops.items():
            flush()
            start = time.perf_counter()
            for task in range(runs):
                fn(task)
            path = time.perf_counter() - start
            flush()
            total = time.perf_counter() - start
            samples[name].append(path * per_step)
            if name not in ("none", "bare"):
                samples[f"{name}+write"].append(total * per_step)
    hotmess.flush()
    stats = vars(hotmess.stats())
    hotmess.shutdown()
    provider.shutdown()

    with sqlite3.connect(tmp / "hotmess.db") as conn:
        hotmess_traces = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        hotmess_spans = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    with sqlite3.connect(mlflow_db) as conn:
        mlflow_traces = conn.execute("SELECT count(*) FROM trace_info").fetchone()[0]
        mlflow_spans = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
    expected_traces = 3 + repeats * runs
    med = {k: summary(v) for k, v in samples.items()}
    ratio = med["mlflow"]["median"] / med["hotmess"]["median"]
    ratio_write = med["mlflow+write"]["median"] / med["hotmess+write"]["median"]
    return {
        "per_step_us": med,
        "ratio_mlflow_vs_hotmess": ratio,
        "ratio_mlflow_vs_hotmess_with_write": ratio_write,
        "ratio_mlflow_vs_bare": med["mlflow"]["median"] / med["bare"]["median"],
        "target_ratio": TARGET_RATIO,
        "target_met": min(ratio, ratio_write) >= TARGET_RATIO,
        "stored": {
            "expected_traces": expected_traces,
            "hotmess_runs": hotmess_traces, "hotmess_spans": hotmess_spans,
            "mlflow_traces": mlflow_traces, "mlflow_spans": mlflow_spans,
        },
        "hotmess_stats": stats,
        "mlflow_version": mlflow.__version__,
        "runs": runs, "steps_per_run": steps, "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp), args.runs, args.steps, args.repeats)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    med = result["per_step_us"]
    print(f"per-step cost, median of {args.repeats} repeats of {args.runs} runs x {args.steps} steps "
          f"(mlflow {result['mlflow_version']})")
    for name, s in med.items():
        print(f"  {name:14s} {s['median']:10.1f} µs   (IQR {s['q1']:.1f}-{s['q3']:.1f})")
    print(f"  mlflow / hotmess on the agent's path: {result['ratio_mlflow_vs_hotmess']:.1f}x; "
          f"including the write: {result['ratio_mlflow_vs_hotmess_with_write']:.1f}x (target >= {TARGET_RATIO:.0f}x)")
    print(f"  stored: {result['stored']}")


if __name__ == "__main__":
    main()
