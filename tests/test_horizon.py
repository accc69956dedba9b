"""Horizon: incoherence against run length on synthetic agents built to grow (or not), and tau-bench."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hotmess.analyzers import analyze
from hotmess.analyzers.horizon import horizon, run_lengths
from hotmess.analyzers.horizon_fit import fit_power_law
from hotmess.tables import RUN_COLUMNS, Table

TAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-bench" / "gpt-4o-airline.json"


def agent_runs(scatter, n_tasks: int = 40, n_runs: int = 40, seed: int = 0, success: float = 0.3) -> Table:
    """Runs of a synthetic agent. Task t has runs of 0.5 to 1.5 times 4 + 3t steps; a run fails with
    probability 1 - success, and a failed run of length L misses in its own way (a unique wrong
    answer) with probability scatter(L), else the task's one usual wrong answer."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_tasks):
        for i in range(n_runs):
            steps = round((4 + 3 * t) * rng.uniform(0.5, 1.5))
            ok = rng.random() < success
            if ok:
                out = "right"
            elif rng.random() < scatter(steps):
                out = f"miss {t}/{i}"
            else:
                out = "usual miss"
            rows.append({
                "run_id": f"r{t}-{i}", "task_id": f"task-{t}", "status": "ok", "outcome": json.dumps(out),
                "success": float(ok), "reference": json.dumps("right"), "n_steps": steps,
                "n_tool_calls": steps // 2, "input_tokens": 100 * steps, "output_tokens": 10, "start_ns": 0,
            })
    return Table.from_records(rows, RUN_COLUMNS)


LONGEST = (4 + 3 * 39) * 1.5


def test_incoherence_growing_with_length_gives_a_positive_slope():
    runs = agent_runs(lambda steps: steps / LONGEST)
    result = horizon(runs, n_boot=200)
    groups = result.groups
    assert len(groups) == 5 and all(g.n_tasks == 8 for g in groups)
    lengths = [g.length_mean for g in groups]
    assert lengths == sorted(lengths)
    values = [g.incoherence.value for g in groups]
    assert values[-1] > values[0] + 0.2
    assert result.slope > 0.3 and result.r2 > 0.8 and result.n_fit == 5
    # within each task, the longer runs scatter more too
    split = result.median_split
    assert split.n_tasks == 40
    assert split.long.value > split.short.value
    assert split.difference is not None and split.difference.ci_low > 0


def test_incoherence_independent_of_length_gives_a_slope_near_zero():
    result = horizon(agent_runs(lambda steps: 0.5, seed=1), n_boot=200)
    assert abs(result.slope) < 0.1
    split = result.median_split
    assert split.difference.ci_low < 0 < split.difference.ci_high


def test_groups_use_the_per_task_decomposition_of_analyze():
    runs = agent_runs(lambda steps: steps / LONGEST, n_tasks=10, n_runs=12)
    result = horizon(runs, groups=2, n_boot=0)
    tasks = analyze(runs, n_boot=0).task_arrays()
    # tasks are numbered in length order here, so the groups are the first and last five
    for g, members in zip(result.groups, (slice(0, 5), slice(5, 10)), strict=True):
        expected = tasks["variance"][members].sum() / tasks["error"][members].sum()
        assert g.incoherence.value == pytest.approx(expected)
        assert g.n_runs == 60


def test_to_dict_has_the_documented_shape_and_is_json():
    result = horizon(agent_runs(lambda steps: steps / LONGEST, n_tasks=10, n_runs=10), groups=3, n_boot=100)
    d = json.loads(json.dumps(result.to_dict()))
    assert {"groups", "slope", "r2", "median_split"} <= set(d)
    assert len(d["groups"]) == 3 and [g["n_tasks"] for g in d["groups"]] == [4, 3, 3]
    for g in d["groups"]:
        assert {"length_mean", "n_tasks", "incoherence", "ci_low", "ci_high"} <= set(g)
        assert isinstance(g["length_mean"], float) and isinstance(g["n_tasks"], int)
        assert g["ci_low"] <= g["incoherence"] <= g["ci_high"]
    assert isinstance(d["slope"], float) and isinstance(d["r2"], float)
    assert {"short", "long"} <= set(d["median_split"])
    assert all(isinstance(d["median_split"][k], float) for k in ("short", "long"))


def test_lengths_come_from_the_runs_columns():
    runs = agent_runs(lambda steps: 0.5, n_tasks=2, n_runs=3)
    np.testing.assert_array_equal(run_lengths(runs, "steps"), runs["n_steps"])
    np.testing.assert_array_equal(run_lengths(runs, "tool_calls"), runs["n_tool_calls"])
    np.testing.assert_array_equal(run_lengths(runs, "tokens"), runs["input_tokens"] + runs["output_tokens"])
    tokens = horizon(agent_runs(lambda s: s / LONGEST, n_tasks=10, n_runs=10), length="tokens", groups=2, n_boot=0)
    assert tokens.length == "tokens" and tokens.groups[0].length_mean > 100


