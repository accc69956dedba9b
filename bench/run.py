"""Run every benchmark in bench/ and write BENCHMARKS.md (what `make bench` does).

Each benchmark is a standalone script that prints one JSON object with ``--json``; it runs
here as a subprocess with a timeout, and a failure (crash, timeout, unexpected JSON) becomes
"failed: reason" in the report instead of stopping the others. The registry below says, per
script, its arguments and how its JSON becomes rows of the target table.

Peers (MLflow) live only in the benchmark environment ``.venv-bench`` (``make bench`` builds
it): scripts marked ``peer`` run with ``--peer-python``.

    .venv/bin/python bench/run.py [--quick] [--only step_overhead,durability] [--out BENCHMARKS.md]

Every benchmark's raw JSON is kept beside the report (``BENCHMARKS.json``), with the commit and
date it was measured at. ``--only`` runs the chosen benchmarks and takes the others' figures from
that file, so the report stays whole; their sections say when they were measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, run_measured  # noqa: E402

BENCH = ROOT / "bench"


@dataclass
class Row:
    what: str
    figure: str = ""
    median: str = ""
    spread: str = ""
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: str = ""


@dataclass
class Bench:
    key: str
    title: str
    script: str
    args: list[str]
    quick: list[str]
    timeout: float
    lines: list[tuple[str, str]]  # (what, target) of its rows in the table, shown even when it fails
    rows: Callable[[dict], list[Row]]
    details: Callable[[dict], list[str]] | None = None
    limits: str = ""
    peer: bool = False
    extra: list[str] = field(default_factory=list)  # more paragraphs for its section

    def command(self, quick: bool) -> str:
        py = ".venv-bench/bin/python" if self.peer else ".venv/bin/python"
        return " ".join([py, f"bench/{self.script}", *(self.quick if quick else self.args), "--json"])


def us(x: float) -> str:
    return f"{x:,.1f} µs" if x < 1000 else f"{x / 1000:,.2f} ms"


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def at_scale(largest_steps: int, ok: bool) -> str:
    return yes(ok) if largest_steps >= TARGET_STEPS else f"— (largest size {largest_steps:,} steps)"


def _minmax(pair: list[float] | tuple[float, float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(pair[0])} – {fmt(pair[1])} (min–max)"


def _iqr(s: dict, fmt: Callable[[float], str]) -> str:
    return f"{fmt(s['q1'])} – {fmt(s['q3'])} (IQR)"


# --- step overhead: hotmess vs a bare OpenTelemetry span ---

def step_rows(d: dict) -> list[Row]:
    med, spread = d["per_step_us"], d["spread_us"]
    ratio, ratio_w = d["ratio_hotmess_vs_bare"], d["ratio_hotmess_with_write_vs_bare"]
    return [
        Row("cost of one traced step in an agent loop", "hotmess step, on the agent's path", us(med["hotmess"]),
            _minmax(spread["hotmess"], us), f"bare OTel span, no-op exporter: {us(med['bare'])}",
            f"{ratio:.2f}x", "at most 1.5x", yes(ratio <= 1.5)),
        Row("the same, including the background SQLite write", "hotmess step + waiting for the write",
            us(med["hotmess+write"]), _minmax(spread["hotmess+write"], us),
            f"bare OTel span: {us(med['bare'])}", f"{ratio_w:.2f}x", "(reported)", "—"),
    ]


def step_details(d: dict) -> list[str]:
    med, spread = d["per_step_us"], d["spread_us"]
    out = ["| loop | median per step | min – max |", "| --- | --- | --- |"]
    for name in ("none", "bare", "hotmess", "hotmess+write"):
        out.append(f"| {name} | {us(med[name])} | {us(spread[name][0])} – {us(spread[name][1])} |")
    s = d.get("stats", {})
    out += ["", f"{d['repeats']} repeats of {d['runs']} runs x {d['steps_per_run']} steps; spans written "
            f"{s.get('written')}, dropped {s.get('dropped')}, failed {s.get('failed')}."]
    return out


# --- the writer alone ---

def writer_rows(d: dict) -> list[Row]:
    s = d["cpu_us_per_span"]
    return [Row("the background writer alone, CPU per span", f"{d['spans']:,} spans in {d['batches']} batches, redaction on",
                f"{us(d['min_us_per_span'])} (min)", f"median {us(s['median'])}, max {us(s['max'])}", "—", "—",
                "(reported)", "—")]


# --- MLflow ---

def mlflow_rows(d: dict) -> list[Row]:
    med = d["per_step_us"]
    r, rw = d["ratio_mlflow_vs_hotmess"], d["ratio_mlflow_vs_hotmess_with_write"]
    stored = d["stored"]
    written = stored["mlflow_traces"] == stored["expected_traces"] == stored["hotmess_runs"]
    note = "" if written else f" (traces stored: mlflow {stored['mlflow_traces']}, hotmess {stored['hotmess_runs']} of {stored['expected_traces']})"
    return [
        Row("the same, vs MLflow tracing (on the agent's path)", "hotmess step (decorator)", us(med["hotmess"]["median"]),
            _iqr(med["hotmess"], us), f"`@mlflow.trace` to SQLite: {us(med['mlflow']['median'])}",
            f"{r:.1f}x cheaper", "at least 20x cheaper", yes(r >= 20) + note),
        Row("the same, vs MLflow, including the write to SQLite", "hotmess step + write", us(med["hotmess+write"]["median"]),
            _iqr(med["hotmess+write"], us), f"MLflow + write: {us(med['mlflow+write']['median'])}",
            f"{rw:.1f}x cheaper", "at least 20x cheaper", yes(rw >= 20) + note),
    ]


def mlflow_details(d: dict) -> list[str]:
    out = ["| loop | median per step | IQR | min – max |", "| --- | --- | --- | --- |"]
    for name, s in d["per_step_us"].items():
        out.append(f"| {name} | {us(s['median'])} | {us(s['q1'])} – {us(s['q3'])} | {us(s['min'])} – {us(s['max'])} |")
    st = d["stored"]
    if "ratio_mlflow_vs_bare" in d:
        out += ["", f"MLflow on the agent's path / a bare OpenTelemetry SDK span: {d['ratio_mlflow_vs_bare']:.1f}x "
                "(the most any SDK-span-based tracer could be cheaper on the agent's path)."]
    out += ["", f"MLflow {d['mlflow_version']}; {d['repeats']} repeats of {d['runs']} runs x {d['steps_per_run']} steps. "
            f"Stored at the end: MLflow {st['mlflow_traces']} traces / {st['mlflow_spans']} spans, hotmess "
            f"{st['hotmess_runs']} runs / {st['hotmess_spans']} spans (expected {st['expected_traces']} traces each)."]
    return out


# --- LangChain ---

def langchain_rows(d: dict) -> list[Row]:
    med, spread = d["per_step_us"], d.get("spread_us", {})
    r = d["ratio_hotmess_vs_none"]
    rw = d.get("ratio_hotmess_with_write_vs_none")
    rows = [Row("the same, through the LangChain handler", "LangChain step with hotmess handler", us(med["hotmess"]),
                _minmax(spread["hotmess"], us) if "hotmess" in spread else "",
                f"no callbacks: {us(med['none'])}", f"{r:.2f}x (+{d['added_us_per_step']:.0f} µs)", "report the ratio", "—")]
    if rw is not None:
        rows.append(Row("the same, LangChain, including the write", "handler + waiting for the write",
                        us(med["hotmess+write"]), _minmax(spread["hotmess+write"], us) if "hotmess+write" in spread else "",
                        f"no callbacks: {us(med['none'])}", f"{rw:.2f}x", "report the ratio", "—"))
    return rows


def langchain_details(d: dict) -> list[str]:
    med, spread = d["per_step_us"], d.get("spread_us", {})
    out = ["| loop | median per step | min – max |", "| --- | --- | --- |"]
    for name, v in med.items():
        mm = spread.get(name)
        out.append(f"| {name} | {us(v)} | {us(mm[0]) + ' – ' + us(mm[1]) if mm else ''} |")
    out += ["", f"{d.get('repeats')} repeats of {d.get('runs')} agent runs x {d.get('steps_per_run')} LangChain steps; "
            f"hotmess / a do-nothing handler: {d.get('ratio_hotmess_vs_noop', float('nan')):.2f}x."]
    return out


# --- import throughput ---

def import_rows(d: dict) -> list[Row]:
    target = d.get("target_ratio", 0.5)
    rows = []
    for r in d["results"]:
        rows.append(Row(f"import throughput, {r['input']}", f"{r['spans']:,} spans via `hotmess import {'tau-bench' if r['input'] == 'tau-bench' else 'otlp'}`",
                        f"{r['import_spans_per_s']:,} spans/s", f"{r['repeats']} repeats (median)",
                        f"`sqlite3.executemany` of the same rows: {r['limit_spans_per_s']:,} spans/s",
                        f"{r['ratio']:.2f} of the limit (CPU {r['cpu_ratio']:.2f})", f"at least {target:g} of the limit",
                        yes(r["ratio"] >= target)))
    return rows


def import_details(d: dict) -> list[str]:
    out = ["| input | spans | runs | file MB | import s | limit s | import spans/s | limit spans/s | ratio | CPU ratio |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in d["results"]:
        out.append(f"| {r['input']} | {r['spans']:,} | {r['runs']:,} | {r['file_mb']} | {r['import_s']} | {r['limit_s']} | "
                   f"{r['import_spans_per_s']:,} | {r['limit_spans_per_s']:,} | {r['ratio']} | {r['cpu_ratio']} |")
    return out


# --- analyze at scale ---

TARGET_S, TARGET_MB, TARGET_STEPS = 30.0, 2048.0, 1_000_000


def _growth(sizes: list[dict], key_steps: str, key_value: str, within: str | None = None) -> str:
    """Growth of key_value (of each size's ``within`` part) from each size to the next, against
    the growth in steps (linear: the same factor)."""
    parts = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        va, vb = (a[key_value], b[key_value]) if within is None else (a[within][key_value], b[within][key_value])
        parts.append(f"{vb / va:.1f}x over {b[key_steps] / a[key_steps]:.0f}x steps")
    return ", ".join(parts) or "one size only"


def _counts(values) -> str:  # noqa: ANN001
    return ", ".join(f"{v:,}" for v in values)


def analyze_rows(d: dict) -> list[Row]:
    sizes = sorted(d["sizes"], key=lambda r: r["steps"])
    largest = sizes[-1]
    ok = largest["total_s"] < TARGET_S and largest["peak_mb"] < TARGET_MB
    lo, hi = largest["spread_total_s"]
    return [Row(f"`analyze` on {_counts(r['steps'] for r in sizes)} steps",
                f"{largest['steps']:,} steps ({largest['runs']:,} runs), end to end from SQLite",
                f"{largest['total_s']:.1f} s, peak {largest['peak_mb']:,.0f} MB", f"{lo:.1f} – {hi:.1f} s (min–max)",
                "—", "time " + _growth(sizes, "steps", "total_s"),
                "1M steps under 30 s and 2 GB, linear", at_scale(largest["steps"], ok))]


def analyze_details(d: dict) -> list[str]:
    out = ["| runs | steps | read s | analyze (actions) s | analyze (exact) s | total s | min – max s | peak MB | (write s) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(d["sizes"], key=lambda r: r["steps"]):
        lo, hi = r["spread_total_s"]
        out.append(f"| {r['runs']:,} | {r['steps']:,} | {r['read_s']:.2f} | {r['analyze_actions_s']:.2f} | "
                   f"{r['analyze_exact_s']:.2f} | {r['total_s']:.2f} | {lo:.2f} – {hi:.2f} | {r['peak_mb']:,.0f} | {r['write_s']:.1f} |")
    sizes = sorted(d["sizes"], key=lambda r: r["steps"])
    out += ["", f"Median of {d['repeats']} fresh processes per size. Growth: time {_growth(sizes, 'steps', 'total_s')}; "
            f"peak memory {_growth(sizes, 'steps', 'peak_mb')}."]
    return out


# --- the Dask engine against the local path (bench/engine.py) ---

def _engine_sizes(d: dict) -> list[dict]:
    return sorted(d.get("sizes") or [d], key=lambda r: r["steps"])


def engine_rows(d: dict) -> list[Row]:
    sizes = _engine_sizes(d)
    rows = []
    for r, target in ((sizes[0], "same figures; report time and memory"),
                      (sizes[-1], "10M steps; driver memory bounded")):
        if len(sizes) == 1 and rows:
            break
        local, dask = r["local"], r["dask"]
        lo, hi = dask["spread_total_s"]
        baseline = (f"local from SQLite: {local['total_s']:.1f} s, peak {local['peak_mb']:,.0f} MB" if local
                    else "local path not measured at this size")
        ratio = f"{dask['total_s'] / local['total_s']:.1f}x the time" if local else ""
        met = yes(r["same_incoherence"]) if r["same_incoherence"] is not None else "—"
        if target.startswith("10M"):
            met = at_scale(r["steps"], dask["peak_mb"] < (local["peak_mb"] if local else float("inf"))) \
                if r["steps"] >= 10_000_000 else f"— (largest size {r['steps']:,} steps)"
        rows.append(Row(f"`analyze --engine dask` on {r['steps']:,} steps",
                        f"LocalCluster of {r['workers']} worker processes, exact + actions, from Parquet",
                        f"{dask['total_s']:.1f} s, driver peak {dask['peak_mb']:,.0f} MB",
                        f"{lo:.1f} – {hi:.1f} s (min–max)", baseline, ratio, target, met))
    return rows


def engine_details(d: dict) -> list[str]:
    sizes = _engine_sizes(d)
    out = ["| steps | tasks | path | exact s | actions s | total s | min – max s | peak MB (driver) | peak MB (largest worker) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for size in sizes:
        for name, r in (("local (SQLite, one process)", size["local"]), (f"dask ({size['workers']} worker processes)", size["dask"])):
            if r is None:
                continue
            lo, hi = r["spread_total_s"]
            out.append(f"| {size['steps']:,} | {size['tasks']:,} | {name} | {r['exact_s']:.2f} | {r['actions_s']:.2f} | "
                       f"{r['total_s']:.2f} | {lo:.2f} – {hi:.2f} | {r['peak_mb']:,.0f} | "
                       f"{r['worker_peak_mb']:,.0f} |" if "worker_peak_mb" in r else "— |")
    first = sizes[0]
    out += ["", f"Runs of {first['steps'] // first['runs']} tool steps, 100 per task; "
            f"{first['files']} Parquet files over {first['days']} days per size (export not measured). Median of "
            f"{first['repeats']} fresh processes at the first size, {sizes[-1]['repeats']} above it; the cluster's start "
            f"(~{first['dask']['cluster_start_s']:.1f} s) is not in the totals. Same incoherence as local wherever "
            f"local was measured: {all(s['same_incoherence'] for s in sizes if s['same_incoherence'] is not None)}."]
    if len(sizes) > 1:
        def overall(path: str, key: str) -> str:
            measured = [r for r in sizes if r[path]]
            a, b = measured[0], measured[-1]
            return f"{b[path][key] / a[path][key]:.1f}x over {b['steps'] / a['steps']:.0f}x steps"

        out += ["", f"Growth from {sizes[0]['steps']:,} to {sizes[-1]['steps']:,} steps: dask time "
                f"{overall('dask', 'total_s')}, driver memory {overall('dask', 'peak_mb')}, largest worker "
                f"{overall('dask', 'worker_peak_mb')}; local time {overall('local', 'total_s')}, local memory "
                f"{overall('local', 'peak_mb')}. Size by size: dask time {_growth(sizes, 'steps', 'total_s', 'dask')}."]
    out += ["", *engine_on_paper(sizes)]
    return out


def engine_on_paper(sizes: list[dict], steps: float = 1e9) -> list[str]:
    """A cluster with 1B steps, worked out from the per-task costs measured at the largest size."""
    big, small = sizes[-1], sizes[0]
    cost = big["per_task"]
    steps_per_task = big["steps"] / big["tasks"]
    tasks = steps / steps_per_task
    shuffle_exact = tasks * cost["runs_parquet_bytes_per_task"]
    shuffle_actions = shuffle_exact + tasks * cost["steps_parquet_bytes_per_task"]
    figures = tasks * max(cost["figures_bytes_per_task_exact"], cost["figures_bytes_per_task_actions"])
    # the driver's memory per task, as measured: its peak's growth over the tasks added between sizes
    per_task_mb = ((big["dask"]["peak_mb"] - small["dask"]["peak_mb"]) / (big["tasks"] - small["tasks"])
                   if big["tasks"] > small["tasks"] else float("nan"))
    core_s_per_task = big["dask"]["total_s"] * big["workers"] / big["tasks"]
    gb = 1e9
    lines = [
        f"**On paper: 1 billion steps.** At the largest size measured a task is {cost['runs_per_task']} runs "
        f"and {steps_per_task:,.0f} steps, so 1B steps are {tasks:,.0f} tasks. Per task the shuffle by task "
        f"moves {cost['runs_parquet_bytes_per_task'] / 1e3:.1f} KB of runs columns (Parquet), plus "
        f"{cost['steps_parquet_bytes_per_task'] / 1e3:.1f} KB of tool steps for `--outcome actions`; the driver "
        f"receives {cost['figures_bytes_per_task_exact'] / 1e3:.1f} KB (exact) or "
        f"{cost['figures_bytes_per_task_actions'] / 1e3:.1f} KB (actions) of pickled figures per task.",
        "",
        "| | 1B steps |",
        "| --- | --- |",
        f"| tasks | {tasks:,.0f} |",
        f"| shuffled across the cluster, exact / actions | {shuffle_exact / gb:,.1f} GB / {shuffle_actions / gb:,.1f} GB |",
        f"| figures sent to the driver (pickled) | {figures / gb:,.1f} GB |",
        f"| driver memory at the measured {per_task_mb * 1e3:,.1f} KB per task | {per_task_mb * tasks / 1e3:,.1f} GB |",
        f"| worker time at {core_s_per_task * 1e3:,.0f} core-ms per task (measured, 2 workers) | "
        f"{core_s_per_task * tasks / 3600:,.1f} core-hours: {core_s_per_task * tasks / 60 / 10:,.0f} min on 10 "
        f"workers, {core_s_per_task * tasks / 60 / 100:,.0f} min on 100 |",
        "",
        "What bounds it: the workers' share divides by N (each task is independent and a worker holds one "
        "shuffle partition at a time), and the shuffle grows with the data, not with N. The driver's share "
        "does not divide: it holds every task's figures and forms the ratios of sums, the interval over tasks "
        "and pass^k from them, so at 1B steps its memory, not the workers, bounds a single run. Past that, "
        "analyze a slice at a time (`--task`, or one export per period) or reduce the figures per task "
        "(cluster listings are most of their size). The core-ms per task is measured on a shared 2-core "
        "machine and includes reading Parquet and the shuffle's serialisation; a cluster's network adds to "
        "the shuffle's time, not to the per-task work.",
    ]
    return lines


# --- hotmess serve (bench/serve_throughput.py, bench/serve_pages.py) ---

def serve_throughput_rows(d: dict) -> list[Row]:
    return [Row(f"`hotmess serve`: spans accepted from {d['senders']} exporter processes",
                f"{d['spans_sent']:,} spans (OTLP/HTTP protobuf, the real exporter)", f"{d['spans_per_second']:,.0f} spans/s",
                f"{d['seconds']:.1f} s in all", "—", "—", "nothing lost",
                yes(d["lost"] == 0 and d["failed_exports"] == 0))]


def serve_throughput_details(d: dict) -> list[str]:
    out = [f"{d['spans_sent']:,} spans sent, {d['spans_stored']:,} stored ({d['lost']:,} lost, {d['failed_exports']} "
           f"failed exports) as {d['runs']:,} runs and {d['steps']:,} steps, in {d['seconds']:.2f} s: "
           f"{d['spans_per_second']:,.0f} spans/s. Then the UI on that database:", "",
           "| page | first fetch ms | median after ms |", "| --- | --- | --- |"]
    for name, t in d["pages_ms"].items():
        after = t["median_after"]
        out.append(f"| {name} | {t['first']:,.1f} | {'—' if after is None else f'{after:,.1f}'} |")
    return out


def serve_pages_rows(d: dict) -> list[Row]:
    pages = {r["page"]: r for r in d["pages"]}
    slowest = max(d["pages"], key=lambda r: r["median_s"])
    return [
        Row(f"`hotmess serve` UI pages on {d['steps']:,} steps ({d['runs']:,} runs)", f"slowest: {slowest['page']}",
            f"{slowest['median_s'] * 1000:,.1f} ms", f"max {slowest['max_s'] * 1000:,.1f} ms", "—", "—",
            "every page under 0.5 s", yes(slowest["median_s"] < 0.5)),
        Row("the same, the overview's first load (computes the analysis)", "`/`, nothing cached",
            f"{d['overview_cold_s']:.2f} s", "one fetch", f"cached: {pages['overview']['median_s'] * 1000:,.1f} ms",
            "", "(reported)", "—"),
    ]


def serve_pages_details(d: dict) -> list[str]:
    out = ["| page | path | median ms | max ms |", "| --- | --- | --- | --- |"]
    for r in d["pages"]:
        out.append(f"| {r['page']} | `{r['path']}` | {r['median_s'] * 1000:,.1f} | {r['max_s'] * 1000:,.1f} |")
    out += ["", f"{d['runs']:,} runs, {d['steps']:,} steps, {d['tasks']} tasks; each page fetched {d['repeats']} times "
            f"over HTTP from the real app under uvicorn (the overview's first load, {d['overview_cold_s']:.2f} s, "
            "computes `analyze --by agent` and is kept until the database changes)."]
    return out


# --- horizon, goals, drift at scale (bench/overtime_scale.py) ---

OVERTIME = ("horizon", "goals", "drift")


def overtime_rows(d: dict) -> list[Row]:
    sizes = sorted(d["sizes"], key=lambda r: r["steps"])
    largest = sizes[-1]
    rows = []
    for name in OVERTIME:
        m = largest["commands"].get(name)
        if m is None or "skipped" in m:
            reason = (m or {}).get("skipped", "not measured")
            rows.append(Row(f"`{name}` at scale", f"skipped: {reason}", target="1M steps under 30 s and 2 GB, linear", met="—"))
            continue
        measured = [r for r in sizes if "total_s" in r["commands"].get(name, {})]
        pairs = [(r["steps"], r["commands"][name]["total_s"]) for r in measured]
        growth = ", ".join(f"{tb / ta:.1f}x over {sb / sa:.0f}x steps"
                           for (sa, ta), (sb, tb) in zip(pairs, pairs[1:], strict=False))
        lo, hi = m["spread_total_s"]
        ok = m["total_s"] < TARGET_S and m["peak_mb"] < TARGET_MB
        rows.append(Row(f"`{name}` on {_counts(r['steps'] for r in measured)} steps",
                        f"{largest['steps']:,} steps ({largest['runs']:,} runs), end to end from SQLite",
                        f"{m['total_s']:.1f} s, peak {m['peak_mb']:,.0f} MB", f"{lo:.1f} – {hi:.1f} s (min–max)", "—",
                        "time " + growth, "1M steps under 30 s and 2 GB, linear", at_scale(largest["steps"], ok)))
    return rows


def overtime_details(d: dict) -> list[str]:
    out = ["| command | runs | steps | read s | analyze s | total s | min – max s | peak MB |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in OVERTIME:
        for r in sorted(d["sizes"], key=lambda r: r["steps"]):
            m = r["commands"].get(name)
            if m is None or "skipped" in m:
                continue
            lo, hi = m["spread_total_s"]
            out.append(f"| {name} | {r['runs']:,} | {r['steps']:,} | {m['read_s']:.2f} | {m['analyze_s']:.2f} | "
                       f"{m['total_s']:.2f} | {lo:.2f} – {hi:.2f} | {m['peak_mb']:,.0f} |")
    out += ["", f"Median of {d['repeats']} fresh processes per size and command."]
    return out


# --- durability ---

def coverage_rows(d: dict) -> list[Row]:
    rows = []
    for r in d["results"]:
        if (r["tasks"], r["runs"]) not in ((40, 30), (40, 10)):
            continue
        c, se = r["coverage"]["jackknife"], r["mc_se"]["jackknife"]
        rows.append(Row(
            f"incoherence 95% interval, {r['tasks']} tasks × {r['runs']} runs, {r['population']}",
            "coverage", f"{c:.3f} ± {se:.3f}", f"{d['reps']} datasets",
            f"old plug-in bootstrap {r['coverage']['plug-in bootstrap (old)']:.3f}", "",
            "0.93–0.97", yes(0.93 <= c <= 0.97),
        ))
    return rows


def coverage_details(d: dict) -> list[str]:
    sys.path.insert(0, str(BENCH))
    from stats_coverage import markdown

    return markdown(d)


def drift_stats_rows(d: dict) -> list[Row]:
    by = {r["scenario"]: r for r in d["results"]}
    rows = []

    def rate(r: dict, key: str) -> str:
        return f"{r['rates'][key]:.3f} ± {r['mc_se'][key]:.3f}"

    for name, r in by.items():
        if r["change"] == "none":
            rows.append(Row(f"drift false alarms, no change, {r['tasks']} tasks", "any flag",
                            rate(r, "any flag"), f"{d['reps']} datasets", "", "", "≤ 0.05",
                            yes(r["rates"]["any flag"] <= 0.05 + 2 * r["mc_se"]["any flag"])))
        elif r["change"] == "mix":
            rows.append(Row("drift: only the task mix shifts", "called a behaviour change",
                            rate(r, "behaviour change"), f"mix change found {r['rates']['mix change']:.3f}",
                            "", "", "≤ 0.05", yes(r["rates"]["behaviour change"] <= 0.05)))
        else:
            power, near = r["rates"]["behaviour change"], r["rates"]["located ±1"]
            rows.append(Row(f"drift power: {name}", "found / located ±1 window",
                            f"{rate(r, 'behaviour change')} / {rate(r, 'located ±1')}",
                            f"interval holds it {r['rates']['interval holds']:.3f}", "", "",
                            "≥ 0.9 / ≥ 0.8" if r["tasks"] == 3 else "(reported)",
                            yes(power >= 0.9 and near >= 0.8) if r["tasks"] == 3 else "—"))
    return rows


def drift_stats_details(d: dict) -> list[str]:
    sys.path.insert(0, str(BENCH))
    from stats_drift import markdown

    return markdown(d)


def horizon_stats_rows(d: dict) -> list[Row]:
    rows = []

    def rate(r: dict, key: str) -> str:
        return f"{r['rates'][key]:.3f} ± {r['mc_se'][key]:.3f}"

    for r in d["results"]:
        if r["kind"] == "flat":
            rises = r["rates"]["slope rises"]
            rows.append(Row(f"horizon: flat population called rising, {r['tasks']} × {r['runs']}", "trend rises",
                            rate(r, "slope rises"), f"{d['reps']} datasets",
                            f"falls {rate(r, 'slope falls')}", "", "≤ 0.05",
                            yes(rises <= 0.05 + 2 * r["mc_se"]["slope rises"])))
        elif r["kind"] == "rising":
            rows.append(Row("horizon power: failures scatter more on longer tasks", "incoherence / diversity rises",
                            f"{rate(r, 'slope rises')} / {rate(r, 'diversity rises')}", f"{d['reps']} datasets",
                            "", "", "(reported)", "—"))
        elif r["kind"] == "success falls":
            called = r["rates"]["diversity rises"] + r["rates"]["diversity falls"]
            se = (called * (1 - called) / r["reps"]) ** 0.5
            rows.append(Row("horizon: success falls with length, failures the same", "diversity trend called",
                            f"{called:.3f} ± {se:.3f}", f"incoherence falls {rate(r, 'slope falls')}", "", "",
                            "≤ 0.05", yes(called <= 0.05 + 2 * se)))
    return rows


def horizon_stats_details(d: dict) -> list[str]:
    sys.path.insert(0, str(BENCH))
    from stats_horizon import markdown

    return markdown(d)


def durability_rows(d: dict) -> list[Row]:
    lost, old = d["lost_over_1s_before"], d["ended_over_1s_before"]
    per_kill = [k["lost_over_1s_before"] for k in d["kills"]]
    return [Row("spans lost when the process is SIGKILLed", f"{d['repeats']} kills of a traced loop "
                f"({d['sleep_s'] * 1000:g} ms of waiting per step)", f"{lost} lost of {old:,} that ended > 1 s before",
                f"per kill: {min(per_kill)} – {max(per_kill)}", "—", "—", "none that ended over 1 s before",
                yes(lost == 0 and old > 0))]


def durability_details(d: dict) -> list[str]:
    out = ["| kill | spans ended | agent's pace | ended > 1 s before | lost of those | lost of the last second's "
           "| oldest lost span ended |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, k in enumerate(d["kills"], 1):
        oldest = f"{k['oldest_lost_s']:.2f} s before the kill" if k.get("oldest_lost_s") else "—"
        pace = f"{k['spans_per_s']:,.0f} spans/s" if "spans_per_s" in k else "—"
        out.append(f"| {i} | {k['ended']:,} | {pace} | {k['ended_over_1s_before']:,} | {k['lost_over_1s_before']:,} "
                   f"| {k['lost_within_last_1s']:,} | {oldest} |")
    backpressure = "off (`max_lag=None`)" if d.get("max_lag") == "none" else f"max_lag {d.get('max_lag', 'default')}"
    out += ["", f"{d['steps_per_run']} steps per run, {d['sleep_s'] * 1000:g} ms asleep per step, killed after "
            f"{d['kill_after_s'][0]}–{d['kill_after_s'][1]} s; backpressure {backpressure}."]
    return out


def durability_flat_rows(d: dict) -> list[Row]:
    lost, old = d["lost_over_1s_before"], d["ended_over_1s_before"]
    how = ("pure Python between steps" if d.get("log") == "mmap"
           else "a tiny system call (a line written to a file) per step")
    per_kill = [k["lost_over_1s_before"] for k in d["kills"]]
    pace = f", the agent at {d['spans_per_s']:,.0f} spans/s" if "spans_per_s" in d else ""
    if d.get("max_lag") == "none":
        return [Row(f"the same, {how}, backpressure off (`max_lag=None`)", f"{d['repeats']} kills{pace}",
                    f"{lost:,} lost of {old:,} that ended > 1 s before", f"per kill: {min(per_kill):,} – {max(per_kill):,}",
                    "—", "—", "(reported: what backpressure saves)", "—")]
    return [Row(f"the same, overloaded: steps back to back, {how}", f"{d['repeats']} kills{pace}",
                f"{lost:,} lost of {old:,} that ended > 1 s before", f"per kill: {min(per_kill):,} – {max(per_kill):,}",
                "—", "—", "none that ended over 1 s before", yes(lost == 0 and old > 0))]


REGISTRY: list[Bench] = [
    Bench(
        "step_overhead", "Cost of one traced step vs a bare OpenTelemetry span", "step_overhead.py",
        ["--repeats", "15", "--runs", "100", "--steps", "20"], ["--repeats", "3", "--runs", "20", "--steps", "20"], 300,
        [("cost of one traced step in an agent loop", "at most 1.5x"),
         ("the same, including the background SQLite write", "(reported)")],
        step_rows, step_details,
        limits="""On the agent's path hotmess adds to the bare SDK span only dictionary and deque work in its span
processor (step order and depth, the run's queue); the rest of the cost is the OpenTelemetry SDK span
itself. The write to SQLite happens in a background thread, but in CPython it shares the GIL with the
agent, so "including the write" is what a CPU-bound agent loop pays in all. Per span the writer
redacts every attribute, encodes the attributes as JSON, and inserts a spans row and a steps row.
Profiled (cProfile on the exporter alone): before this issue's fixes it spent ~45 µs CPU per span
(redaction regexes ~35%, JSON encoding of attributes, events, links and the resource ~20%, copying
the SDK span ~25%, SQLite ~15%); after them ~25 µs (the writer row; see "Speed fixes" below), in
about equal parts copying the SDK span, redacting and capping each attribute, building rows and
JSON, and SQLite. On the agent's path the figure is measured while the writer mostly waits for
its next 0.5 s wake-up (each repeat is shorter than that); "including the write" is the whole
cost.""",
    ),
    Bench(
        "writer", "The background writer alone", "writer_cost.py",
        ["--repeats", "5"], ["--repeats", "2", "--runs", "100"], 300,
        [("the background writer alone, CPU per span", "(reported)")],
        writer_rows, lambda d: [f"{d['spans']:,} spans of {d['runs']} runs x {d['steps_per_run']} tool steps, "
                                f"{d['batches']} batches; CPU per span over {d['repeats']} repeats: min "
                                f"{us(d['min_us_per_span'])}, median {us(d['cpu_us_per_span']['median'])}."],
        limits="""CPU time of `SQLiteSpanExporter.write` per span with nothing else running: copying the SDK span,
redacting and capping every attribute, encoding them as JSON, building the spans and steps rows
and inserting them. See "Speed fixes" below for what it was before this issue.""",
    ),
    Bench(
        "mlflow", "hotmess vs MLflow tracing", "mlflow_overhead.py",
        ["--repeats", "7", "--runs", "20", "--steps", "20"], ["--repeats", "2", "--runs", "5", "--steps", "20"], 600,
        [("the same, vs MLflow tracing (on the agent's path)", "at least 20x cheaper"),
         ("the same, vs MLflow, including the write to SQLite", "at least 20x cheaper")],
        mlflow_rows, mlflow_details, peer=True,
        limits="""Both sides are decorators on the same agent function and tool (`@hotmess.trace` + `hotmess.step`
vs `@mlflow.trace` twice), both writing from a background thread to a local SQLite file (MLflow:
tracking URI `sqlite:///...`, its default async trace logging). "Including the write" waits for each
to finish storing (`hotmess.flush()`, `mlflow.flush_trace_async_logging()`), and the stored traces
are counted in both databases at the end, so MLflow is not credited for traces it never wrote.
MLflow's write is dominated by its SQLAlchemy tracking store (per trace: the trace info, tags,
metadata and span rows through the ORM); on the agent's path it builds its own span wrappers and
serialises inputs and outputs. On the agent's path the ratio is bounded by the OpenTelemetry SDK
span that hotmess stands on: MLflow costs between about 11 and 33 bare SDK spans (the ratio under
the table above; it moved that much between runs on this shared machine, MLflow's own spread being
the widest), and hotmess's `hotmess.step` decorator is itself a bare span plus binding the call's
arguments, making the span current and encoding input and output (~2-2.4x a bare span;
`hotmess.action` in the step benchmark is cheaper), so the ratio on the path lands between ~5x and
~14x. Getting 20x there would need a tracer that does not create an SDK span per step; including
the write, hotmess is far past 20x.""",
    ),
    Bench(
        "langchain", "LangChain handler vs no callbacks", "langchain_overhead.py",
        ["--repeats", "9", "--runs", "40"], ["--repeats", "2", "--runs", "5"], 600,
        [("the same, through the LangChain handler", "report the ratio")],
        langchain_rows, langchain_details,
        limits="""A LangChain step already goes through LangChain's callback manager; the handler adds building
one span per callback (run ids mapped to spans, inputs and outputs serialised) on the agent's path,
and the same background write as any hotmess span.""",
    ),
    Bench(
        "import", "Import throughput vs plain executemany", "import_throughput.py",
        ["--repeats", "5"], ["--repeats", "1", "--spans", "5000"], 900,
        [("import throughput, tau-bench", "at least 0.5 of the limit"), ("import throughput, otlp", "at least 0.5 of the limit")],
        import_rows, import_details,
        limits="""The limit is SQLite itself: `executemany` of the already-built row tuples in one transaction,
with no file to read. The importers also decode the file's JSON, check every record, map it to
runs/steps/spans rows and redact every text, all in Python; measured side by side (CPU time,
medians, on a loaded 2-core box) the import's own work is 2-4 times the write it shares with the
limit, so the ratio is bounded well below 0.5 without moving that work to C or to another core.
tau-bench (3,618 steps, 0.05 s to write): json.loads of the 4 MB file alone is half the limit;
the canonical JSON of each whole record (its run id is that text's hash, so the text must not
change) is as much again even on the fast path (plain JSON data straight to `json`, only integral
floats replaced; about 2x faster than the old recursive normalisation); then checking and mapping
~5,300 messages, and redaction, which must look at all 2 MB of text columns (one combined marker
search per value now, ~15 ns a character; almost no value holds a marker). OTLP (per span): the
limit writes a span in ~20 us CPU here (a spans row and a steps row); import adds json.loads ~9,
OTLP decoding ~6.5, redaction and cutting ~9.5 (one marker search per value, then nothing), the
exporter's step_row/span_row ~14 (encoding each span's attributes back to JSON dominates), and
the store (insert_otlp: new runs straight to the same inserts) ~the limit. orjson would decode 1.5x faster (~3 us a span, ~8% of the import)
but is not a dependency; a process pool was not tried.""",
    ),
    Bench(
        "analyze", "`analyze` at 10k, 100k and 1M steps", "analyze_scale.py",
        ["--runs", "500,5000,50000", "--steps", "20", "--repeats", "3"], ["--runs", "500,5000", "--steps", "20", "--repeats", "1"], 1500,
        [("`analyze` on 10k, 100k and 1M steps", "1M steps under 30 s and 2 GB, linear")],
        analyze_rows, analyze_details,
        limits="""End to end in a fresh process: connect, read the run and step columns analyze uses
