"""The analyze() pipeline on hand-built run/step tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotmess.analyzers import Analysis, GroupedAnalysis, analyze
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS, Table


def runs_table(rows):
    rows = [{"status": "ok", "run_id": f"r{i}", **row} for i, row in enumerate(rows)]
    return Table.from_records(rows, RUN_COLUMNS)


def steps_table(rows):
    return Table.from_records(rows, STEP_COLUMNS)


def run(task, outcome, success=None, reference=None, **extra):
    return {
        "task_id": task,
        "outcome": outcome,
        "success": success,
        "reference": reference,
        **extra,
    }


# Two tasks, hand-computed:
# t1: Paris ✓, " paris" ✓, Lyon ✗, Nice ✗, reference "Paris": p̄ = (1/2, 1/4, 1/4)
#     error = 2(1 − 1/2) = 1, bias = 1/4 + 1/16 + 1/16 = 3/8, variance = 1 − 6/16 = 5/8
# t2: Rome ✗ ×4, reference "Milan": p̄_y = 0, error = 2, bias = 1 + 1 = 2, variance = 0
BASIC = [
    run("t1", '"Paris"', 1.0, '"Paris"'),
    run("t1", " paris", 1.0, '"Paris"'),
    run("t1", '"Lyon"', 0.0, '"Paris"'),
    run("t1", '"Nice"', 0.0, '"Paris"'),
    *[run("t2", '"Rome"', 0.0, '"Milan"') for _ in range(4)],
]


def test_analyze_hand_computed():
    a = analyze(runs_table(BASIC), n_boot=200, correction=False)
    assert isinstance(a, Analysis)
    assert (a.n_tasks, a.n_runs, a.n_incomplete) == (2, 8, 0)
    t1, t2 = a.tasks
    assert (t1.task_id, t1.n, t1.successes, t1.outcome_clusters) == ("t1", 4, 2, 3)
    assert (t1.error, t1.bias, t1.variance) == pytest.approx((1.0, 3 / 8, 5 / 8))
    assert (t2.error, t2.bias, t2.variance) == pytest.approx((2.0, 2.0, 0.0))
    assert t1.incoherence == pytest.approx(5 / 8)
    # incoherence = Σ variance / Σ error = (5/8 + 0) / (1 + 2) = 5/24
    assert a.incoherence.value == pytest.approx(5 / 24)
    assert a.incoherence.ci_low <= a.incoherence.value <= a.incoherence.ci_high
    # top level: means over tasks
    assert (a.bias, a.variance, a.error) == pytest.approx((19 / 16, 5 / 16, 3 / 2))
    assert a.success_rate == pytest.approx(2 / 8)
    # pass^1 = mean(2/4, 0); pass^2 = mean(C(2,2)/C(4,2), 0) = 1/12; pass@2 = mean(5/6, 0)
    assert a.pass_hat_k[1] == pytest.approx(0.25) and a.pass_hat_k[2] == pytest.approx(1 / 12)
    assert a.pass_at_k[2] == pytest.approx(5 / 12)
    # failures: t1 Lyon, Nice (no shared pair), t2 Rome ×4 (12 ordered pairs, all shared)
    # pooled = (0 + 12) / (2 + 12) = 6/7
    assert t1.failure_consistency == 0.0 and t2.failure_consistency == 1.0
    assert a.failure_consistency == pytest.approx(6 / 7)
    assert t2.failure_entropy == 0.0 and t1.failure_entropy == pytest.approx(1.0)
    assert [c.key for c in t1.clusters] == ["paris", "lyon", "nice"]
    assert [c.size for c in t1.clusters] == [2, 1, 1]
    assert t1.clusters[0].correct is True and t1.clusters[1].correct is False
    assert t1.clusters[0].example == '"Paris"'
    assert any("plug-in figures with few runs" in w for w in a.warnings)
    assert any("only 2 tasks" in w for w in a.warnings)
    assert a.failure_diversity == pytest.approx(1 / 7)
    assert a.min_runs_per_task == 4 and a.median_runs_per_task == 4.0


def test_to_dict_shape_and_json_safe():
    d = analyze(runs_table(BASIC), n_boot=50).to_dict()
    for key in (
        "n_tasks",
        "n_runs",
        "success_rate",
        "pass_hat_k",
        "pass_at_k",
        "bias",
        "variance",
        "error",
        "incoherence",
        "failure_consistency",
        "tasks",
    ):
        assert key in d
    assert isinstance(d["n_tasks"], int) and isinstance(d["success_rate"], float)
    assert set(d["pass_hat_k"]) == {"1", "2", "3", "4"} and set(d["pass_at_k"]) == {
        "1",
        "2",
        "3",
        "4",
    }
    assert {"value", "ci_low", "ci_high", "method"} <= set(d["incoherence"])
    assert d["incoherence"]["method"] == "brier"
    task_keys = {
        "task_id",
        "n",
        "successes",
        "bias",
        "variance",
        "error",
        "incoherence",
        "outcome_clusters",
        "failure_consistency",
    }
    assert all(task_keys <= set(t) for t in d["tasks"])
    assert isinstance(d["tasks"][0]["task_id"], str)
    assert d["tasks"][0]["clusters"][0] == {
        "key": "paris",
        "size": 2,
        "example": '"Paris"',
        "correct": True,
    }
    json.dumps(d, allow_nan=False)


def test_incomplete_runs_excluded():
    rows = BASIC + [
        run("t1", '"Bordeaux"', 0.0, '"Paris"', status="incomplete"),
        run("t3", None, None, None, status="incomplete"),
    ]
    a = analyze(runs_table(rows), n_boot=50)
    b = analyze(runs_table(BASIC), n_boot=50)
    assert a.n_incomplete == 2 and b.n_incomplete == 0
    da, db = a.to_dict(), b.to_dict()
    da.pop("n_incomplete")
    db.pop("n_incomplete")
    assert da == db


def test_harmonisation_of_clusters_with_success():
    # "Paris, France" succeeded → reference cluster; the "Paris" run that failed is split off.
    rows = [
        run("t", '"Paris"', 1.0, '"Paris"'),
        run("t", '"Paris, France"', 1.0, '"Paris"'),
        run("t", '"Paris"', 0.0, '"Paris"'),
        run("t", '"Lyon"', 0.0, '"Paris"'),
    ]
    (t,) = analyze(runs_table(rows), n_boot=0, correction=False).tasks
    # clusters: reference ×2, "<judged failed> paris", lyon → p̄ = (1/2, 1/4, 1/4)
    assert t.error == pytest.approx(1.0) and t.variance == pytest.approx(5 / 8)
    keys = {c.key: c for c in t.clusters}
    assert keys["paris"].size == 2 and keys["paris"].correct
    assert keys["<judged failed> paris"].size == 1 and not keys["<judged failed> paris"].correct


def test_success_without_reference_forms_correct_cluster():
    rows = [run("t", "a", 1.0), run("t", "b", 1.0), run("t", "c", 0.0), run("t", "c", 0.0)]
    a = analyze(runs_table(rows), n_boot=0, correction=False)
    (t,) = a.tasks
    # <correct> ×2, c ×2: p̄ = (1/2, 1/2): variance 1/2, error 1, bias 1/4 + 1/4
    assert (t.variance, t.error, t.bias) == pytest.approx((0.5, 1.0, 0.5))
    assert t.clusters[0].key in ("<correct>", "c") and {c.key for c in t.clusters} == {
        "<correct>",
        "c",
    }
    assert t.failure_consistency == 1.0


def test_reference_without_success_judges_by_key():
    rows = [
        run("t", " YES ", None, '"yes"'),
        run("t", "no", None, '"yes"'),
        run("t", "no", None, '"yes"'),
    ]
    a = analyze(runs_table(rows), n_boot=0)
    assert a.success_rate == pytest.approx(1 / 3)
    assert a.tasks[0].error == pytest.approx(2 * (1 - 1 / 3))


def test_no_reference_no_success_is_variance_only():
    rows = [run("t1", "a"), run("t1", "b"), run("t2", "a"), run("t2", "a")]
    a = analyze(runs_table(rows), n_boot=100, correction=False)
    d = a.to_dict()
    # t1 variance 1 − (1/4 + 1/4) = 1/2, t2 variance 0 → mean 1/4
    assert d["variance"] == pytest.approx(0.25)
    assert d["bias"] is None and d["error"] is None and d["success_rate"] is None
    assert d["incoherence"]["value"] is None and d["incoherence"]["reason"]
    assert d["has_reference"] is False and d["pass_hat_k"] == {}
    assert d["tasks"][0]["successes"] is None and d["tasks"][0]["clusters"][0]["correct"] is None
    assert any("only variance" in w for w in d["warnings"])


def test_by_agent_and_by_attribute():
    rows = []
    for t in range(6):
        for i in range(10):
            # agent A fails coherently (always "w"), agent B each failure its own way
            rows.append(
                run(
                    f"t{t}",
                    '"ok"' if i < 5 else '"w"',
                    1.0 if i < 5 else 0.0,
                    '"ok"',
                    agent="A",
                    attributes=json.dumps({"gen_ai.request.model": "m-a"}),
                )
            )
            rows.append(
                run(
                    f"t{t}",
                    '"ok"' if i < 5 else f'"w{i}"',
                    1.0 if i < 5 else 0.0,
                    '"ok"',
                    agent="B",
                    attributes=json.dumps({"gen_ai.request.model": "m-b"}),
                )
            )
    rows.append(run("t0", None, status="incomplete", agent="B"))
    g = analyze(runs_table(rows), by="agent", n_boot=200, correction=False)
    assert isinstance(g, GroupedAnalysis)
    assert list(g.groups) == ["A", "B"] and g.n_incomplete == 1
    a, b = g.groups["A"], g.groups["B"]
    assert b.n_incomplete == 1 and a.n_incomplete == 0
    # A: p̄ = (1/2, 1/2): variance 1/2, error 1 → incoherence 1/2
    # B: p̄ = (1/2, 1/10 × 5): variance 1 − 1/4 − 5/100 = 0.7, error 1 → 0.7
    assert a.incoherence.value == pytest.approx(0.5) and b.incoherence.value == pytest.approx(0.7)
    assert a.failure_consistency == 1.0 and b.failure_consistency == 0.0
    (diff,) = g.differences
    assert (diff.label_a, diff.label_b) == ("A", "B")
    assert diff.value == pytest.approx(-0.2)
    d = g.to_dict()
    assert set(d["groups"]) == {"A", "B"} and d["differences"][0]["value"] == pytest.approx(-0.2)
    json.dumps(d, allow_nan=False)
    g2 = analyze(runs_table(rows), by="gen_ai.request.model", n_boot=0, correction=False)
    # groups come from complete runs; the incomplete run (no attributes) forms no group
    assert list(g2.groups) == ["m-a", "m-b"] and g2.n_incomplete == 1
    assert g2.groups["m-b"].incoherence.value == pytest.approx(0.7)
    with pytest.raises(ValueError, match="neither a runs column"):
        analyze(runs_table(rows), by="no.such.key", correction=False)


# ---------------------------------------------------------------------------- actions


def test_actions_mapper_with_read_only_filter():
    reference = json.dumps(
        [{"name": "get_user", "kwargs": {"id": 7}}, {"name": "book", "kwargs": {"id": 1}}]
    )
    rows = [
        run("t", None, None, reference, run_id="r1"),
        run("t", None, None, reference, run_id="r2"),
        run("t", '[{"name": "book", "arguments": {"id": 1.0}}]', None, reference, run_id="r3"),
        run("t", None, None, reference, run_id="r4"),
    ]
    runs = Table.from_records([{"status": "ok", **r} for r in rows], RUN_COLUMNS)
    steps = steps_table(
        [
            {
                "run_id": "r1",
                "step_index": 3,
                "kind": "tool",
                "tool": "book",
                "input": '{"id": 1.0}',
            },
            {"run_id": "r1", "step_index": 0, "kind": "llm", "name": "chat", "input": "[]"},
            {
                "run_id": "r1",
                "step_index": 1,
                "kind": "tool",
                "tool": "get_user",
                "input": '{"id": 7}',
            },
            {
                "run_id": "r2",
                "step_index": 0,
                "kind": "tool",
                "tool": "search_flights",
                "input": "{}",
            },
            {"run_id": "r2", "step_index": 1, "kind": "tool", "tool": "book", "input": '{"id": 2}'},
            {
                "run_id": "r4",
                "step_index": 0,
                "kind": "tool",
                "tool": "think",
                "input": '{"t": "hm"}',
            },
            {
                "run_id": "r4",
                "step_index": 1,
                "kind": "tool",
                "tool": "transfer_to_human_agents",
                "input": '{"summary": "help"}',
            },
            {"run_id": "other", "step_index": 0, "kind": "tool", "tool": "book", "input": "{}"},
        ]
    )
    a = analyze(runs, steps, outcome="actions", n_boot=0)
    (t,) = a.tasks
    # r1 (book id 1 after a read-only get_user) and r3 (outcome list) match the reference
    assert a.success_rate == pytest.approx(0.5) and t.successes == 2
    keys = {c.key: c.size for c in t.clusters}
    assert keys == {
        '[["book",{"id":1}]]': 2,
        '[["book",{"id":2}]]': 1,
        '[["transfer_to_human_agents",{"summary":"help"}]]': 1,
    }
    # with no read-only filter, get_user counts in the runs and in the reference: r1
    # (get_user, book) still matches, r3 (book only) no longer does
    b = analyze(runs, steps, outcome="actions", read_only=None, n_boot=0)
    assert b.tasks[0].successes == 1
    assert {c.key for c in b.tasks[0].clusters} >= {'[["search_flights",{}],["book",{"id":2}]]'}


def test_checks_from_reference_actions():
    # expected (state-changing only): book 1, book 2, cancel 9; get_user is read-only
    reference = json.dumps(
        [
            {"name": "get_user", "kwargs": {"id": 1}},
            {"name": "book", "kwargs": {"id": 1}},
            {"name": "book", "kwargs": {"id": 2}},
            {"name": "cancel", "kwargs": {"id": 9}},
        ]
    )
    runs = Table.from_records(
        [
            {"run_id": f"r{i}", "task_id": "t", "status": "ok", "reference": reference}
            for i in (1, 2, 3)
        ],
        RUN_COLUMNS,
    )
    calls = {
        "r1": [("book", '{"id": 1}'), ("book", '{"id": 1}'), ("cancel", '{"id": 9}')],  # 1 0 1
        "r2": [
            ("book", '{"id": 2}'),
            ("book", '{"id": 1}'),
            ("cancel", '{"id": 9}'),
            ("get_user", '{"id": 1}'),
        ],  # 1 1 1
        "r3": [],  # 0 0 0
    }
    steps = steps_table(
        [
            {"run_id": rid, "step_index": i, "kind": "tool", "tool": name, "input": args}
            for rid, cs in calls.items()
            for i, (name, args) in enumerate(cs)
        ]
    )
    a = analyze(runs, steps, decomposition="checks", n_boot=0, correction=False)
    (t,) = a.tasks
    # matrix [[1,0,1],[1,1,1],[0,0,0]]: ȳ = (2/3, 1/3, 2/3)
    # error = 4 zeros / 9 = 4/9; bias = (1/9 + 4/9 + 1/9)/3 = 2/9; variance = 4/9 − 2/9 = 2/9
    assert (t.error, t.bias, t.variance) == pytest.approx((4 / 9, 2 / 9, 2 / 9))
    assert a.incoherence.method == "checks"
    # no success known: a run is correct iff it passes every check (only r2)
    assert a.success_rate == pytest.approx(1 / 3)

    # a reference of read-only actions only: those are the checks
    ro_ref = json.dumps([{"name": "get_user", "kwargs": {"id": 1}}])
    runs2 = Table.from_records(
        [
            {"run_id": "r2", "task_id": "t", "status": "ok", "reference": ro_ref},
            {"run_id": "r3", "task_id": "t", "status": "ok", "reference": ro_ref},
        ],
        RUN_COLUMNS,
    )
    (t2,) = analyze(runs2, steps, decomposition="checks", n_boot=0, correction=False).tasks
    # checks (1) and (0): ȳ = 1/2: error 1/2, bias 1/4, variance 1/4
    assert (t2.error, t2.bias, t2.variance) == pytest.approx((0.5, 0.25, 0.25))


def test_explicit_checks_attribute():
    rows = [
        run("t", "x", attributes=json.dumps({"hotmess.checks": {"a": True, "b": False}})),
        run(
            "t", "y", attributes=json.dumps({"hotmess.checks": json.dumps({"a": True, "b": True})})
        ),
        run("u", "x", attributes=json.dumps({"hotmess.checks": {"a": True}})),
        run("u", "x", attributes=json.dumps({"hotmess.checks": {"b": True}})),
    ]
    a = analyze(runs_table(rows), decomposition="checks", n_boot=0, correction=False)
    t, u = a.tasks
    # t: runs (1,0), (1,1) → error 1/4, bias 1/8, variance 1/8
    assert (t.error, t.bias, t.variance) == pytest.approx((0.25, 0.125, 0.125))
    # u: a check a run did not record counts as failed: (1,0), (0,1) → ȳ = (1/2, 1/2)
    # error 1/2, bias 1/4, variance 1/4
    assert (u.error, u.bias, u.variance) == pytest.approx((0.5, 0.25, 0.25))


def test_mse_and_kl_through_analyze():
    rows = [
        run("a", "x", score=0.0),
        run("a", "x", score=1.0),
        run("a", "x", score=1.0),
        run("b", "x", score=0.5, reference="0.5"),
        run("b", "y", score=0.5, reference="0.5"),
    ]
    a = analyze(runs_table(rows), decomposition="mse", n_boot=0, correction=False)
    ta, tb = a.tasks
    # a: target 1.0 (no reference): error 1/3, bias 1/9, variance 2/9; b: all 0
    assert (ta.error, ta.bias, ta.variance) == pytest.approx((1 / 3, 1 / 9, 2 / 9))
    assert (tb.error, tb.variance) == (0.0, 0.0)
    assert tb.successes == 2 and ta.successes == 2  # score == target counts as success

    g0, g1 = math.sqrt(0.7 * 0.4), math.sqrt(0.3 * 0.6)
    expected = (-math.log(g0 / (g0 + g1)), -math.log(g0 + g1))
    rows = [
        run("l", "[0.7, 0.3]", reference="0"),
        run("l", "[0.4, 0.6]", reference="0"),
        run("d", '{"cat": 0.7, "dog": 0.3}', reference="cat"),
        run("d", '{"cat": 0.4, "dog": 0.6}', reference="cat"),
    ]
    k = analyze(runs_table(rows), decomposition="kl", n_boot=0, correction=False)
    for t in k.tasks:
        assert (t.bias, t.variance) == pytest.approx(expected, rel=1e-9)
        assert t.successes == 1  # arg-max matches the reference in the first run only
    with pytest.raises(ValueError, match="probability vector"):
        analyze(runs_table([run("l", "not json")]), decomposition="kl", correction=False)


def test_text_embedding_and_callable_outcomes():
    rows = [
        run("t", "The flight is booked", None, '"flight booked"'),
        run("t", "flight booked!", None, '"flight booked"'),
        run("t", "I cancelled the reservation", None, '"flight booked"'),
    ]
    a = analyze(runs_table(rows), outcome="text", distance_threshold=0.7, n_boot=0, correction=False)
    assert a.tasks[0].successes == 2 and a.tasks[0].outcome_clusters == 2

    def embed(texts):
        return np.array([[1.0, 0.0] if "book" in t else [0.0, 1.0] for t in texts])

    e = analyze(runs_table(rows), outcome="embedding", embed=embed, n_boot=0, correction=False)
    assert e.tasks[0].successes == 2
    v = analyze(runs_table(rows), decomposition="embedding", embed=embed, n_boot=0, correction=False)
    # vectors (1,0), (1,0), (0,1): v̄ = (2/3, 1/3); ‖v − v̄‖² = 2/9, 2/9, 8/9 → variance 4/9
    # reference "flight booked" → (1,0): bias = ‖(2/3, 1/3) − (1, 0)‖² = 2/9,
    # error = (0 + 0 + 2)/3 = 2/3
    assert (v.tasks[0].variance, v.tasks[0].bias, v.tasks[0].error) == pytest.approx(
        (4 / 9, 2 / 9, 2 / 3)
    )

    c = analyze(runs_table(rows), outcome=lambda text: "book" in text.lower(), n_boot=0, correction=False)
    assert c.tasks[0].successes == 2 and c.outcome.startswith("callable:")


def test_correction_is_the_default_and_plug_in_stays_available():
    a = analyze(runs_table(BASIC), n_boot=0)
    t1 = a.tasks[0]
    # unbiased: variance 5/8 × 4/3 = 5/6, bias 3/8 − (5/8)/3 = 1/6, error unchanged 1
    assert t1.variance == pytest.approx(5 / 6) and t1.bias == pytest.approx(1 / 6)
    assert t1.error == pytest.approx(1.0)
    assert a.to_dict()["correction"] is True
    plug_in = analyze(runs_table(BASIC), correction=False, n_boot=0)
    assert plug_in.tasks[0].variance == pytest.approx(5 / 8) and plug_in.correction is False


def test_validation_errors():
    runs = runs_table(BASIC)
    with pytest.raises(ValueError, match="outcome must be one of"):
        analyze(runs, outcome="fuzzy")
    with pytest.raises(ValueError, match="decomposition must be one of"):
        analyze(runs, decomposition="mae")
    with pytest.raises(ValueError, match="embed="):
        analyze(runs, outcome="embedding")
    with pytest.raises(ValueError, match="no 'outcome' column"):
        analyze(Table({"task_id": ["a"]}))
    with pytest.raises(ValueError, match="must be a hotmess.tables.Table"):
        analyze([{"task_id": "a"}])
    empty = analyze(runs_table([run("t", None, status="incomplete")]))
    assert (
        empty.n_runs == 0
        and empty.n_incomplete == 1
        and empty.to_dict()["incoherence"]["value"] is None
    )


# ---------------------------------------------------------------------------- properties

run_rows = st.lists(
    st.tuples(
        st.sampled_from(["t1", "t2", "t3", "10", "2"]),
        st.sampled_from(['"A"', " a ", "b", '"B"', None, '{"x": 1}', '{"x": 1.0}']),
        st.sampled_from([1.0, 0.0, None]),
        st.sampled_from(['"a"', None]),
    ),
    min_size=1,
    max_size=40,
)


def _strip_examples(d):
    for t in d["tasks"]:
        for c in t["clusters"]:
            c.pop("example")
    return d


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_rows, st.randoms(use_true_random=False))
def test_analyze_invariant_to_run_order(rows, rnd):
    table_rows = [run(t, o, s, r) for t, o, s, r in rows]
    shuffled = list(table_rows)
    rnd.shuffle(shuffled)
    a = _strip_examples(analyze(runs_table(table_rows), n_boot=30, correction=False).to_dict())
    b = _strip_examples(analyze(runs_table(shuffled), n_boot=30, correction=False).to_dict())
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    inc = a["incoherence"]["value"]
    assert inc is None or 0.0 <= inc <= 1.0 + 1e-12
    for t in a["tasks"]:
        if t["error"] is not None:
            assert t["error"] == pytest.approx(t["bias"] + t["variance"], abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_all_failures_in_one_wrong_cluster(n_c):
    n, c = n_c
    rows = [
        run("t", '"right"' if i < c else '"wrong"', 1.0 if i < c else 0.0, '"right"')
        for i in range(n)
    ]
    (t,) = analyze(runs_table(rows), n_boot=0, correction=False).tasks
    s = c / n
    # p̄ = (s, 1 − s): variance = 1 − s² − (1 − s)² = 2 s (1 − s)
    assert t.variance == pytest.approx(2 * s * (1 - s), abs=1e-12)
    assert t.error == pytest.approx(2 * (1 - s), abs=1e-12)
    if n - c >= 2:
        assert t.failure_consistency == 1.0 and t.failure_entropy == 0.0
    else:
        assert math.isnan(t.failure_consistency)


# ---------------------------------------------------------------------------- timing smoke


def test_analyze_at_scale_counts_every_run_and_task():
    # Speed at this size and above is measured in bench/analyze_scale.py, not here.
    rng = np.random.default_rng(0)
    n_runs, per_run, n_tasks = 10_000, 20, 200
    task = rng.integers(0, n_tasks, n_runs)
    run_ids = np.array([f"r{i}" for i in range(n_runs)], dtype=object)
    tools = np.array(["get_user", "search", "book", "cancel", "update", "think"], dtype=object)
    inputs = np.array([json.dumps({"id": i, "x": [1, 2]}) for i in range(50)], dtype=object)
    n_steps = n_runs * per_run
    steps = Table(
        {
            "run_id": np.repeat(run_ids, per_run),
            "step_index": np.tile(np.arange(per_run), n_runs),
            "kind": np.full(n_steps, "tool", dtype=object),
            "tool": tools[rng.integers(0, len(tools), n_steps)],
            # few distinct arguments per task so that runs repeat outcomes
            "input": inputs[(task.repeat(per_run) + rng.integers(0, 2, n_steps)) % len(inputs)],
        }
    )
    runs = Table(
        {
            "run_id": run_ids,
            "task_id": np.array([f"task-{t}" for t in task], dtype=object),
            "status": np.full(n_runs, "ok", dtype=object),
            "outcome": np.full(n_runs, None, dtype=object),
            "success": (rng.random(n_runs) < 0.4).astype(np.float64),
            "reference": np.full(n_runs, None, dtype=object),
            "agent": np.array(["a", "b"], dtype=object)[rng.integers(0, 2, n_runs)],
        }
    )
    a = analyze(runs, steps, outcome="actions")
    exact = analyze(runs)
    assert a.n_runs == n_runs and a.n_tasks == n_tasks
    assert 0.0 <= a.incoherence.value <= 1.0
    assert exact.n_runs == n_runs


def test_split_runs_groups_runs_and_their_steps_in_natural_order():
    from hotmess.analyzers import split_runs

    runs = Table({
        "run_id": np.array(["a", "b", "c", "d"], dtype=object),
        "agent": np.array(["x10", None, "x2", "x10"], dtype=object),
        "attributes": np.array(['{"team": "red"}', None, '{"team": "blue"}', '{"team": "red"}'], dtype=object),
    })
    steps = Table({
        "run_id": np.array(["d", "a", "c", "a", "zz"], dtype=object),
        "step_index": np.array([0, 0, 0, 1, 0]),
    })
    groups = split_runs(runs, steps, "agent")
    assert list(groups) == ["<none>", "x10", "x2"]
    r, s = groups["x10"]
    assert r["run_id"].tolist() == ["a", "d"]
    assert list(zip(s["run_id"].tolist(), s["step_index"].tolist(), strict=True)) == [("d", 0), ("a", 0), ("a", 1)]
    assert len(groups["<none>"][1]) == 0
    by_team = split_runs(runs, None, "team")
    assert {k: v[0]["run_id"].tolist() for k, v in by_team.items()} == {
        "<none>": ["b"], "blue": ["c"], "red": ["a", "d"]}
    assert all(v[1] is None for v in by_team.values())
    with pytest.raises(ValueError, match="neither a runs column"):
        split_runs(runs, steps, "colour")


# ---------------------------------------------------------------------------- endings, verdicts


def test_crashes_are_clustered_by_exception_type():
    rows = [
        run("t", '"done"', 1.0),
        run("t", '"done"', 1.0),
        *[run("t", None, 0.0, status="error", error="TimeoutError: model took 30 s") for _ in range(2)],
        run("t", None, 0.0, status="error", error="KeyError: 'order_id'"),
        run("t", None, 0.0, status="error", error="ValueError: bad date 2026-13-01"),
    ]
    a = analyze(runs_table(rows), n_boot=0)
    clusters = {c.key: c.size for c in a.tasks[0].clusters}
    assert clusters == {"<correct>": 2, "<crash> TimeoutError": 2, "<crash> KeyError": 1,
                        "<crash> ValueError": 1}
    examples = {c.key: c.example for c in a.tasks[0].clusters}
    assert examples["<crash> KeyError"] == "KeyError: 'order_id'"
    # failed pairs: 4 failures, 2 of 12 ordered pairs share a cluster
    assert a.tasks[0].failure_consistency == pytest.approx(2 / 12)


def test_incomplete_runs_dropped_by_default_or_counted_as_failures():
    rows = [
        *[run("t", '"ok"', 1.0) for _ in range(3)],
        run("t", '"no"', 0.0),
        *[run("t", None, None, status="incomplete") for _ in range(2)],
    ]
    dropped = analyze(runs_table(rows), n_boot=0)
    assert dropped.n_runs == 4 and dropped.n_incomplete == 2 and dropped.incomplete == "drop"
    assert dropped.success_rate == pytest.approx(3 / 4)
    failed = analyze(runs_table(rows), n_boot=0, incomplete="fail")
    assert failed.n_runs == 6 and failed.n_incomplete_counted == 2
    assert failed.success_rate == pytest.approx(3 / 6)
    assert {c.key: c.size for c in failed.tasks[0].clusters}["<incomplete>"] == 2
    with pytest.raises(ValueError, match="incomplete must be one of"):
        analyze(runs_table(rows), incomplete="maybe")


def test_a_run_without_a_verdict_leaves_its_task_in():
    rows = [
        run("t", '"a"', 1.0), run("t", '"b"', 0.0), run("t", '"a"', 1.0), run("t", '"c"', None),
        run("u", '"x"', 0.0), run("u", '"x"', 0.0),
    ]
    a = analyze(runs_table(rows), n_boot=0)
    t = a.tasks[0]
    assert t.task_id == "t" and t.n == 3 and t.successes == 2 and t.has_reference
    assert a.n_runs == 5 and a.n_tasks_with_reference == 2
    assert any("1 runs in 1 tasks have no verdict" in w for w in a.warnings)


def test_single_run_tasks_are_left_out_of_incoherence_and_counted():
    rows = [run("t", '"a"', 1.0), run("t", '"b"', 0.0), run("t", '"c"', 0.0),
            run("lonely-1", '"z"', 0.0), run("lonely-2", '"a"', 1.0)]
    for correction in (True, False):
        a = analyze(runs_table(rows), n_boot=0, correction=correction)
        assert a.n_single_run_tasks == 2 and a.incoherence.n_tasks == 1
        # incoherence is task t's alone
        t = next(task for task in a.tasks if task.task_id == "t")
        assert a.incoherence.value == pytest.approx(t.variance / t.error)
        assert any("2 of 3 tasks have a single run" in w and "--task-attr" in w for w in a.warnings)
    assert a.to_dict()["n_single_run_tasks"] == 2


def test_pass_hat_k_is_over_the_same_tasks_at_every_k():
    from hotmess.analyzers import pass_at_k, pass_hat_k

    # task 1: 4 runs, 4 successes; task 2: 2 runs, 0 successes. Asking for k = 1..3 leaves
    # task 2 out of every k (it cannot reach 3), so pass^3 cannot exceed pass^1.
    hat = pass_hat_k([4, 2], [4, 0], [1, 2, 3])
    assert hat == pytest.approx({1: 1.0, 2: 1.0, 3: 1.0})
    assert pass_hat_k([4, 2], [4, 0]) == pytest.approx({1: 0.5, 2: 0.5})
    assert pass_at_k([4, 2], [4, 0], [1, 3]) == pytest.approx({1: 1.0, 3: 1.0})
    rng = np.random.default_rng(0)
    n = rng.integers(1, 9, 50)
    c = rng.integers(0, n + 1)
    values = pass_hat_k(n, c, range(1, 9))
    assert all(values[k] >= values[k + 1] - 1e-12 for k in range(1, 8))


def test_a_crash_is_not_the_only_verdict_of_a_task_without_verdicts():
    """The tracer marks a crashed run failed; where the task's other runs carry no verdict,
    that failure alone would make the task fail every time. It is an outcome there instead."""
    crash = {"status": "error", "error": "ValueError: boom"}
    rows = [run("unjudged", '"a"'), run("unjudged", '"b"'), run("unjudged", None, success=0.0, **crash),
            run("judged", '"a"', success=1.0), run("judged", '"b"', success=None),
            run("judged", None, success=0.0, **crash)]
    result = analyze(runs_table(rows))
    tasks = {t.task_id: t for t in result.tasks}
    assert tasks["unjudged"].successes is None and tasks["unjudged"].outcome_clusters == 3
    assert tasks["judged"].successes == 1 and tasks["judged"].n == 2  # the crash counts as the failure it is