def test_bad_options_are_clear_errors():
    runs = agent_runs(lambda steps: 0.5, n_tasks=3, n_runs=4)
    with pytest.raises(ValueError, match="length must be one of steps, tool_calls, tokens"):
        horizon(runs, length="seconds")
    with pytest.raises(ValueError, match="3 tasks with a known error .* cannot make 5 groups"):
        horizon(runs, groups=5)
    chosen = horizon(runs)  # the default fits the data: 2 groups for 3 tasks, and says so
    assert len(chosen.groups) == 2 and any("2 length groups, chosen for 3 tasks" in w for w in chosen.warnings)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        horizon(runs, groups=0)
    unjudged = runs.with_column("success", np.full(len(runs), np.nan)).with_column(
        "reference", np.full(len(runs), None, dtype=object))
    with pytest.raises(ValueError, match="no task has a known error"):
        horizon(unjudged, groups=1)
    no_column = Table({"task_id": ["a"], "outcome": ["x"]})
    with pytest.raises(ValueError, match="needs the runs column 'n_steps'"):
        horizon(no_column)


def test_fit_skips_zero_and_undefined_groups():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    slope, intercept, r2, n = fit_power_law(x, 0.1 * x**0.5)
    assert slope == pytest.approx(0.5) and intercept == pytest.approx(math.log(0.1)) and r2 == pytest.approx(1.0)
    assert n == 5
    slope, _, _, n = fit_power_law(x, np.array([0.0, np.nan, 0.2, 0.4, 0.8]))
    assert n == 3 and slope == pytest.approx(1.0)
    assert math.isnan(fit_power_law(x, np.array([0.0, 0.0, 0.0, 0.0, 0.3]))[0])  # one point: no line
    slope, _, r2, _ = fit_power_law(x, np.full(5, 0.4))
    assert slope == pytest.approx(0.0, abs=1e-12) and math.isnan(r2)  # flat: R² undefined


def test_all_correct_short_tasks_are_left_out_of_the_fit_with_a_warning():
    runs = agent_runs(lambda steps: steps / LONGEST, n_tasks=10, n_runs=10)
    success = runs["success"].copy()
    outcome = runs["outcome"].copy()
    short = np.isin(runs["task_id"], ["task-0", "task-1"])
    success[short] = 1.0
    outcome[short] = json.dumps("right")
    runs = runs.with_column("success", success).with_column("outcome", outcome)
    result = horizon(runs, n_boot=0)
    assert math.isnan(result.groups[0].incoherence.value) and result.n_fit == 4
    assert any("left out of the power-law fit" in w for w in result.warnings)
    assert result.to_dict()["groups"][0]["incoherence"] is None


def test_median_split_shares_ties_between_the_halves_and_leaves_out_constant_length_tasks():
    rows = []
    for t, lengths in enumerate([(3, 3, 3, 3), (2, 3, 3, 5, 6), (3, 3, 3, 3, 3, 3, 5, 5)]):
        for i, n_steps in enumerate(lengths):
            rows.append({"run_id": f"{t}-{i}", "task_id": f"t{t}", "status": "ok", "n_steps": n_steps,
                         "outcome": "a" if i % 2 else "b", "success": 0.0, "reference": "c"})
    result = horizon(Table.from_records(rows, RUN_COLUMNS), groups=1, n_boot=0)
    split = result.median_split
    assert split.n_tasks == 2  # t0: every run the same length, so no long half
    # t1: 2, 3 short; 5, 6 long; the middle 3 left out. t2: four 3s short; both 5s and two 3s long
    # (the old split put all six 3s short: halves of 6 and 2)
    assert (split.n_short_runs, split.n_long_runs) == (6, 6)


def flat_population(rng: np.random.Generator, n_tasks: int = 40, n_runs: int = 10, *, success_falls: bool = False,
                    failed_longer: bool = False) -> Table:
    """Tasks of typical length 4 to 64 steps; success p_t, failures over 6 wrong answers with the
    task's own Dirichlet(0.5) probabilities: nothing about the failures depends on length."""
    typical = np.exp(rng.uniform(np.log(4), np.log(64), n_tasks))
    p = 0.8 - 0.6 * np.log(typical / 4) / np.log(16) if success_falls else rng.beta(2, 3, n_tasks)
    rows = []
    for t in range(n_tasks):
        q = rng.dirichlet(np.full(6, 0.5))
        for i in range(n_runs):
            ok = rng.random() < p[t]
            steps = max(1, round(typical[t] * rng.uniform(0.5, 1.5) * (1.5 if failed_longer and not ok else 1)))
            out = "right" if ok else f"wrong {rng.choice(6, p=q)}"
            rows.append({"run_id": f"r{t}-{i}", "task_id": f"task-{t}", "status": "ok", "outcome": json.dumps(out),
                         "success": float(ok), "reference": json.dumps("right"), "n_steps": steps})
    return Table.from_records(rows, RUN_COLUMNS)


