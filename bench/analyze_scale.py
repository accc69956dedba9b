"""How reading and analyzing grow with the number of stored runs.

For each N (default 500, 5,000 and 50,000 runs of 20 tool steps: 10k, 100k and 1M steps) a synthetic, seeded store is
generated and written with the importer's writer (timed separately as "write", not part of
the measurement): N/100 tasks, each with its own success rate and its own way of failing
(coherent: the same wrong state-changing call every time; scattered: a different one each
time), reference actions, and 20 tool steps per run (read-only ``get_*``/``list_*`` calls and
the run's state-changing ``update_*``/``cancel_*`` calls).

Then, in a fresh subprocess per measurement (so peak RSS is that of the analysis alone):
connect, read_for_analysis (what `hotmess analyze` reads), analyze(outcome="actions") and
analyze() (exact), each phase timed. Three subprocesses per N; medians reported, with the
growth ratio between the largest and smallest N (linear = the ratio of N).

    .venv/bin/python bench/analyze_scale.py [--runs 500,5000,50000] [--steps 20] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb  # noqa: E402

TARGET_SECONDS = 30.0  # 1M steps, end to end
TARGET_STEPS = 1_000_000
TARGET_MB = 2048.0
CHUNK = 5000  # runs per insert_runs call (bounds the generator's own memory)

READ_TOOLS = ("get_order", "get_user", "list_items", "get_product", "search_orders")
WRITE_TOOLS = ("update_order", "cancel_order", "update_address", "update_payment")


def _action(name: str, **kwargs: object) -> dict:
    return {"name": name, "kwargs": kwargs}


def generate(db: Path, n_runs: int, n_steps: int, seed: int = 0) -> dict:
    """Write n_runs synthetic runs (n_steps tool steps each) to a fresh database at db."""
    from hotmess.store.database import connect
    from hotmess.store.writer import insert_runs
    from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS

    rng = np.random.default_rng(seed)
    n_tasks = max(1, n_runs // 100)
    rate = rng.uniform(0.2, 0.9, n_tasks)
    coherent = rng.random(n_tasks) < 0.5
    references = [[_action("update_order", order_id=t, status="shipped")] for t in range(n_tasks)]
    coherent_miss = [[_action("cancel_order", order_id=t, reason="customer")] for t in range(n_tasks)]
    source_file = db.with_suffix(".source.txt")
    source_file.write_text(f"synthetic analyze_scale runs={n_runs} steps={n_steps} seed={seed}\n")

    conn = connect(db)
    start = time.perf_counter()
    n_written = 0
    for lo in range(0, n_runs, CHUNK):
        hi = min(n_runs, lo + CHUNK)
        size = hi - lo
        task = np.arange(lo, hi) % n_tasks
        instance = np.arange(lo, hi) // n_tasks
        success = rng.random(size) < rate[task]
        scatter_tool = rng.integers(0, len(WRITE_TOOLS), size)
        scatter_value = rng.integers(0, 1000, size)
        read_tool = rng.integers(0, len(READ_TOOLS), (size, n_steps))
        read_arg = rng.integers(0, 50, (size, n_steps))
        runs: list[dict] = []
        steps: list[dict] = []
        for k in range(size):
            t = int(task[k])
            run_id = f"bench-{n_runs}-{lo + k:07d}"
            if success[k]:
                actions = references[t]
            elif coherent[t]:
                actions = coherent_miss[t]
            else:
                actions = [_action(WRITE_TOOLS[scatter_tool[k]], order_id=t, value=int(scatter_value[k]))]
            n_read = n_steps - len(actions)
            calls = [(READ_TOOLS[read_tool[k, j]], {"id": int(read_arg[k, j])}) for j in range(n_read)]
            calls += [(a["name"], a["kwargs"]) for a in actions]
            for j, (tool, args) in enumerate(calls):
                steps.append({
                    "run_id": run_id, "span_id": f"{lo + k:07d}{j:04d}", "parent_span_id": None,
                    "step_index": j, "depth": 1, "kind": "tool", "name": f"execute_tool {tool}",
                    "tool": tool, "input": json.dumps(args), "output": '{"ok": true}', "goal": None,
                    "error": None, "start_ns": 0, "end_ns": 0, "input_tokens": 0, "output_tokens": 0,
                    "model": None,
                })
            runs.append({
                "run_id": run_id, "task_id": f"task-{t:05d}", "agent": "bench", "instance": str(int(instance[k])),
                "source": "bench", "status": "ok", "start_ns": 0, "end_ns": 0,
                "outcome": json.dumps(actions), "success": float(success[k]),
                "reference": json.dumps(references[t]), "score": float(success[k]), "error": None,
                "n_steps": len(calls), "n_tool_calls": len(calls), "n_llm_calls": 0, "n_errors": 0,
                "input_tokens": 0, "output_tokens": 0, "attributes": None,
            })
        assert set(runs[0]) == set(RUN_COLUMNS) and set(steps[0]) == set(STEP_COLUMNS)
        insert_runs(conn, runs, steps, source="bench", path=source_file)
        n_written += size
    conn.close()
    return {"runs": n_written, "steps": n_written * n_steps, "tasks": n_tasks, "write_s": time.perf_counter() - start}


def measure_once(db: Path) -> dict:
    """End to end in this process: connect, read, analyze twice. Peak RSS of this process."""
    from hotmess.analyzers import analyze
    from hotmess.store.database import connect
    from hotmess.store.readers import read_for_analysis

    t0 = time.perf_counter()
    conn = connect(db, create=False)
    runs, steps = read_for_analysis(conn)
    t1 = time.perf_counter()
    actions = analyze(runs, steps, outcome="actions")
    t2 = time.perf_counter()
    exact = analyze(runs)
    t3 = time.perf_counter()
    conn.close()
    return {
        "runs": len(runs), "steps": len(steps),
        "read_s": t1 - t0, "analyze_actions_s": t2 - t1, "analyze_exact_s": t3 - t2, "total_s": t3 - t0,
        "peak_mb": peak_rss_mb(),
        "incoherence_actions": actions.incoherence.value,
        "incoherence_exact": exact.incoherence.value,
    }


def measure(db: Path, repeats: int) -> dict:
    samples = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--measure", str(db)],
                             check=True, capture_output=True, text=True)
        samples.append(json.loads(out.stdout))
    keys = ("read_s", "analyze_actions_s", "analyze_exact_s", "total_s", "peak_mb")
    result = {k: statistics.median(s[k] for s in samples) for k in keys}
    result["spread_total_s"] = (min(s["total_s"] for s in samples), max(s["total_s"] for s in samples))
    result.update({k: samples[0][k] for k in ("runs", "steps", "incoherence_actions", "incoherence_exact")})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="500,5000,50000", help="comma-separated run counts")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement subprocess
    args = parser.parse_args()
    if args.measure:
        json.dump(measure_once(Path(args.measure)), sys.stdout)
        return

    sizes = [int(x) for x in args.runs.split(",") if x.strip()]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            db = Path(tmp) / f"scale-{n}.db"
            written = generate(db, n, args.steps, args.seed)
            row = measure(db, args.repeats)
            row.update(tasks=written["tasks"], write_s=written["write_s"], n=n)
            results.append(row)
    report: dict = {"steps_per_run": args.steps, "repeats": args.repeats, "sizes": results,
                    "targets": {"steps": TARGET_STEPS, "total_s": TARGET_SECONDS, "peak_mb": TARGET_MB}}
    if len(results) > 1:
        small, large = results[0], results[-1]
        report["growth"] = {
            "runs_ratio": large["n"] / small["n"],
            "time_ratio": large["total_s"] / small["total_s"],
            "memory_ratio": large["peak_mb"] / small["peak_mb"],
        }
    at_target = next((r for r in results if r["steps"] == TARGET_STEPS), None)
    if at_target is not None:
        report["meets_targets"] = {"time": at_target["total_s"] < TARGET_SECONDS,
                                   "memory": at_target["peak_mb"] < TARGET_MB}
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return

    print(f"end to end (connect + read + analyze actions + analyze exact), median of {args.repeats} "
          f"fresh processes, {args.steps} tool steps per run")
    print(f"  {'runs':>8s} {'steps':>10s} {'tasks':>6s} {'write s':>8s} {'read s':>8s} "
          f"{'actions s':>10s} {'exact s':>8s} {'total s':>8s} {'peak MB':>8s}")
    for r in results:
        print(f"  {r['runs']:>8d} {r['steps']:>10d} {r['tasks']:>6d} {r['write_s']:>8.2f} {r['read_s']:>8.2f} "
              f"{r['analyze_actions_s']:>10.2f} {r['analyze_exact_s']:>8.2f} {r['total_s']:>8.2f} {r['peak_mb']:>8.0f}")
    if "growth" in report:
        g = report["growth"]
        print(f"  growth {results[-1]['n']}/{results[0]['n']} runs ({g['runs_ratio']:.0f}x; linear = {g['runs_ratio']:.0f}x): "
              f"time {g['time_ratio']:.1f}x, peak memory {g['memory_ratio']:.1f}x")
    if at_target is not None:
        ok = report["meets_targets"]
        print(f"  {at_target['runs']} runs ({at_target['steps']} steps): total {at_target['total_s']:.1f} s (target < {TARGET_SECONDS:.0f} s: "
              f"{'met' if ok['time'] else 'MISSED'}), peak {at_target['peak_mb']:.0f} MB "
              f"(target < {TARGET_MB:.0f} MB: {'met' if ok['memory'] else 'MISSED'})")
    print("  (write s: generating and storing the runs, not part of the measurement)")


if __name__ == "__main__":
    main()
