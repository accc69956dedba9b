"""How `horizon`, `goals` and `drift` grow with the number of stored steps.

The store is the one bench/analyze_scale.py generates (imported, not copied: N/100 tasks, 20
tool steps per run, coherent and scattered failures, reference actions), written with the
importer's writer. That generator leaves every start time and token count at 0, so before
measuring, each run is given (one UPDATE pass, timed as "prepare", not measured):

- a start time, spread evenly over 30 days in run order, so `drift --window 1d` has 30 windows;
- a token count: per task a base drawn from 1k-10k, per run ±50% of it, so
  `horizon --length tokens` has lengths to sort (every run has 20 steps).

Then each command runs end to end in its own fresh subprocess (connect, read what the CLI
command reads, analyze; peak RSS of that process alone, from /proc/self/status VmHWM), `--repeats` times per size; medians
are reported, with the growth between the smallest and the largest size:

- horizon: read_for_analysis(with_steps=False), horizon(length="tokens", groups=5);
- drift:   read_for_analysis(with_steps=False), drift(window="1d");
- goals:   read_runs + read_goal_steps, goal_coherence(align="index") (as `hotmess goals`).

    .venv/bin/python bench/overtime_scale.py [--runs 500,5000,50000,100000] [--repeats 3] [--json]

Default sizes: 10k, 100k and 1M steps (500, 5,000 and 50,000 runs) and 100k runs of 20 steps.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analyze_scale import generate  # noqa: E402  (the shared synthetic store)

TARGET_SECONDS = 30.0  # per command, end to end, at 1M steps (and reported at 2M)
TARGET_MB = 2048.0
TARGET_STEPS = 1_000_000
COMMANDS = ("horizon", "drift", "goals")
DAY_NS = 86_400 * 10**9
JAN_1 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


def prepare(db: Path, seed: int = 0) -> float:
    """Give the generated runs start times over 30 days and token counts (see the docstring)."""
    import sqlite3

    start = time.perf_counter()
    conn = sqlite3.connect(db)
    ids = [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
    tasks = [r[0] for r in conn.execute("SELECT task_id FROM runs ORDER BY run_id")]
    rng = np.random.default_rng(seed)
    task_codes = np.unique(np.asarray(tasks, dtype=object), return_inverse=True)[1]
    base = rng.integers(1_000, 10_000, task_codes.max() + 1)
    tokens = (base[task_codes] * rng.uniform(0.5, 1.5, len(ids))).astype(np.int64)
    starts = JAN_1 + (np.arange(len(ids)) * (30 * DAY_NS // max(len(ids), 1))).astype(np.int64)
    with conn:
        conn.executemany(
            "UPDATE runs SET start_ns = ?, input_tokens = ?, output_tokens = 0 WHERE run_id = ?",
            zip(starts.tolist(), tokens.tolist(), ids, strict=True),
        )
    conn.close()
    return time.perf_counter() - start


def peak_mb() -> float:
    """This process's peak RSS. VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over
    fork and exec, so a child would report at least the RSS of the parent that generated the
    store."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_once(db: Path, command: str) -> dict:
    """One command end to end in this process; its peak RSS."""
    from hotmess.store.database import connect
    from hotmess.store.readers import read_for_analysis

    t0 = time.perf_counter()
    conn = connect(db, create=False)
    value: float | None = None
    if command == "goals":
        try:
            from hotmess.analyzers.goals import goal_coherence
            from hotmess.store.readers import read_goal_steps, read_runs
        except ImportError:  # hook: hotmess.analyzers.goals not in this checkout
            return {"skipped": "hotmess.analyzers.goals is not available"}
        runs = read_runs(conn, columns=("run_id", "task_id", "status", "reference"))
        steps = read_goal_steps(conn)
        t1 = time.perf_counter()
        result = goal_coherence(runs, steps, align="index")
        value = result.to_dict().get("goal_drift", {}).get("mean_slope")
        n_steps = len(steps)
    else:
        runs, _ = read_for_analysis(conn, with_steps=False)
        t1 = time.perf_counter()
        if command == "horizon":
            from hotmess.analyzers.horizon import horizon

            value = horizon(runs, length="tokens").slope
        else:
            from hotmess.analyzers.drift import drift

            result = drift(runs, window="1d")
            value = float(result.n_changed)
        n_steps = int(runs["n_steps"].sum())
    t2 = time.perf_counter()
    conn.close()
    return {
        "runs": len(runs), "steps": n_steps, "read_s": t1 - t0, "analyze_s": t2 - t1,
        "total_s": t2 - t0, "peak_mb": peak_mb(),
        "value": value,
    }