(`read_for_analysis`), then analyze twice (outcome = the run's state-changing actions, and exact
outcomes). Reading rows out of SQLite into Python objects and then numpy arrays is the largest
part; memory is those columns plus the per-task decomposition. The smallest size is dominated by
fixed costs (imports, scikit-learn), so growth from 10k to 100k looks sub-linear; 100k to 1M is the
honest slope.""",
    ),
    Bench(
        "engine", "`analyze --engine dask` vs the local path, 1M to 10M steps", "engine.py",
        ["--runs", "50000,100000,250000,500000", "--steps", "20", "--repeats", "3", "--large-repeats", "1",
         "--local-max", "500000"],
        ["--runs", "2000,4000", "--steps", "20", "--repeats", "1"], 3600,
        [("`analyze --engine dask` at 1M steps", "same figures; report time and memory"),
         ("`analyze --engine dask` at 10M steps", "10M steps; driver memory bounded")],
        engine_rows, engine_details,
        limits="""On one 2-core machine the engine cannot beat the local path: the same per-task work runs in
2 worker processes instead of one, plus the shuffle by task (every run row serialised to Arrow,
sent and regrouped) and, for outcome=actions, the steps packed per run and joined to their runs.
What it buys is that no process holds all runs: the driver holds one small record per task, and a
worker one partition of the shuffle at a time; adding workers on other machines divides the
per-task work.""",
    ),
    Bench(
        "serve_throughput", "`hotmess serve`: OTLP spans accepted from 4 exporter processes", "serve_throughput.py",
        ["--senders", "4", "--traces", "500", "--steps", "8", "--repeats", "5"],
        ["--senders", "2", "--traces", "50", "--steps", "8", "--repeats", "2"], 900,
        [("`hotmess serve`: spans accepted from 4 exporter processes", "nothing lost")],
        serve_throughput_rows, serve_throughput_details,
        limits="""Every request is decoded (protobuf), mapped to runs and steps by the same functions as `import
otlp`, redacted and committed to SQLite before it is answered, one request at a time (SQLite has one
writer). The senders are 4 processes on the same 2 cores as the server, so the figure is what the
machine does with both sides on it; an exporter that is answered 503 with `Retry-After` retries, so
a busy server slows the senders, never loses their spans.""",
    ),
    Bench(
        "serve_pages", "`hotmess serve`: UI page times on 1M steps", "serve_pages.py",
        ["--runs", "50000", "--steps", "20", "--repeats", "5"], ["--runs", "2000", "--steps", "20", "--repeats", "2"], 1500,
        [("`hotmess serve` UI pages on 1,000,000 steps (50,000 runs)", "every page under 0.5 s"),
         ("the same, the overview's first load (computes the analysis)", "(reported)")],
        serve_pages_rows, serve_pages_details,
        limits="""Pages read SQLite through indexes (runs by start time, by task, by agent; steps by run), and a
