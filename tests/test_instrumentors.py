"""Traces from real third-party instrumentors, read right.

A scripted LangChain ``create_agent`` agent (``tests/instrumented_agent.py``: 3 tasks × 10 runs
ending in success, a wrong tool, wrong arguments, no tool, a handled tool error or one of two
crashes) runs under OpenInference's and under OpenLLMetry's LangChain instrumentor on a plain
SDK provider, each in its own process; its spans are written as the Collector's file exporter
writes them and imported with ``hotmess import otlp``. Every figure is checked against what the
agent really did.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import hotmess
from hotmess.analyzers.goals import step_goals
from hotmess.analyzers.outcomes import canonical_json

HERE = Path(__file__).resolve().parent
INSTRUMENTORS = {
    "openinference": "openinference.instrumentation.langchain",
    "openllmetry": "opentelemetry.instrumentation.langchain",
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="module", params=sorted(INSTRUMENTORS))
def imported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    name = request.param
    if not _installed(INSTRUMENTORS[name]):
        pytest.skip(f"{INSTRUMENTORS[name]} is not installed (the dev extra installs it: pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp(name)
    traces, truth = root / "traces.jsonl", root / "truth.json"
    subprocess.run([sys.executable, str(HERE / "instrumented_agent.py"), name, str(traces), str(truth)],
                   check=True, timeout=300)
    db = root / "runs.db"
    out = subprocess.run([sys.executable, "-c", "from hotmess.cli import main; main()", "import", "otlp",
                          str(traces), "--db", str(db), "--json"], capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout)
    return name, db, json.loads(truth.read_text()), summary


def _by_request(db: Path) -> dict[str, tuple[dict, list[dict]]]:
    """Each run with its steps, keyed by the request that started it."""
    from hotmess.vocab.instructions import step_instruction

    store = hotmess.open(db)
    out = {}
    for run in store.runs().to_records():
        steps = store.steps(run["run_id"]).to_records()
        first_call = next(s for s in steps if s["kind"] == "llm")
        out[step_instruction(first_call["input"])] = (run, steps)
    store.close()
    return out


def test_every_trace_is_one_run_with_the_task_id_from_the_metadata(imported):
    name, db, truth, summary = imported
    assert summary["runs"] == len(truth) == 30
    runs = _by_request(db)
    assert set(runs) == set(truth)
    for request, (run, _) in runs.items():
        assert run["task_id"] == truth[request]["task"], request  # config={"metadata": {"task_id": ...}}
        assert run["agent"] == "refund-bot"  # the agent's name, not the service's


def test_the_outcome_is_the_final_answer_and_a_crash_is_its_exception(imported):
    name, db, truth, _ = imported
    for request, (run, _) in _by_request(db).items():
        expected = truth[request]
        if expected["crash"]:
            assert run["status"] == "error" and run["outcome"] is None, request
            assert run["error"].startswith(expected["crash"] + ": "), run["error"]
        else:
            assert run["status"] == "ok"
            assert run["outcome"] == expected["answer"], (request, run["outcome"])


def test_tool_steps_carry_the_named_arguments_and_handled_errors_count(imported):
    name, db, truth, _ = imported
    for request, (run, steps) in _by_request(db).items():
        expected = truth[request]
        tools = [s for s in steps if s["kind"] == "tool"]
        assert [[s["tool"], json.loads(s["input"])] for s in tools] == expected["tools"], request
        for s in tools:  # no framework metadata left in the arguments
            assert "checkpoint" not in s["input"] and "metadata" not in s["input"]
        handled = [s for s in tools if s["error"] and s["error"].startswith("tool error: ")]
        assert len(handled) == (1 if expected["handled_error"] else 0), request
        if expected["handled_error"]:
            assert run["n_errors"] >= 1 and "has shipped" in handled[0]["error"]
        # run length counts model calls and tool calls, not LangGraph's wrapper chains
        n_llm = len(expected["tools"]) + (0 if expected["crash"] else 1)
        assert run["n_steps"] == n_llm + len(expected["tools"]), request
        assert run["n_tool_calls"] == len(expected["tools"]) and run["n_llm_calls"] == n_llm


def test_model_steps_read_their_messages_not_framework_blobs(imported):
    name, db, truth, _ = imported
    for request, (_, steps) in _by_request(db).items():
        for s in (s for s in steps if s["kind"] == "llm"):
            assert '"lc": 1' not in (s["input"] or "") and '"lc": 1' not in (s["output"] or ""), request
            assert request in s["input"]
            assert s["input_tokens"] > 0 and s["output_tokens"] > 0


def _true_sizes(truth: dict, task: str, key: str) -> list[int]:
    endings = Counter(canonical_json(r[key]) if r["crash"] is None else r["crash"]
                      for r in truth.values() if r["task"] == task)
    return sorted(endings.values(), reverse=True)


@pytest.mark.parametrize("outcome", ["exact", "text", "actions"])
def test_clusters_per_task_are_the_true_distinct_endings(imported, outcome):
    name, db, truth, _ = imported
    store = hotmess.open(db)
    result = store.analyze(outcome=outcome)
    store.close()
    assert result.n_tasks == 3 and result.n_single_run_tasks == 0
    key = "tools" if outcome == "actions" else "answer"
    for task in result.tasks:
        assert [c.size for c in task.clusters] == _true_sizes(truth, task.task_id, key), (outcome, task.task_id)
    if outcome == "exact":  # the report's example of the largest cluster is the answer itself
        top = result.tasks[0].clusters[0]
        assert top.example.startswith("Refunded ")


def test_goals_key_tool_steps_by_tool_and_named_arguments(imported):
    name, db, truth, _ = imported
    store = hotmess.open(db)
    by_task: dict[str, set[str]] = {}
    for run in store.runs().to_records():
        steps = store.steps(run["run_id"])
        keys = [k for k, kind in zip(step_goals(steps), steps["kind"], strict=True) if kind == "tool"]
        by_task.setdefault(run["task_id"], set()).update(keys)
    store.close()
    for task, keys in by_task.items():
        calls = {canonical_json([name, args]) for r in truth.values() if r["task"] == task for name, args in r["tools"]}
        assert len(keys) == len(calls), (task, sorted(keys))