def measure(db: Path, command: str, repeats: int) -> dict:
    samples = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--measure", str(db), "--command", command],
                             check=True, capture_output=True, text=True)
        samples.append(json.loads(out.stdout))
    if "skipped" in samples[0]:
        return samples[0]
    result = {k: statistics.median(s[k] for s in samples) for k in ("read_s", "analyze_s", "total_s", "peak_mb")}
    result["spread_total_s"] = (min(s["total_s"] for s in samples), max(s["total_s"] for s in samples))
    result.update({k: samples[0][k] for k in ("runs", "steps", "value")})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="500,5000,50000,100000", help="comma-separated run counts")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--commands", default=",".join(COMMANDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement subprocess
    parser.add_argument("--command", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        json.dump(measure_once(Path(args.measure), args.command), sys.stdout)
        return

    sizes = [int(x) for x in args.runs.split(",") if x.strip()]
    commands = [c for c in args.commands.split(",") if c.strip()]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            db = Path(tmp) / f"overtime-{n}.db"
            written = generate(db, n, args.steps, args.seed)
            prepare_s = prepare(db, args.seed)
            row = {"n": n, "runs": written["runs"], "steps": written["steps"], "tasks": written["tasks"],
                   "write_s": written["write_s"], "prepare_s": prepare_s, "commands": {}}
            for command in commands:
                row["commands"][command] = measure(db, command, args.repeats)
            results.append(row)
            db.unlink()
    report: dict = {"steps_per_run": args.steps, "repeats": args.repeats, "sizes": results,
                    "targets": {"steps": TARGET_STEPS, "total_s": TARGET_SECONDS, "peak_mb": TARGET_MB}}
    if len(results) > 1:
        small, large = results[0], results[-1]
        report["growth"] = {
            "steps_ratio": large["steps"] / small["steps"],
            **{c: {"time_ratio": large["commands"][c]["total_s"] / small["commands"][c]["total_s"],
                   "memory_ratio": large["commands"][c]["peak_mb"] / small["commands"][c]["peak_mb"]}
               for c in commands if "skipped" not in small["commands"][c]},
        }
    at_target = next((r for r in results if r["steps"] == TARGET_STEPS), None)
    if at_target is not None:
        report["meets_targets"] = {
            c: {"time": m["total_s"] < TARGET_SECONDS, "memory": m["peak_mb"] < TARGET_MB}
            for c, m in at_target["commands"].items() if "skipped" not in m
        }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return

    print(f"end to end per command (connect + read + analyze), median of {args.repeats} fresh processes, "
          f"{args.steps} tool steps per run")
    print(f"  {'command':<8s} {'runs':>8s} {'steps':>10s} {'read s':>8s} {'analyze s':>10s} {'total s':>8s} {'peak MB':>8s}")
    for r in results:
        for c, m in r["commands"].items():
            if "skipped" in m:
                print(f"  {c:<8s} {r['runs']:>8d} {r['steps']:>10d}  skipped: {m['skipped']}")
                continue
            print(f"  {c:<8s} {r['runs']:>8d} {r['steps']:>10d} {m['read_s']:>8.2f} {m['analyze_s']:>10.2f} "
                  f"{m['total_s']:>8.2f} {m['peak_mb']:>8.0f}")
    if "growth" in report:
        g = report["growth"]
        for c in commands:
            if c in g:
                print(f"  growth {c}: {g['steps_ratio']:.0f}x steps -> time {g[c]['time_ratio']:.1f}x, "
                      f"peak memory {g[c]['memory_ratio']:.1f}x")
    if at_target is not None:
        for c, ok in report["meets_targets"].items():
            m = at_target["commands"][c]
            print(f"  {c} at 1M steps: {m['total_s']:.1f} s (target < {TARGET_SECONDS:.0f} s: "
                  f"{'met' if ok['time'] else 'MISSED'}), {m['peak_mb']:.0f} MB "
                  f"(target < {TARGET_MB:.0f} MB: {'met' if ok['memory'] else 'MISSED'})")
    print("  (write s / prepare s: generating the store, not part of the measurement)")


if __name__ == "__main__":
    main()
