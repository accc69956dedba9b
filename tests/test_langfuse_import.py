"""hotmess import langfuse: observations built from the Langfuse SDK's own API models and
serialised as its API returns them (tests/langfuse_agent.py), in pages and one per line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import hotmess
from hotmess.errors import InputError

pytest.importorskip("langfuse")
from langfuse_agent import ERROR, record  # noqa: E402
from test_mlflow_import import cli  # noqa: E402


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("langfuse")
    return out, record(out)


@pytest.fixture(scope="module")
def imported(recorded, tmp_path_factory):
    out, truth = recorded
    db = tmp_path_factory.mktemp("langfuse-db") / "runs.db"
    with hotmess.open(db, create=True) as store:
        report = store.import_langfuse(out / "pages.jsonl")
    return db, truth, report


def _runs(db: Path) -> dict[str, tuple[dict, list[dict]]]:
    with hotmess.open(db) as store:
        return {r["run_id"]: (r, store.steps(r["run_id"]).to_records()) for r in store.runs().to_records()}


def test_runs_outcomes_tools_and_crashes(imported):
    db, truth, report = imported
    assert report.to_dict()["new"] == len(truth) == 14 and report.batch.skipped == 0
    runs = _runs(db)
    assert set(runs) == set(truth)
    untagged = {runs[t][0]["task_id"] for t, w in truth.items() if w["task"] == "untagged"}
    assert len(untagged) == 1 and next(iter(untagged)).startswith("msg:")
    for trace_id, want in truth.items():
        run, steps = runs[trace_id]
        if want["task"] != "untagged":
            assert run["task_id"] == want["task"]
        assert (run["source"], run["agent"], run["outcome"]) == ("langfuse", "weather_agent", want["answer"])
        tools = [(s["tool"], json.loads(s["input"])) for s in steps if s["kind"] == "tool"]
        city = "crash" if want["ending"] == "crash" else want["city"]
        assert tools == [("get_time" if want["ending"] == "wrong" else "get_weather", {"city": city})]
        llm = [s for s in steps if s["kind"] == "llm"]
        assert all(s["model"] == "fake-model-1" and (s["input_tokens"], s["output_tokens"]) == (12, 5) for s in llm)
        assert "What is the weather in" in llm[0]["input"]
        if want["ending"] == "crash":
            assert run["status"] == "error" and run["error"] == f"Error: {ERROR}"
            assert [s["kind"] for s in steps] == ["llm", "tool"] and steps[1]["error"] == f"Error: {ERROR}"
        else:
            assert run["status"] == "ok" and run["error"] is None and run["n_steps"] == 3
            assert [s["kind"] for s in steps] == ["llm", "tool", "llm"]
        attributes = json.loads(run["attributes"])
        assert attributes["langfuse.tags"] == ["prod"] and attributes["langfuse.session_id"].startswith("session-")


def test_clusters_per_task_are_the_true_endings(imported):
    db, truth, _ = imported
    with hotmess.open(db) as store:
        result = store.analyze(outcome="exact")
    assert result.n_tasks == 4
    name_of = {r["task_id"]: truth[run_id]["task"] for run_id, (r, _) in _runs(db).items()}
    for task in result.tasks:
        endings = Counter(w["ending"] for w in truth.values() if w["task"] == name_of[task.task_id])
        assert [c.size for c in task.clusters] == sorted(endings.values(), reverse=True), task.task_id


def test_one_observation_per_line_and_reimport(imported, recorded, tmp_path):
    db, truth, _ = imported
    out, _ = recorded
    before = _runs(db)
    other = tmp_path / "other.db"
    with hotmess.open(other, create=True) as store:
        assert store.import_langfuse(out / "observations.jsonl").to_dict()["new"] == len(truth)
    got = _runs(other)
    assert got.keys() == before.keys() and all(got[k][1] == before[k][1] for k in got)
    with hotmess.open(db) as store:
        again = store.import_langfuse(out / "observations.jsonl").to_dict()
    assert (again["new"], again["already_stored"], again["steps"]) == (0, len(truth), 0)
    assert _runs(db) == before


def test_a_trace_with_its_observations(recorded, tmp_path):
    """The older trace API's shape: the trace's own fields, its observations in a list."""
    out, truth = recorded
    observations = [json.loads(line) for line in (out / "observations.jsonl").read_text().splitlines()]
    trace_id, want = next((t, w) for t, w in truth.items() if w["ending"] == "wrong")
    mine = [o for o in observations if o["traceId"] == trace_id and o.get("parentObservationId")]
    root = next(o for o in observations if o["traceId"] == trace_id and not o.get("parentObservationId"))
    for o in mine:
        o.pop("parentObservationId")
    trace = {"id": trace_id, "name": "weather_agent", "timestamp": root["startTime"], "input": root["input"],
             "output": root["output"], "metadata": root["metadata"], "tags": ["prod"], "observations": mine}
    path = tmp_path / "traces.json"
    path.write_text(json.dumps([trace]))
    with hotmess.open(tmp_path / "t.db", create=True) as store:
        store.import_langfuse(path)
        (run,) = store.runs().to_records()
        steps = store.steps(run["run_id"]).to_records()
    assert (run["run_id"], run["task_id"], run["outcome"], run["agent"]) == (
        trace_id, want["task"], want["answer"], "weather_agent")
    assert [s["kind"] for s in steps] == ["llm", "tool", "llm"] and all(s["depth"] == 1 for s in steps)


def test_malformed_records_are_skipped_and_named(recorded, tmp_path):
    out, truth = recorded
    lines = (out / "observations.jsonl").read_text().splitlines()
    bad = json.loads(lines[1])
    bad["startTime"] = "soon"
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([*lines[:4], "{not json", '{"traceId": "x"}', json.dumps(bad),
                                '{"data": [3], "meta": {}}']) + "\n")
    with hotmess.open(tmp_path / "mixed.db", create=True) as store:
        report = store.import_langfuse(mixed)
    assert report.to_dict()["new"] == 1 and report.batch.skipped == 4
    errors = [str(e) for e in report.batch.errors]
    assert errors[0].startswith(f"{mixed}, line 5: not valid JSON")
    assert errors[1] == f"{mixed}, line 6: missing id"
    assert errors[2] == f"{mixed}, line 7: startTime is not an ISO time: 'soon'"
    assert errors[3] == f"{mixed}, line 8: data[0]: not an object (a Langfuse observation)"
    nothing = tmp_path / "nothing.jsonl"
    nothing.write_text('{"traceId": "x"}\n')
    with pytest.raises(InputError, match="nothing to import: 1 of 1 records are malformed"):
        hotmess.open(tmp_path / "never.db", create=True).import_langfuse(nothing)
    assert not (tmp_path / "never.db").exists()


def test_cli(recorded, tmp_path):
    out, truth = recorded
    db = tmp_path / "cli.db"
    text = " ".join(cli("import", "langfuse", str(out / "pages.jsonl"), "--db", str(db)).stdout.split())
    assert f"Imported {len(truth)} new runs" in text and "3 runs without a task id" in text
    again = json.loads(cli("import", "langfuse", str(out / "observations.jsonl"), "--db", str(db), "--json").stdout)
    assert (again["source"], again["new"], again["already_stored"]) == ("langfuse", 0, len(truth))


def test_since_and_until_bound_the_traces_start(recorded, tmp_path):
    out, truth = recorded  # trace i starts at 2026-03-01 12:00 + i minutes
    with hotmess.open(tmp_path / "w.db", create=True) as store:
        report = store.import_langfuse(out / "pages.jsonl", since="2026-03-01T12:05", until="2026-03-01T12:10Z")
    assert report.to_dict()["new"] == 5 and report.batch.outside == len(truth) - 5
    with pytest.raises(InputError, match=f"nothing to import: all {len(truth)} traces start outside --since/--until"):
        hotmess.open(tmp_path / "never.db", create=True).import_langfuse(out / "pages.jsonl", until="2026-01-01")
    assert not (tmp_path / "never.db").exists()