deep page uses a keyset cursor, so paging does not slow with depth. The step search is not an index:
a page scans at most 5,000 runs' steps newest first and links to where it stopped, so its worst case
(no match) is bounded by that budget, not by the database. The overview and task pages hold an
analysis, computed on the first load after the database changed.""",
    ),
    Bench(
        "overtime", "`horizon`, `goals`, `drift` at 10k, 100k and 1M steps", "overtime_scale.py",
        ["--runs", "500,5000,50000", "--repeats", "3"], ["--runs", "500,5000", "--repeats", "1"], 1500,
        [("`horizon` at scale", "1M steps under 30 s and 2 GB, linear"),
         ("`goals` at scale", "1M steps under 30 s and 2 GB, linear"),
         ("`drift` at scale", "1M steps under 30 s and 2 GB, linear")],
        overtime_rows, overtime_details,
        limits="""Each command end to end in a fresh process on the same synthetic store as `analyze` (runs given
start times over 30 days and token counts first): `horizon` and `drift` read only the runs table,
`goals` reads the runs and their goal steps.""",
    ),
    Bench(
        "stats_coverage", "Statistics: coverage of the incoherence interval", "stats_coverage.py",
        ["--reps", "1000"], ["--reps", "100"], 900,
        [("incoherence 95% interval at 40 × 30 and 40 × 10", "coverage 0.93–0.97")],
        coverage_rows, coverage_details,
        limits="""Known truth by construction (the script's docstring derives it). The interval is over tasks, so
its coverage is set by how many tasks there are more than by runs per task: at 10 tasks it covers
0.89–0.95. Where it falls short (0.91 at 40 × 10 in the second population) the population's
incoherence is near its upper bound and the ratio's sampling distribution is skewed toward
it; the logit scale takes most of that out (the plain linearised interval covers 0.89 there),
not all of it. Runs per task hardly matter once the unbiased form is used: 2 runs per task cover
as well as 30. The old plug-in bootstrap fails worst exactly there, at few runs per task (0.00
at 3 runs), because every resample carries the same (n − 1)/n shortfall.""",
    ),
    Bench(
        "stats_drift", "Statistics: drift change points", "stats_drift.py",
        ["--reps", "300"], ["--reps", "30"], 900,
        [("drift false alarms, no change, 3 tasks", "≤ 0.05"), ("drift false alarms, no change, 50 tasks", "≤ 0.05"),
         ("drift power: failures spread, success unchanged (3 tasks)", "≥ 0.9 / ≥ 0.8"),
         ("drift power: success 0.6 → 0.4 (3 tasks)", "≥ 0.9 / ≥ 0.8"),
         ("drift: only the task mix shifts", "≤ 0.05")],
        drift_stats_rows, drift_stats_details,
        limits="""Known truth by construction (the script's docstring says how the datasets are drawn). "Any flag"
counts a behaviour change, a change from the baseline and a mix change together: the behaviour and
mix scans split alpha between them (Bonferroni), so each sits near 0.025 and a behaviour scan of
discrete data a little under it. The location interval is a profile-likelihood set (G within the
chi-squared 95% point of its maximum); it holds the true change in about 0.88 of datasets, a little
under its nominal 0.95, because the maximum over splits is itself a selection. The old
window-against-window flags found the success change in 0.5% of such datasets and called the
mix-only shift a behaviour change in 64% (the issue's measurements).""",
    ),
    Bench(
        "stats_horizon", "Statistics: horizon slopes and the median split", "stats_horizon.py",
        ["--reps", "300"], ["--reps", "30"], 600,
        [("horizon: flat population called rising, 40 × 10", "≤ 0.05"),
         ("horizon: flat population called rising, 40 × 30", "≤ 0.05"),
         ("horizon power: failures scatter more on longer tasks", "(reported)"),
         ("horizon: success falls with length, failures the same", "≤ 0.05")],
        horizon_stats_rows, horizon_stats_details,
        limits="""Known truth by construction (the script's docstring says how the datasets are drawn). A trend is
called when the slope's 95% percentile-bootstrap interval (tasks resampled, grouped and fitted again)
excludes 0, so each direction's false-alarm rate sits near 0.025. On the rising population the
incoherence slope finds the effect far less often than the failure-diversity slope: incoherence is
p + (1 − p)·d/2, so a change in failure diversity d moves it by half or less, diluted by success.
When success alone falls with length, incoherence truly falls (it is at least the success rate) and
the diversity slope stays quiet, which is how the verdict tells the two apart. The median split
compares a task's longer and shorter runs; when failed runs are longer, its incoherence difference
is real but follows success, and its diversity difference stays at the false-alarm level.""",
    ),
    Bench(
        "durability", "Durability under SIGKILL", "durability_kill.py",
        ["--repeats", "10"], ["--repeats", "2"], 600,
        [("spans lost when the process is SIGKILLed", "none that ended over 1 s before")],
        durability_rows, durability_details,
        limits="""The writer thread wakes every 0.5 s (`configure(flush_interval=)`) and commits each batch in one
transaction to a WAL-mode database (`synchronous = NORMAL`): a committed batch is in the WAL file, in
the operating system's cache, which survives the death of the process (not a power cut: for that
SQLite would need `synchronous = FULL`, an fsync per batch). A run's root is written when it
starts, so a killed run is stored as `incomplete` with every step that made it. What limits it is
the writer keeping up, and in CPython it shares the GIL with the agent. The 1 ms of work per step
here is a sleep (as an agent waiting on a model or a tool): the agent's thread lets go of the GIL
and the writer keeps up easily. In the overload rows the agent makes steps back to back and never
waits of its own accord, and the writer needs about as much CPU per span (~27 µs) as the agent
takes to make one, so it cannot keep up whatever its share of the GIL. Pure Python: the writer
gets the GIL every 5 ms switch interval and stores about half of what the agent makes. A system
call per step (here the line written to the side file) is worse: the agent lets go of the GIL
and takes it straight back thousands of times a second, CPython then never forces a switch to
the waiting writer, and almost nothing is stored until the agent pauses. Left alone the queue
grows past a second's worth and a kill loses what is queued (the `max_lag=None` rows).
Backpressure in the span processor bounds it: once the oldest unwritten span was queued more
than `max_lag` (0.5 s) ago, the span that ends waits on a condition, the GIL released, until
the writer has written everything queued more than 0.25 s before it (at most `lag_timeout`,
1 s, per wait; never for a writer that is failing or wrote nothing in that time). The store
then stays about 0.5 s plus one batch's write behind, and the overloaded agent runs at the
writer's pace: compare its spans/s with the `max_lag=None` rows. Batches are of 1,024 spans: the
overloaded agent leaves the writer almost no GIL until it waits, so a batch is mostly written
during that wait, and with 4,096 the store got up to 0.8 s behind (0.66 s with 1,024; a CI
machine lost a span 1 s old at 4,096). The cost on the agent's path
at normal load is a clock read and a subtraction per span (the step overhead row). Earlier in
this issue the writer stored nothing at all under the pure-Python overload: the sqlite3 module
lets go of the GIL around every statement step and executemany stepped once per row, each
handback costing a 5 ms wait; a batch is now a few multi-row INSERTs.""",
    ),
    Bench(
        "durability_flat", "Durability under SIGKILL, overloaded, pure Python", "durability_kill.py",
        ["--repeats", "3", "--sleep", "0", "--log", "mmap"], ["--repeats", "1", "--sleep", "0", "--log", "mmap"], 300,
        [("the same, overloaded: steps back to back, pure Python between steps", "none that ended over 1 s before")],
        durability_flat_rows, durability_details,
    ),
    Bench(
        "durability_flat_io", "Durability under SIGKILL, overloaded, a system call per step", "durability_kill.py",
        ["--repeats", "3", "--sleep", "0"], ["--repeats", "1", "--sleep", "0"], 300,
        [("the same, overloaded: steps back to back, a tiny system call per step", "none that ended over 1 s before")],
        durability_flat_rows, durability_details,
    ),
    Bench(
        "durability_flat_off", "Durability under SIGKILL, overloaded, pure Python, backpressure off",
        "durability_kill.py",
        ["--repeats", "3", "--sleep", "0", "--log", "mmap", "--max-lag", "none"],
        ["--repeats", "1", "--sleep", "0", "--log", "mmap", "--max-lag", "none"], 300,
        [("the same, pure Python between steps, backpressure off (`max_lag=None`)", "(reported)")],
        durability_flat_rows, durability_details,
    ),
    Bench(
        "durability_flat_io_off", "Durability under SIGKILL, overloaded, a system call per step, backpressure off",
        "durability_kill.py",
        ["--repeats", "3", "--sleep", "0", "--max-lag", "none"], ["--repeats", "1", "--sleep", "0", "--max-lag", "none"],
        300,
        [("the same, a tiny system call per step, backpressure off (`max_lag=None`)", "(reported)")],
        durability_flat_rows, durability_details,
    ),
]


def parse_json(stdout: str) -> dict:
    start = stdout.find("{")
    if start < 0:
        raise ValueError("no JSON object on stdout")
    data, _ = json.JSONDecoder().raw_decode(stdout[start:])
    if not isinstance(data, dict):
        raise ValueError("stdout JSON is not an object")
    return data


def run_one(bench: Bench, quick: bool, peer_python: Path) -> dict:
    """Run one benchmark: {"rows": [...], "data": ..., "error": ..., "wall_s": ..., "peak_mb": ...}."""
    script = BENCH / bench.script
    python = peer_python if bench.peer else Path(sys.executable)
    out: dict = {"command": bench.command(quick), "error": None, "data": None, "wall_s": None}
    if not script.exists():
        out["error"] = f"failed: bench/{bench.script} does not exist"
    elif bench.peer and not python.exists():
        out["error"] = f"failed: no peer environment at {python} (`make bench` builds .venv-bench)"
    else:
        m = run_measured([str(python), str(script), *(bench.quick if quick else bench.args), "--json"], bench.timeout)
        out.update(wall_s=m.wall_s, peak_mb=m.peak_mb)
        if m.returncode is None:
            out["error"] = f"failed: timed out after {bench.timeout:.0f} s"
        elif m.returncode != 0:
            last = [ln for ln in m.stderr.strip().splitlines() if ln.strip()][-1:] or ["no error output"]
            out["error"] = f"failed: exit code {m.returncode}: {last[0][:200]}"
        else:
            try:
                out["data"] = parse_json(m.stdout)
            except ValueError as exc:
                out["error"] = f"failed: {exc}"
    return with_rows(bench, out, "unexpected JSON")


def with_rows(bench: Bench, out: dict, misfit: str) -> dict:
    """``out`` with its table rows and details made from its data, or rows saying what failed
    (``misfit``: what to call JSON the benchmark's rows cannot read)."""
    if out["error"] is None:
        try:
            out["rows"] = bench.rows(out["data"])
            out["details"] = bench.details(out["data"]) if bench.details else None
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
            out["error"] = f"failed: {misfit} ({type(exc).__name__}: {exc})"
    if out["error"] is not None:
        out["rows"] = [Row(what, out["error"], target=target, met="—") for what, target in bench.lines]
        out["details"] = None
    return out


def saved(bench: Bench, entry: dict) -> dict:
    """An earlier run's result of ``bench`` (from BENCHMARKS.json), its rows made anew from its data."""
    out = {"command": entry["command"], "error": entry.get("error"), "data": entry.get("data"),
           "wall_s": entry.get("wall_s"), "measured": entry.get("measured")}
    return with_rows(bench, out, "the saved JSON no longer fits its rows; run it again")


def not_run(bench: Bench) -> dict:
    error = f"not run (no earlier result: bench/run.py --only {bench.key})"
    return {"command": bench.command(False), "error": error, "data": None, "wall_s": None,
            "rows": [Row(what, error, target=target, met="—") for what, target in bench.lines], "details": None}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(results: list[tuple[Bench, dict]], info: dict, quick: bool, total_s: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.py`); do not edit by hand. Every figure is a median over",
        "repeats with its spread, and every ratio is against a baseline measured in the same run, in the",
        "same process where the benchmark allows it, interleaved repeat by repeat.",
        "",
    ]
    if quick:
        lines += ["**Quick smoke run (`--quick`): small sizes and few repeats; not the real figures.**", ""]
    load = info.get("load_avg")
    lines += [
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        f"| CPU | {info['cpu']} ({info['cores']} cores) |",
        f"| RAM | {info['ram_gb']:.1f} GB |" if info.get("ram_gb") else "| RAM | unknown |",
        f"| Python | {info['python']} |",
        f"| OS | {info['os']} |",
        f"| SQLite | {info['sqlite']} |",
        f"| hotmess commit | {info['commit']} |",
        f"| date | {info['date']} |",
        f"| load average at start | {', '.join(f'{x:.1f}' for x in load)} (a shared machine: other work ran alongside) |" if load else None,
        f"| wall time of this run | {total_s / 60:.1f} min |",
        "",
        "## Targets",
        "",
        "| what | figure | median | spread | baseline in the same run | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, res in results:
        for r in res["rows"]:
            lines.append("| " + " | ".join(_cell(x) for x in (r.what, r.figure, r.median, r.spread, r.baseline, r.ratio, r.target, r.met)) + " |")
    lines.append("")
    for bench, res in results:
        lines += [f"## {bench.title}", "", f"Reproduce: `{res['command']}`"]
        if res.get("wall_s") is not None:
            lines[-1] += f" ({res['wall_s']:.0f} s here)"
        if res.get("measured") and res["measured"].get("commit") != info["commit"]:
            lines[-1] += f"; measured at commit {res['measured']['commit']}, {res['measured']['date']}"
        lines.append("")
        if res["error"]:
            lines += [res["error"], ""]
        elif res.get("details"):
            lines += [*res["details"], ""]
        elif res.get("data") is not None:
            text = json.dumps(res["data"], indent=1)
            lines += ["```json", text if len(text) < 6000 else text[:6000] + "\n...", "```", ""]
        if bench.limits:
            lines += ["What limits it: " + " ".join(bench.limits.split()), ""]
        for para in bench.extra:
            lines += [para, ""]
    return "\n".join(line for line in lines if line is not None) + "\n"


SPEED_FIXES = """## Speed fixes made for these targets

The background writer was profiled with cProfile on the exporter alone (the spans of 500 runs x 20
tool steps written batch by batch, CPU time per span, min of 5; `/tmp` scripts, not kept):

| | writer CPU per span | step_overhead: hotmess + write / bare | on the agent's path / bare |
| --- | --- | --- | --- |
| before (59eb04c with commits 34204c1 and 59eb04c reverted) | 44–47 µs | 4.13x | 1.18x |
| after (59eb04c; writer CPU at 8d538a1 / 04ba946) | 25 / 26–27 µs | 3.26x | 1.24x |

The step_overhead ratios are the median of three runs of `bench/step_overhead.py --repeats 9`,
before and after alternating, with PYTHONPATH pointing at each tree, on the machine below while
it was shared (load average ~5 on 2 cores): the write got cheaper, the agent's path did not
change beyond noise.

- Redaction: every string went through three regular expressions (the secret patterns, `Bearer`
  / `Authorization: Basic`, `key=value` pairs), ~4 µs per short string and far more on long
  text. Each of the three now runs only when the text holds one of the literal markers every
  match of it must contain (`sk-`, `AKIA`, `eyJ`, ...; in lower case `bearer`/`authorization`;
  `passw`, `pwd`, `secret`, `key`, `token`); non-ASCII text always takes the full path
  (case-insensitive matching folds a few non-ASCII letters onto ASCII ones). What is redacted is
  unchanged: a property test compares the result with the full regexes on generated text built
  from pieces of every pattern (`tests/test_redact_prefilter.py`). Besides the live writer, this
  made the tau-bench import 3x faster (0.50 s -> 0.17 s, back to back on an idle machine): its
  airline texts are full of "passenger" and "Basic Economy", which a single combined marker list
  (`pass`, `basic`) had sent through every regex.
- SQLite: a batch was inserted with `executemany`, one statement step per row, and the sqlite3
  module lets go of the GIL around each step. Taking it back from an agent thread running Python
  flat out waits up to the 5 ms switch interval, so a 4096-span batch took tens of seconds and a
  busy agent's spans were not stored at all for as long (`/tmp` loop: 0 spans stored in 3 s while
  the agent made 66,000). Rows now go in with multi-row `INSERT ... VALUES (...), (...)` in chunks
  of fixed sizes (1024, 256, 64, 16, 4, 1 rows, so the statements are few and stay cached) and
  the per-run counts in one `UPDATE ... WHERE run_id IN (SELECT value FROM json_each(?))`: about
  15,000 spans stored per second in the same loop. It costs ~1-2 µs more CPU per span.
- JSON: one shared encoder (`json.dumps` with options builds a new one per call), empty events
  and links written as `[]` without encoding, and the resource (the same object for every span of
  a provider) redacted and encoded once per Resource rather than once per span.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats: a smoke run")
    parser.add_argument("--only", help="comma-separated benchmark keys: " + ", ".join(b.key for b in REGISTRY))
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--json-out", help="also write every benchmark's raw JSON here")
    parser.add_argument("--rerender", action="store_true",
                        help="run nothing: write the report anew from the saved figures (BENCHMARKS.json)")
    parser.add_argument("--peer-python", default=str(ROOT / ".venv-bench" / "bin" / "python"),
                        help="the Python of the benchmark environment with the peers (mlflow) installed")
    args = parser.parse_args()
    chosen = [] if args.rerender else REGISTRY
    if args.only:
        keys = {k.strip() for k in args.only.split(",")}
        unknown = keys - {b.key for b in REGISTRY}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        chosen = [b for b in REGISTRY if b.key in keys]
    info = machine()
    store = Path(args.out).with_suffix(".json")
    earlier = json.loads(store.read_text()) if store.exists() else {}
    if args.rerender:  # the header says when the figures were measured, not when they were written out
        measured = {(e.get("measured") or {}).get("commit") for e in earlier.values()}
        dates = sorted((e.get("measured") or {}).get("date") or "" for e in earlier.values())
        info.update(commit=measured.pop() if len(measured) == 1 else "several (see each section)",
                    date=f"{dates[0]} – {dates[-1]}" if dates and dates[0] != dates[-1] else (dates or ["?"])[0],
                    load_avg=None)
    start = time.perf_counter()
    results = []
    for bench in REGISTRY:
        if bench not in chosen:
            results.append((bench, saved(bench, earlier[bench.key]) if bench.key in earlier else not_run(bench)))
            continue
        print(f"[bench] {bench.key}: {bench.command(args.quick)}", file=sys.stderr, flush=True)
        res = run_one(bench, args.quick, Path(args.peer_python))
        res["measured"] = {"commit": info["commit"], "date": info["date"]}
        status = res["error"] or f"ok in {res['wall_s']:.0f} s"
        print(f"[bench] {bench.key}: {status}", file=sys.stderr, flush=True)
        results.append((bench, res))
        earlier[bench.key] = {k: res[k] for k in ("command", "error", "data", "wall_s", "measured")}
    store.write_text(json.dumps(earlier, indent=1) + "\n")
    total = time.perf_counter() - start
    if args.rerender:
        total = sum(r.get("wall_s") or 0 for _, r in results)
    text = render(results, info, args.quick, total)
    text += "\n" + SPEED_FIXES
    Path(args.out).write_text(text)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"machine": info, "results": {b.key: r["data"] for b, r in results},
                                                   "errors": {b.key: r["error"] for b, r in results if r["error"]}}, indent=1))
    print(f"[bench] wrote {args.out} in {total / 60:.1f} min", file=sys.stderr)
    failed = [b.key for b, r in results if r["error"] and b in chosen]
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)


if __name__ == "__main__":
    main()
