"""Drift by simulation with known truth: false alarms, power, location of the change, mix shifts.

Each dataset is 30 daily windows of 30 runs (the issue's setting). A run picks a task (uniformly,
unless the mix shifts) and then succeeds with probability 0.6; a failure is "wrong 0" with
probability 0.8, else "wrong 1" (one repeated wrong answer: a coherent agent). Scenarios:

- ``none``: nothing changes (3 tasks; and 50 tasks, under one run per task per window);
- ``spread``: from window 20 failures scatter uniformly over 8 wrong answers, success unchanged;
- ``success``: from window 20 success falls from 0.6 to 0.4 (failures as before);
- ``mix``: from window 20 the first task takes 3/5 of the traffic instead of 1/3, each task
  behaving exactly as before: any behaviour flag is a false alarm.

Every dataset is analysed by ``hotmess.analyzers.drift`` with its defaults (alpha 0.05,
``outcome="exact"``, n_perm 1000). Reported per scenario over ``--reps`` datasets, each rate with
its Monte Carlo standard error √(r(1 − r)/reps): how often anything is flagged (``changed``,
``changed_from_baseline`` or ``mix_changed``), a behaviour change, a change located within ±1
window of 20, the located interval holding 20, and a mix change.

    .venv/bin/python bench/stats_drift.py [--reps 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hotmess.analyzers.drift import drift
from hotmess.tables import RUN_COLUMNS, Table

DAY = 86_400 * 10**9
JAN_1 = 1_767_225_600 * 10**9
WINDOWS, PER_WINDOW, CHANGE_AT = 30, 30, 20
SCENARIOS = {
    "no change, 3 tasks": ("none", 3),
    "no change, 50 tasks": ("none", 50),
    "failures spread, success unchanged (3 tasks)": ("spread", 3),
    "success 0.6 → 0.4 (3 tasks)": ("success", 3),
    "success 0.6 → 0.4 (50 tasks)": ("success", 50),
    "only the task mix shifts (3 tasks)": ("mix", 3),
}


def dataset(rng: np.random.Generator, change: str, n_tasks: int) -> Table:
    n = WINDOWS * PER_WINDOW
    window = np.repeat(np.arange(WINDOWS), PER_WINDOW)
    after = window >= CHANGE_AT
    task = rng.integers(n_tasks, size=n)
    if change == "mix":
        heavy = rng.random(n) < (0.6 - 1 / n_tasks) / (1 - 1 / n_tasks)  # first task at 3/5
        task = np.where(after & heavy, 0, task)
    p_ok = np.where(after & (change == "success"), 0.4, 0.6)
    ok = rng.random(n) < p_ok
    usual = np.where(rng.random(n) < 0.8, 0, 1)
    spread = rng.integers(8, size=n)
    wrong = np.where(after & (change == "spread"), spread, usual)
    texts = np.where(ok, '"right"', np.char.add(np.char.add('"wrong ', wrong.astype(str)), '"'))
    return Table({
        "run_id": np.array([f"r{i:05d}" for i in range(n)], dtype=object),
        "task_id": np.char.add("t", task.astype(str)).astype(object),
        "agent": np.full(n, "bot", dtype=object),
        "status": np.full(n, "ok", dtype=object),
        "start_ns": JAN_1 + window * DAY + np.tile(np.arange(PER_WINDOW), WINDOWS) * 10**9,
        "outcome": texts.astype(object),
        "success": ok.astype(np.float64),
        **{c: np.full(n, None, dtype=object) for c in RUN_COLUMNS
           if c not in {"run_id", "task_id", "agent", "status", "start_ns", "outcome", "success"}},
    })


def simulate(reps: int, seed: int = 0) -> dict:
    out = []
    for s, (name, (change, n_tasks)) in enumerate(SCENARIOS.items()):
        rng = np.random.default_rng([seed, s])
        counts = dict.fromkeys(("any flag", "behaviour change", "located ±1", "interval holds", "mix change"), 0)
        errors = []
        start = time.perf_counter()
        for rep in range(reps):
            result = drift(dataset(rng, change, n_tasks), seed=rep)
            windows, points = result.windows, result.change_points["all"]
            counts["any flag"] += any(w.changed or w.changed_from_baseline or w.mix_changed for w in windows)
            counts["behaviour change"] += bool(points)
            near = [c for c in points if abs(c.window - CHANGE_AT) <= 1]
            counts["located ±1"] += bool(near)
            counts["interval holds"] += any(c.low <= CHANGE_AT <= c.high for c in points)
            counts["mix change"] += any(w.mix_changed for w in windows)
            if points:
                errors.append(min(abs(c.window - CHANGE_AT) for c in points))
        out.append({
            "scenario": name, "change": change, "tasks": n_tasks, "reps": reps,
            "rates": {k: v / reps for k, v in counts.items()},
            "mc_se": {k: float(np.sqrt(v / reps * (1 - v / reps) / reps)) for k, v in counts.items()},
            "median_location_error": float(np.median(errors)) if errors else None,
            "seconds_per_dataset": (time.perf_counter() - start) / reps,
        })
    return {"reps": reps, "seed": seed, "windows": WINDOWS, "per_window": PER_WINDOW,
            "change_at": CHANGE_AT, "results": out}


def markdown(data: dict) -> list[str]:
    def cell(r: dict, key: str) -> str:
        return f"{r['rates'][key]:.3f} ± {r['mc_se'][key]:.3f}"

    lines = [
        f"{data['reps']} simulated datasets per row, {data['windows']} daily windows × {data['per_window']} runs, "
        f"the change (where there is one) at window {data['change_at']} (± Monte Carlo SE).",
        "",
        "| scenario | any flag | behaviour change | located within ±1 | interval holds the change | mix change | s / dataset |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["results"]:
        lines.append(
            f"| {r['scenario']} | {cell(r, 'any flag')} | {cell(r, 'behaviour change')} | {cell(r, 'located ±1')} "
            f"| {cell(r, 'interval holds')} | {cell(r, 'mix change')} | {r['seconds_per_dataset']:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = simulate(args.reps, args.seed)
    print(json.dumps(data) if args.json else "\n".join(markdown(data)))


if __name__ == "__main__":
    main()