def test_slope_intervals_call_a_trend_only_when_they_exclude_zero():
    rising = horizon(agent_runs(lambda steps: steps / LONGEST), n_boot=500)
    assert rising.trend == "rises" and 0 < rising.slope_low < rising.slope < rising.slope_high
    assert rising.diversity_trend == "rises" and rising.diversity_low > 0
    assert rising.n_boot == 500 and rising.n_boot_used == 500
    d = rising.to_dict()
    assert d["trend"] == "rises" and d["slope_ci"] == [rising.slope_low, rising.slope_high]
    assert all(0 <= g["failure_diversity"] <= 1 and 0 <= g["success_rate"] <= 1 for g in d["groups"])
    # the old reading (slope above 0.14 with R² ≥ 0.5) called a flat population rising 8% of the time;
    # over a few dozen flat populations the interval calls it rarely
    rng = np.random.default_rng(5)
    called = [horizon(flat_population(rng), n_boot=300, seed=k).trend for k in range(30)]
    assert called.count("rises") <= 4 and called.count("none") >= 24
    # no interval, no trend
    assert horizon(agent_runs(lambda steps: steps / LONGEST), n_boot=0).trend is None


def test_slope_intervals_are_reproducible_from_the_seed():
    runs = agent_runs(lambda steps: steps / LONGEST, n_tasks=20, n_runs=10)
    a, b, c = (horizon(runs, n_boot=300, seed=s) for s in (1, 1, 2))
    assert (a.slope_low, a.slope_high) == (b.slope_low, b.slope_high) != (c.slope_low, c.slope_high)


def test_a_success_trend_moves_incoherence_but_not_failure_diversity():
    """Success falling from 0.8 to 0.2 with length, failures the same: incoherence falls (it is at
    least the success rate), failure diversity does not move, and the terminal says why."""
    from hotmess.cli.render_overtime import horizon_verdict

    rng = np.random.default_rng(3)
    results = [horizon(flat_population(rng, success_falls=True), n_boot=300, seed=k) for k in range(6)]
    assert all(r.trend == "falls" for r in results)
    assert sum(r.diversity_trend == "none" for r in results) >= 5
    one = next(r for r in results if r.diversity_trend == "none").to_dict()
    assert one["groups"][0]["success_rate"] > one["groups"][-1]["success_rate"] + 0.3
    lines = horizon_verdict(one)
    assert lines[0].startswith("[green]incoherence falls with length[/]")
    assert any("the fall follows the success rate" in line for line in lines)


def test_median_split_is_paired_and_says_when_success_drives_it():
    """Failed runs 1.5 times as long, nothing else: the long half holds the failures, so its
    incoherence is truly lower; its failure diversity is not, and the split says so."""
    from hotmess.cli.render_overtime import _split_lines

    result = horizon(flat_population(np.random.default_rng(11), failed_longer=True), n_boot=300)
    split = result.median_split
    assert split.difference.paired and split.difference.value < 0 and split.trend == "falls"
    assert split.success_long < split.success_short - 0.15
    assert split.diversity_trend == "none"
    low, high = split.to_dict()["diversity_difference_ci"]
    assert low < split.diversity_long - split.diversity_short < high
    assert any("the difference follows their success" in line for line in _split_lines(split.to_dict()))


def test_incomplete_runs_are_left_out():
    runs = agent_runs(lambda steps: 0.5, n_tasks=5, n_runs=6)
    status = runs["status"].copy()
    status[:3] = "incomplete"
    result = horizon(runs.with_column("status", status), n_boot=0)
    assert result.n_incomplete == 3 and result.n_runs == len(runs) - 3


@pytest.mark.skipif(not TAU.exists(), reason="the tau-bench file lives beside the repository, in ../shared/data/tau-bench (tau-bench's historical_trajectories/gpt-4o-airline.json, MIT)")
@pytest.mark.parametrize("length", ["steps", "tool_calls", "tokens"])
def test_horizon_on_the_tau_bench_file(tmp_path, length):
    from hotmess.integrations.taubench import parse_taubench
    from hotmess.store.database import connect
    from hotmess.store.readers import read_for_analysis
    from hotmess.store.writer import insert_runs

    batch = parse_taubench(TAU)
    conn = connect(tmp_path / "tau.db")
    insert_runs(conn, batch.runs, batch.steps, source="tau-bench", path=TAU)
    runs, steps = read_for_analysis(conn)
    conn.close()
    result = horizon(runs, steps, length=length, outcome="actions", n_boot=200)
    assert result.n_tasks == 50 and sum(g.n_tasks for g in result.groups) == 50
    if length == "tokens" and not (runs["input_tokens"] + runs["output_tokens"]).any():
        return  # the file records no token counts: every length is 0, no fit
    for g in result.groups:
        assert math.isfinite(g.length_mean) and math.isfinite(g.incoherence.value)
        assert 0 <= g.incoherence.ci_low <= g.incoherence.value <= g.incoherence.ci_high <= 1
    assert math.isfinite(result.slope) and 0 <= result.r2 <= 1
    assert math.isfinite(result.median_split.short.value) and math.isfinite(result.median_split.long.value)
