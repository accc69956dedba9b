"""The Dask engine in local mode against the local path, at 1M steps and as the data grows.

A synthetic, seeded store (bench/analyze_scale.py's generator: N runs of 20 tool steps, N/100
tasks, each with its own success rate and way of failing; default 50,000 runs = 1M steps), its
runs given start times over 30 days, exported with ``hotmess export parquet`` (timed as
"export", not part of the measurement). Then, each in a fresh subprocess (so peak RSS is that
of the measurement alone), repeated and reported as medians:

- ``local``: ``hotmess.open(db).analyze()`` and ``analyze(outcome="actions")``: read from
  SQLite, analyze in one process;
- ``dask``: ``hotmess.engine.analyze(DIR)`` and ``(DIR, outcome="actions")`` on a
  ``LocalCluster`` of 2 single-threaded worker processes (the cluster's start is timed apart);
  peak RSS of the driver and of the largest worker.

Both must give the same incoherence (checked).

With several sizes (``--runs 50000,100000,250000,500000``: 1M, 2M, 5M, 10M steps) each size is
measured in turn (``--repeats`` at the first size, ``--large-repeats`` above it) and the report
gives, per size, the engine's time and driver/worker peak memory and the local path's where it
is measured (up to ``--local-max`` runs), with the growth between sizes. Per-task costs are
measured at each size too: Parquet bytes per task (what the shuffle by task moves: the runs
columns, and for outcome=actions the tool steps), and the pickled size of one task's figures
(what each task sends to the driver), from which BENCHMARKS.md works out a cluster on paper.

    .venv/bin/python bench/engine.py [--runs 50000[,100000,...]] [--steps 20] [--repeats 3]
        [--large-repeats 1] [--local-max 500000] [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb  # noqa: E402

DAY_NS = 86_400 * 10**9
START_NS = 1_767_225_600 * 10**9  # 2026-01-01


def prepare(tmp: Path, n_runs: int, n_steps: int, seed: int) -> dict:
    """The synthetic store at tmp/bench.db and its Parquet export at tmp/parquet."""
    from analyze_scale import generate

    import hotmess
    from hotmess.store.database import connect

    db = tmp / "bench.db"
    written = generate(db, n_runs, n_steps, seed)
    conn = connect(db)
    with conn:  # start times over 30 days, so the export has a file per day
        conn.execute("UPDATE runs SET start_ns = ? + (rowid % 30) * ? + rowid, end_ns = ? + (rowid % 30) * ? + rowid + 1",
                     (START_NS, DAY_NS, START_NS, DAY_NS))
    conn.close()
    t0 = time.perf_counter()
    with hotmess.open(db) as store:
        report = store.export_parquet(tmp / "parquet")
    written.update(export_s=time.perf_counter() - t0, files=report.files, days=len(report.days))
    return written


def per_task_costs(source: Path, tasks: int) -> dict:
    """Bytes per task: Parquet runs and steps (the shuffle's input), one task's pickled figures
    (exact and actions) and its steps packed per run (actions)."""
    import pickle

    from hotmess.analyzers.analysis import analysis_options, task_figures
    from hotmess.parquet import read_parquet_runs, read_parquet_steps

    def size(part: str) -> int:
        return sum(f.stat().st_size for f in (source / part).glob("day=*/*.parquet"))

    runs = read_parquet_runs(source, task_id="task-00000")
    steps = read_parquet_steps(source, kinds=["tool"], run_ids=runs["run_id"].tolist())
    exact = task_figures(runs, None, analysis_options())
    actions = task_figures(runs, steps, analysis_options(outcome="actions"))
    return {"runs_parquet_bytes_per_task": size("runs") / tasks, "steps_parquet_bytes_per_task": size("steps") / tasks,
            "figures_bytes_per_task_exact": len(pickle.dumps(exact)),
            "figures_bytes_per_task_actions": len(pickle.dumps(actions)),
            "runs_per_task": len(runs), "steps_per_task": len(steps)}


def measure_local(db: Path) -> dict:
    import hotmess

    t0 = time.perf_counter()
    with hotmess.open(db) as store:
        exact = store.analyze()
        t1 = time.perf_counter()
        actions = store.analyze(outcome="actions")
    t2 = time.perf_counter()
    return {"exact_s": t1 - t0, "actions_s": t2 - t1, "total_s": t2 - t0, "peak_mb": peak_rss_mb(),
            "incoherence_exact": exact.incoherence.value, "incoherence_actions": actions.incoherence.value}


def _worker_peak_mb() -> float:
    from _common import peak_rss_mb as peak

    return peak()


def measure_dask(source: Path, workers: int) -> dict:
    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    from hotmess.engine import analyze
    from hotmess.engine.dask_engine import connect

    t0 = time.perf_counter()
    client = connect(n_workers=workers, processes=True)
    client.run(sys.path.insert, 0, str(Path(__file__).resolve().parent))
    t1 = time.perf_counter()
    exact = analyze(source, client=client)
    t2 = time.perf_counter()
    actions = analyze(source, client=client, outcome="actions")
    t3 = time.perf_counter()
    worker_peaks = list(client.run(_worker_peak_mb).values())
    cluster = client.cluster
    client.close()
    cluster.close()
    return {"cluster_start_s": t1 - t0, "exact_s": t2 - t1, "actions_s": t3 - t2, "total_s": t3 - t1,
            "peak_mb": peak_rss_mb(), "worker_peak_mb": max(worker_peaks),
            "incoherence_exact": exact.incoherence.value, "incoherence_actions": actions.incoherence.value}


def measure(kind: str, path: Path, repeats: int, workers: int) -> dict:
    samples = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--measure", kind, str(path), "--workers", str(workers)],
                             check=True, capture_output=True, text=True)
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = [k for k in samples[0] if k.endswith("_s") or k.endswith("_mb")]
    result = {k: statistics.median(s[k] for s in samples) for k in keys}
    result["spread_total_s"] = (min(s["total_s"] for s in samples), max(s["total_s"] for s in samples))
    result.update({k: samples[0][k] for k in ("incoherence_exact", "incoherence_actions")})
    return result


def one_size(n_runs: int, args: argparse.Namespace, repeats: int, with_local: bool) -> dict:
    """Prepare, measure (local only when ``with_local``) and report one size."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        written = prepare(tmp_path, n_runs, args.steps, args.seed)
        costs = per_task_costs(tmp_path / "parquet", written["tasks"])
        local = measure("local", tmp_path / "bench.db", repeats, args.workers) if with_local else None
        dask = measure("dask", tmp_path / "parquet", repeats, args.workers)
    same = None if local is None else all(
        abs(local[k] - dask[k]) <= 1e-9 for k in ("incoherence_exact", "incoherence_actions"))
    report = {"runs": written["runs"], "steps": written["steps"], "tasks": written["tasks"],
              "files": written["files"], "days": written["days"], "write_s": written["write_s"],
              "export_s": written["export_s"], "repeats": repeats, "workers": args.workers,
              "local": local, "dask": dask, "same_incoherence": same, "per_task": costs}
    if local is not None:
        report["time_ratio_dask_vs_local"] = dask["total_s"] / local["total_s"]
        report["driver_memory_ratio_dask_vs_local"] = dask["peak_mb"] / local["peak_mb"]
    return report


def _print(report: dict) -> None:
    local, dask = report["local"], report["dask"]
    print(f"{report['runs']:,} runs, {report['steps']:,} steps, {report['tasks']} tasks; export to Parquet "
          f"{report['export_s']:.1f} s ({report['files']} files); medians of {report['repeats']} fresh processes")
    print(f"  {'path':<28s} {'exact s':>8s} {'actions s':>10s} {'total s':>8s} {'peak MB':>8s} {'worker MB':>10s}")
    if local is not None:
        print(f"  {'local (SQLite, 1 process)':<28s} {local['exact_s']:>8.2f} {local['actions_s']:>10.2f} "
              f"{local['total_s']:>8.2f} {local['peak_mb']:>8.0f} {'':>10s}")
    name = f"dask ({report['workers']} worker processes)"
    print(f"  {name:<28s} {dask['exact_s']:>8.2f} "
          f"{dask['actions_s']:>10.2f} {dask['total_s']:>8.2f} {dask['peak_mb']:>8.0f} {dask['worker_peak_mb']:>10.0f}")
    print(f"  (cluster start {dask['cluster_start_s']:.1f} s, not in total); same incoherence: "
          f"{report['same_incoherence']}; per task: {report['per_task']}")


def growth(sizes: list[dict], path: str, key: str) -> list[dict]:
    """``key`` of ``path`` from each measured size to the next, against the growth in steps."""
    measured = [s for s in sizes if s[path] is not None]
    return [{"from_steps": a["steps"], "to_steps": b["steps"], "steps_x": b["steps"] / a["steps"],
             f"{key}_x": b[path][key] / a[path][key]} for a, b in zip(measured, measured[1:], strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="50000", help="runs per size, comma-separated")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-repeats", type=int, default=1, help="repeats above the first size")
    parser.add_argument("--local-max", type=int, default=500000, help="the most runs the local path is measured at")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--log", type=Path, help="append each size's report to this file as it is measured (JSON lines)")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # internal: KIND PATH
    args = parser.parse_args()
    if args.measure:
        kind, path = args.measure
        result = measure_local(Path(path)) if kind == "local" else measure_dask(Path(path), args.workers)
        print(json.dumps(result))
        return

    runs = [int(r) for r in str(args.runs).split(",")]
    sizes = []
    for i, n in enumerate(runs):
        sizes.append(one_size(n, args, args.repeats if i == 0 else args.large_repeats, n <= args.local_max))
        if args.log:
            with open(args.log, "a") as log:
                log.write(json.dumps(sizes[-1]) + "\n")
        if not args.json:
            _print(sizes[-1])
    report = dict(sizes[0])  # the first size is the headline (BENCHMARKS.md's table)
    if len(sizes) > 1:
        report["sizes"] = sizes
        report["growth"] = {f"{path}_{key}": growth(sizes, path, key)
                            for path in ("dask", "local") for key in ("total_s", "peak_mb")}
        report["growth"]["dask_worker_peak_mb"] = growth(sizes, "dask", "worker_peak_mb")
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    elif len(sizes) > 1:
        print(json.dumps(report["growth"], indent=1))


if __name__ == "__main__":
    main()
