"""Intermediate goals: per-position goal variance, bias and incoherence, alignment, goal drift.

Hand-computed cases on small tables, agents recorded through the real tracer into SQLite, and
the real tau-bench file imported into SQLite and checked against a direct computation.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import read_back

import hotmess
from hotmess.analyzers.goals import goal_bearing, goal_coherence, plan_text, step_goals
from hotmess.analyzers.outcomes import DEFAULT_READ_ONLY
from hotmess.integrations.taubench import parse_taubench
from hotmess.store.database import connect
from hotmess.store.readers import read_goal_steps, read_runs
from hotmess.store.writer import insert_runs
from hotmess.tables import Table

TAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-bench" / "gpt-4o-airline.json"
needs_tau = pytest.mark.skipif(not TAU.exists(), reason="the tau-bench file lives beside the repository, in ../shared/data/tau-bench (tau-bench's historical_trajectories/gpt-4o-airline.json, MIT)")


def tables(runs: dict[str, tuple[str, list[str]]], references: dict[str, list[str]] | None = None):
    """Runs ``{run_id: (task, [tool names])}`` as run and step tables, one tool call per goal
    (argument-free), with an LLM reply that states no plan between calls."""
    references = references or {}
    run_rows, step_rows = [], []
    for run_id, (task, calls) in runs.items():
        ref = references.get(task)
        run_rows.append({
            "run_id": run_id, "task_id": task, "status": "ok",
            "reference": None if ref is None else json.dumps([{"name": c, "kwargs": {}} for c in ref]),
        })
        index = 0
        for call in calls:
            step_rows.append({"run_id": run_id, "step_index": index, "kind": "llm",
                              "output": json.dumps("Let me check that for you.")})
            step_rows.append({"run_id": run_id, "step_index": index + 1, "kind": "tool",
                              "tool": call, "name": call, "input": "{}"})
            index += 2
    run_cols = {"run_id": "O", "task_id": "O", "status": "O", "reference": "O"}
    step_cols = {"run_id": "O", "step_index": "int64", "kind": "O", "tool": "O", "name": "O",
                 "input": "O", "output": "O", "goal": "O"}
    return Table.from_records(run_rows, run_cols), Table.from_records(step_rows, step_cols)


HAND = {
    "a1": ("a", ["A", "B", "C", "A"]),
    "a2": ("a", ["A", "B", "D"]),
    "a3": ("a", ["A", "C", "C"]),
    "a4": ("a", ["A", "B"]),
    "b1": ("b", ["X", "Y", "Z"]),
    "b2": ("b", ["X", "Z", "Z"]),
}


def test_hand_computed_variance_bias_and_incoherence_per_position():
    runs, steps = tables(HAND, {"a": ["A", "B", "C"]})
    result = goal_coherence(runs, steps, correction=False)
    pos = {p.position: p for p in result.positions}
    assert sorted(pos) == [0, 1, 2, 3]
    # position 0: every run of both tasks agrees; task a hits its reference A
    assert (pos[0].n_runs, pos[0].goal_clusters, pos[0].variance) == (6, 2, 0.0)
    assert pos[0].bias == 0.0 and pos[0].error == 0.0 and np.isnan(pos[0].incoherence)
    # position 1: task a B,B,C,B (reference B): p̄ = (3/4, 1/4), variance 3/8, error 2(1 − 3/4),
    # bias (1/4)² + (1/4)²; task b Y,Z (no reference): variance 1/2, counted in variance only
    assert pos[1].n_runs == 6 and pos[1].goal_clusters == 4
    assert pos[1].variance == pytest.approx((3 / 8 + 1 / 2) / 2)
    assert pos[1].bias == pytest.approx(1 / 8) and pos[1].error == pytest.approx(1 / 2)
    assert pos[1].incoherence == pytest.approx((3 / 8) / (1 / 2))
    assert (pos[1].n_tasks, pos[1].n_tasks_with_reference) == (2, 1)
    # position 2: task a C,D,C (reference C): p̄ = (2/3, 1/3); task b Z,Z
    assert pos[2].variance == pytest.approx((4 / 9 + 0) / 2)
    assert pos[2].bias == pytest.approx(2 / 9) and pos[2].error == pytest.approx(2 / 3)
    assert pos[2].incoherence == pytest.approx((4 / 9) / (2 / 3))
    # position 3: one run, past the reference's end: variance only
    assert pos[3].n_runs == 1 and pos[3].n_tasks_with_reference == 0
    assert np.isnan(pos[3].bias) and pos[3].to_dict()["incoherence"] is None


def test_incoherence_is_a_ratio_of_sums_over_tasks():
    runs, steps = tables(HAND)
    calls = {"a": [("A", {}), ("B", {}), ("C", {})], "b": [{"name": n, "kwargs": {}} for n in "XYZ"]}
    result = goal_coherence(runs, steps, reference_actions=calls, correction=False)
    p1 = result.positions[1]
    # task a: variance 3/8, error 1/2; task b Y,Z vs Y: variance 1/2, error 1, bias 1/2
    assert p1.incoherence == pytest.approx((3 / 8 + 1 / 2) / (1 / 2 + 1))
    assert p1.bias == pytest.approx((1 / 8 + 1 / 2) / 2)
    assert p1.error == pytest.approx((1 / 2 + 1) / 2)
    # plain strings are expected goal() texts, which tool-call goals never match: no bias then
    texts = goal_coherence(runs, steps, reference_actions={"a": ["A", "B", "C"]}, correction=False)
    assert not texts.has_reference and "another kind" in texts.warnings[0]


def test_correction_scales_each_tasks_variance():
    runs, steps = tables(HAND, {"a": ["A", "B", "C"]})
    plain = goal_coherence(runs, steps, correction=False).positions[1]
    corrected = goal_coherence(runs, steps).positions[1]  # the unbiased form is the default
    assert corrected.variance == pytest.approx((3 / 8 * 4 / 3 + 1 / 2 * 2) / 2)
    # error unchanged; task a's bias gives up what its variance gains: 1/8 − (3/8)/3 = 0
    assert corrected.error == pytest.approx(plain.error)
    assert corrected.bias == pytest.approx(1 / 8 - 3 / 8 / 3)


def test_drift_slope_per_run_and_the_runs_listed():
    runs, steps = tables(HAND)
    drift = goal_coherence(runs, steps, drift_threshold=0.45).goal_drift
    # distances from the first goal: a1 0,1,1,0 → slope 0; a2, a3, b1, b2 0,1,1 → slope 1/2;
    # a4 has only 2 goals
    slopes = dict(zip(drift.run_ids.tolist(), drift.slopes.tolist(), strict=True))
    assert slopes["a1"] == pytest.approx(0.0)
    for run_id in ("a2", "a3", "b1", "b2"):
        assert slopes[run_id] == pytest.approx(np.polyfit([0, 1, 2], [0, 1, 1], 1)[0])
    assert np.isnan(slopes["a4"])
    assert drift.runs == 5 and drift.mean_slope == pytest.approx(4 * 0.5 / 5)
    assert [d.run_id for d in drift.drifting] == ["a2", "a3", "b1", "b2"]
    assert drift.drifting[0].task_id == "a" and drift.drifting[0].n_goals == 3
    as_dict = goal_coherence(runs, steps, drift_threshold=0.45).to_dict(drift_limit=2)["goal_drift"]
    assert as_dict["n_drifting"] == 4 and len(as_dict["drifting"]) == 2


def test_text_drift_is_one_minus_tfidf_cosine():
    runs, steps = tables({"r": ("t", ["book flight", "book flight now", "book flight now", "book flight now"])})
    # distinct goal texts ["book flight",{}] and ["book flight now",{}]: smooth idf 1 for book and
    # flight, ln(3/2) + 1 for now; cosine = 2 / (√2 · √(2 + idf_now²))
    idf_now = np.log(3 / 2) + 1
    distance = 1 - 2 / (np.sqrt(2) * np.sqrt(2 + idf_now**2))
    slope_of = np.polyfit([0, 1, 2, 3], [0, 1, 1, 1], 1)[0]  # per unit of distance
    text = goal_coherence(runs, steps, method="text").goal_drift
    assert text.slopes[0] == pytest.approx(slope_of * distance)
    assert goal_coherence(runs, steps, method="exact").goal_drift.slopes[0] == pytest.approx(slope_of)


def test_progress_alignment_takes_the_goal_in_force_at_each_decile():
    runs, steps = tables({"r1": ("t", ["A", "B", "C", "D"]), "r2": ("t", ["A", "B"])}, {"t": ["A", "B"]})
    by_index = goal_coherence(runs, steps, align="index", correction=False)
    assert [p.n_runs for p in by_index.positions] == [2, 2, 1, 1]
    by_progress = goal_coherence(runs, steps, align="progress", correction=False)
    assert [p.position for p in by_progress.positions] == list(range(10))
    assert all(p.n_runs == 2 for p in by_progress.positions)
    # r1 holds goal floor(4d/10): A A A B B C C C D D; r2 floor(2d/10): A×5 B×5;
    # the reference [A, B] is aligned like a run of 2 goals: A×5 B×5
    expected_variance = [0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert [p.variance for p in by_progress.positions] == pytest.approx(expected_variance)
    # expected A then B: both runs hit at deciles 0–2 (error 0), one of two after (error 1)
    assert [p.error for p in by_progress.positions] == pytest.approx([0, 0, 0] + [1] * 7)


def test_read_only_calls_are_goals_unless_left_out():
    runs, steps = tables({"r": ("t", ["get_user", "search_flights", "book", "think"])},
                         {"t": ["get_user", "book"]})
    everything = goal_coherence(runs, steps)
    assert everything.n_goals == 4 and not everything.read_only_excluded
    lean = goal_coherence(runs, steps, read_only=DEFAULT_READ_ONLY)
    assert lean.n_goals == 1 and lean.read_only_excluded
    # the reference drops its read-only actions too, so "book" is expected at position 0
    assert lean.positions[0].error == 0.0
    assert everything.positions[1].error == 2.0  # search_flights where book was expected


def test_runs_without_goals_give_no_positions():
    runs, steps = tables({"r": ("t", [])})
    result = goal_coherence(runs, steps)
    assert result.positions == () and result.n_goals == 0 and result.goal_drift.runs == 0
    out = result.to_dict()
    assert out["positions"] == [] and out["goal_drift"]["mean_slope"] is None
    with pytest.raises(ValueError, match="align must be one of index, progress"):
        goal_coherence(runs, steps, align="decile")
    with pytest.raises(ValueError, match="needs embed"):
        goal_coherence(runs, steps, method="embedding")


def test_embedding_goals_cluster_and_drift_by_cosine():
    runs, steps = tables({"r1": ("t", ["a", "b", "c"]), "r2": ("t", ["a", "b2", "c"])})
    vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0], "b2": [0.01, 1.0], "c": [1.0, 1.0]}

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([vectors[json.loads(t)[0]] for t in texts])

    result = goal_coherence(runs, steps, method="embedding", embed=embed)
    assert [p.goal_clusters for p in result.positions] == [1, 1, 1]  # b and b2 are one cluster
    # r1 distances 0, 1, 1 − 1/√2
    assert result.goal_drift.slopes[0] == pytest.approx((1 - 1 / np.sqrt(2)) / 2)


def test_plan_text_rules():
    assert plan_text(json.dumps({"plan": "find the user, then rebook"})) == "find the user, then rebook"
    assert plan_text(json.dumps({"goal": ["look up", "refund"]})) == "look up; refund"
    assert plan_text(json.dumps("Sure.\nPlan: cancel the booking\nThen ask.")) == "cancel the booking"
    assert plan_text(json.dumps({"content": "goal: refund", "tool_calls": []})) == "refund"
    assert plan_text(json.dumps("I plan to help you.")) is None
    assert plan_text(None) is None


def test_explicit_goals_plans_and_tool_calls_recorded_through_the_tracer(db):
    @hotmess.trace(task_id="t", agent="goals")
    def with_goals() -> str:
        hotmess.goal("Find the user")
        hotmess.action("get_user", {"id": 1}, {"name": "Mia"})
        hotmess.goal("find the user")  # the same goal again, recorded again
        hotmess.goal("Rebook")
        with hotmess.step("think", kind="llm") as s:
            s.output = {"plan": "not read: a goal is in force"}
        hotmess.action("book", {"flight": 2.0}, {"ok": True})
        return "done"

    @hotmess.trace(task_id="t", agent="plain")
    def without_goals() -> str:
        with hotmess.step("plan", kind="llm") as s:
            s.output = "Plan: look up the user"
        with hotmess.step("reply", kind="llm") as s:
            s.output = "Hello!"
        hotmess.action("book", {"flight": 2}, {"ok": True})
        return "done"

    with_goals()
    without_goals()
    read_back(db)
    conn = connect(db, create=False)
    runs, steps = read_runs(conn), read_goal_steps(conn)
    conn.close()
    keys = step_goals(steps)
    bearing = goal_bearing(steps, keys)
    agent_of = dict(zip(runs["run_id"].tolist(), runs["agent"].tolist(), strict=True))
    goals_by_agent = defaultdict(list)
    for run_id, key, starts in zip(steps["run_id"], keys, bearing, strict=True):
        if starts:
            goals_by_agent[agent_of[run_id]].append(key)
    # explicit goals and tool calls both count: a call made under goal() is still its own step
    assert goals_by_agent["goals"] == ["goal:find the user", 'tool:["get_user",{"id":1}]',
                                       "goal:find the user", "goal:rebook", 'tool:["book",{"flight":2}]']
    assert goals_by_agent["plain"] == ["plan:look up the user", 'tool:["book",{"flight":2}]']
    result = goal_coherence(runs, steps, correction=False)
    assert [p.n_runs for p in result.positions] == [2, 2, 1, 1, 1]
    assert result.positions[0].goal_clusters == 2 and result.positions[0].variance == 0.5


def test_agent_whose_goals_diverge_late_shows_rising_variance(db):
    rng = random.Random(3)
    plans = {"refund": ["get_order", "check_policy", "refund"], "rebook": ["get_user", "search", "rebook"]}

    @hotmess.trace(task_id=lambda task, trial: task, instance=lambda task, trial: trial, agent="late-mess")
    def agent(task: str, trial: int) -> str:
        for tool in plans[task]:  # the first three goals follow the task's plan
            hotmess.action(tool, {"task": task}, {"ok": True})
        for _ in range(3):  # then the agent wanders
            hotmess.action(rng.choice(["escalate", "retry", "apologise", "refund", "cancel"]), {"task": task})
        return "done"

    for task in plans:
        for trial in range(15):
            agent(task, trial)
    runs, _ = read_back(db)
    conn = connect(db, create=False)
    steps = read_goal_steps(conn)
    conn.close()
    result = goal_coherence(runs, steps)
    variance = [p.variance for p in result.positions]
    assert len(variance) == 6 and all(p.n_runs == 30 for p in result.positions)
    assert variance[:3] == [0.0, 0.0, 0.0]
    assert min(variance[3:]) > 0.5
    assert result.variance_slope > 0 and result.trend_positions == (0, 1, 2, 3, 4, 5)
    progress = goal_coherence(runs, steps, align="progress")
    assert [p.variance for p in progress.positions[:5]] == [0.0] * 5
    assert min(p.variance for p in progress.positions[5:]) > 0.5


# ---------------------------------------------------------------------------- tau-bench


@pytest.fixture(scope="module")
def tau(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("tau") / "tau.db"
    batch = parse_taubench(TAU)
    conn = connect(path)
    insert_runs(conn, batch.runs, batch.steps, source="tau-bench", path=TAU)
    runs, steps = read_runs(conn), read_goal_steps(conn)
    conn.close()
    return runs, steps, json.loads(TAU.read_text())


def _direct_position(records: list[dict], k: int) -> dict[str, float]:
    """Variance, bias, error and incoherence at goal k, straight from the file: each record's
    k-th tool call against the k-th ground-truth action of its task."""
    def call(name: str, arguments: dict) -> str:
        return json.dumps([name, arguments], sort_keys=True)

    goals: dict[int, list[str]] = defaultdict(list)
    expected: dict[int, str] = {}
    for rec in records:
        calls = [
            call(tc["function"]["name"], json.loads(tc["function"]["arguments"]))
            for msg in rec["traj"] if msg["role"] == "assistant"
            for tc in msg.get("tool_calls") or []
        ]
        if len(calls) > k:
            goals[rec["task_id"]].append(calls[k])
        actions = rec["info"]["task"]["actions"]
        if len(actions) > k:
            expected[rec["task_id"]] = call(actions[k]["name"], actions[k]["kwargs"])
    variances, biases, errors, ref_variances = [], [], [], []
    for task, keys in goals.items():
        p = {key: c / len(keys) for key, c in Counter(keys).items()}
        variance = 1 - sum(v * v for v in p.values())
        variances.append(variance)
        if task in expected:
            p_y = p.get(expected[task], 0.0)
            biases.append((1 - p_y) ** 2 + sum(v * v for key, v in p.items() if key != expected[task]))
            errors.append(2 * (1 - p_y))
            ref_variances.append(variance)
    return {
        "n_runs": sum(len(v) for v in goals.values()),
        "variance": float(np.mean(variances)),
        "bias": float(np.mean(biases)),
        "error": float(np.mean(errors)),
        "incoherence": sum(ref_variances) / sum(errors),
        "n_tasks_with_reference": len(biases),
    }


@needs_tau
@pytest.mark.parametrize("k", [0, 2])
def test_tau_bench_tool_call_goals_against_ground_truth_actions(tau, k):
    runs, steps, records = tau
    result = goal_coherence(runs, steps, align="index", method="exact", correction=False)
    assert result.n_runs == 200 and result.n_tasks == 50
    position = result.positions[k].to_dict()
    direct = _direct_position(records, k)
    for name, value in direct.items():
        assert position[name] == pytest.approx(value), name
    assert result.positions[0].n_tasks_with_reference > 0
    assert result.positions[0].bias > 0  # gpt-4o often starts elsewhere than the ground truth


@needs_tau
def test_tau_bench_goal_variance_grows_over_the_run(tau):
    runs, steps, _ = tau
    for align in ("index", "progress"):
        result = goal_coherence(runs, steps, align=align)
        first, *_, last = [result.positions[p] for p in result.trend_positions]
        assert last.variance > first.variance
        assert result.variance_slope > 0
        assert result.goal_drift.runs > 100
