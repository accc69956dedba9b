"""Horizon by simulation with known truth: false "rises", power, and what success alone does.

Each dataset has 40 tasks × 10 runs (and 40 × 30 for the flat population). Task t has a typical
length L_t drawn log-uniformly from 4 to 64 steps; each run's length is L_t times a uniform 0.5–1.5
factor, rounded (so runs of a task tie). A run succeeds with probability p_t; a failure lands on
one of 6 wrong answers with the task's own probabilities q_t ~ Dirichlet(α_t, ..., α_t), so its
true failure diversity is 1 − Σ q² (expected 1 − (α + 1) / (6α + 1)). Populations:

- ``flat``: p_t ~ Beta(2, 3), α_t = 0.5, nothing depends on length: every "rises" or "falls" is
  a false alarm, of the slope and of the median split;
- ``rising``: p_t ~ Beta(2, 3), α_t = 0.05 · (L_t / 4)^1.2 (from 0.05 at 4 steps to 1.4 at 64):
  longer tasks' failures scatter more, so incoherence and failure diversity both rise;
- ``success falls``: p_t = 0.8 − 0.6 · log(L_t/4) / log 16 (0.8 at 4 steps, 0.2 at 64), α_t = 0.5:
  incoherence truly falls with length (it is bounded by success), failures scatter no more, so
  the failure-diversity slope must not move;
- ``failed runs longer``: as ``flat``, but a failed run is 1.5 times as long as a passing one: the
  median split's long half holds more failures, its incoherence is truly lower, its failure
  diversity is not; the old split (ties at the median all short, halves unpaired) read this as a
  significant fall in 100% of datasets;
- ``longer runs scatter``: as ``flat`` in success, but within each task a failed run of length ℓ
  misses in its own way (a fresh wrong answer) with probability min(1, ℓ / (1.5 L_t)), else follows q_t:
  the split's long half truly scatters more.

Each dataset goes through ``hotmess.analyzers.horizon`` with its defaults (5 groups, 2000
bootstrap resamples for the slope intervals, the paired jackknife for the split). Reported per
population over ``--reps`` datasets, each rate with its Monte Carlo standard error
√(r(1 − r)/reps): how often the incoherence slope's trend is "rises" / "falls", the same for
the failure diversity slope, and for the median split's incoherence and diversity differences.

    .venv/bin/python bench/stats_horizon.py [--reps 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hotmess.analyzers.horizon import horizon
from hotmess.tables import RUN_COLUMNS, Table

WRONG = 6
POPULATIONS = {
    "flat (40 × 10)": ("flat", 40, 10),
    "flat (40 × 30)": ("flat", 40, 30),
    "rising (40 × 10)": ("rising", 40, 10),
    "success falls, failures the same (40 × 10)": ("success falls", 40, 10),
    "failed runs 1.5× longer, nothing else (40 × 10)": ("failed longer", 40, 10),
    "longer runs of a task scatter more (40 × 10)": ("runs scatter", 40, 10),
}
RATES = ("slope rises", "slope falls", "diversity rises", "diversity falls",
         "split rises", "split falls", "split diversity rises", "split diversity falls")


def dataset(rng: np.random.Generator, kind: str, n_tasks: int, n_runs: int) -> Table:
    typical = np.exp(rng.uniform(np.log(4), np.log(64), n_tasks))
    if kind == "success falls":
        p = 0.8 - 0.6 * np.log(typical / 4) / np.log(16)
    else:
        p = rng.beta(2, 3, n_tasks)
    alpha = 0.05 * (typical / 4) ** 1.2 if kind == "rising" else np.full(n_tasks, 0.5)
    task = np.repeat(np.arange(n_tasks), n_runs)
    n = task.size
    ok = rng.random(n) < p[task]
    factor = rng.uniform(0.5, 1.5, n) * np.where(ok | (kind != "failed longer"), 1.0, 1.5)
    length = np.maximum(1, np.round(typical[task] * factor))
    q = np.vstack([rng.dirichlet(np.full(WRONG, a)) for a in alpha])
    wrong = (rng.random(n)[:, None] > np.cumsum(q[task], axis=1)).sum(axis=1).clip(0, WRONG - 1)
    outcome = np.char.add('"wrong ', wrong.astype(str))
    if kind == "runs scatter":
        fresh = rng.random(n) < length / (1.5 * typical[task])
        outcome = np.where(fresh, np.char.add('"fresh ', np.arange(n).astype(str)), outcome)
    outcome = np.where(ok, '"right"', np.char.add(outcome, '"'))
    return Table({
        "run_id": np.array([f"r{i:05d}" for i in range(n)], dtype=object),
        "task_id": np.char.add("t", task.astype(str)).astype(object),
        "status": np.full(n, "ok", dtype=object),
        "outcome": outcome.astype(object),
        "success": ok.astype(np.float64),
        "n_steps": length.astype(np.int64),
        **{c: np.full(n, None, dtype=object) for c in RUN_COLUMNS
           if c not in {"run_id", "task_id", "status", "outcome", "success", "n_steps"}},
    })


def simulate(reps: int, seed: int = 0) -> dict:
    out = []
    for s, (name, (kind, n_tasks, n_runs)) in enumerate(POPULATIONS.items()):
        rng = np.random.default_rng([seed, s])
        counts = dict.fromkeys(RATES, 0)
        slopes, split_differences, success_gaps = [], [], []
        start = time.perf_counter()
        for rep in range(reps):
            result = horizon(dataset(rng, kind, n_tasks, n_runs), seed=rep)
            split = result.median_split
            for label, trend in (("slope", result.trend), ("diversity", result.diversity_trend),
                                 ("split", split.trend), ("split diversity", split.diversity_trend)):
                if trend in ("rises", "falls"):
                    counts[f"{label} {trend}"] += 1
            slopes.append(result.slope)
            if split.difference is not None:
                split_differences.append(split.difference.value)
            success_gaps.append(split.success_long - split.success_short)
        out.append({
            "population": name, "kind": kind, "tasks": n_tasks, "runs": n_runs, "reps": reps,
            "rates": {k: v / reps for k, v in counts.items()},
            "mc_se": {k: float(np.sqrt(v / reps * (1 - v / reps) / reps)) for k, v in counts.items()},
            "median_slope": float(np.nanmedian(slopes)),
            "mean_split_difference": float(np.mean(split_differences)) if split_differences else None,
            "mean_split_success_gap": float(np.nanmean(success_gaps)),
            "seconds_per_dataset": (time.perf_counter() - start) / reps,
        })
    return {"reps": reps, "seed": seed, "results": out}


def markdown(data: dict) -> list[str]:
    def cell(r: dict, key: str) -> str:
        return f"{r['rates'][key]:.3f} ± {r['mc_se'][key]:.3f}"

    lines = [
        f"{data['reps']} simulated datasets per row (± Monte Carlo SE). A trend is called when the 95% "
        "interval excludes 0: the slopes' by a task bootstrap of the group-and-fit, the median split's by "
        "the paired jackknife over tasks.",
        "",
        "| population | incoherence slope rises / falls | failure diversity slope rises / falls "
        "| split: incoherence long > short / < | split: diversity long > short / < | median slope "
        "| split long − short (success gap) | s / dataset |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["results"]:
        gap = r["mean_split_difference"]
        lines.append(
            f"| {r['population']} | {cell(r, 'slope rises')} / {cell(r, 'slope falls')} "
            f"| {cell(r, 'diversity rises')} / {cell(r, 'diversity falls')} "
            f"| {cell(r, 'split rises')} / {cell(r, 'split falls')} "
            f"| {cell(r, 'split diversity rises')} / {cell(r, 'split diversity falls')} "
            f"| {r['median_slope']:+.3f} | {'—' if gap is None else f'{gap:+.3f}'} "
            f"({r['mean_split_success_gap']:+.3f}) | {r['seconds_per_dataset']:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = simulate(args.reps, args.seed)
    print(json.dumps(data) if args.json else "\n".join(markdown(data)))


if __name__ == "__main__":
    main()
