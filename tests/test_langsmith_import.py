"""hotmess import langsmith: runs built as the LangSmith SDK's own RunTree objects (never posted)
and serialised by the SDK (tests/langsmith_agent.py), read back from a JSON lines file."""

from __future__ import annotations

import gzip
import json
import socket
from collections import Counter
from pathlib import Path

import pytest

import hotmess
from hotmess.errors import InputError
from hotmess.integrations.langsmith_runs import exception_of

pytest.importorskip("langsmith")
from langsmith_agent import record  # noqa: E402
from test_mlflow_import import cli  # noqa: E402


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("langsmith")
    connect = socket.socket.connect

    def no_network(*args, **kwargs):
        raise OSError("no network in tests")

    socket.socket.connect = no_network  # a RunTree that tried to post would fail here
    try:
        truth = record(out)
    finally:
        socket.socket.connect = connect
    return out / "runs.jsonl", truth


@pytest.fixture(scope="module")
def imported(recorded, tmp_path_factory):
    path, truth = recorded
    db = tmp_path_factory.mktemp("langsmith-db") / "runs.db"
    with hotmess.open(db, create=True) as store:
        report = store.import_langsmith(path)
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
        assert (run["source"], run["agent"], run["outcome"]) == ("langsmith", "weather_agent", want["answer"])
        tools = [(s["tool"], json.loads(s["input"])) for s in steps if s["kind"] == "tool"]
        city = "crash" if want["ending"] == "crash" else want["city"]
        assert tools == [("get_time" if want["ending"] == "wrong" else "get_weather", {"city": city})]
        llm = [s for s in steps if s["kind"] == "llm"]
        assert all(s["model"] == "fake-model-1" and (s["input_tokens"], s["output_tokens"]) == (12, 5) for s in llm)
        assert "What is the weather in" in llm[0]["input"]
        if want["ending"] == "crash":
            assert run["status"] == "error" and run["error"] == "ConnectionError: weather service unreachable"
            assert [s["kind"] for s in steps] == ["llm", "tool"] and steps[1]["error"].startswith("ConnectionError")
        else:
            assert run["status"] == "ok" and run["error"] is None and run["n_steps"] == 3
            assert [s["kind"] for s in steps] == ["llm", "tool", "llm"]
        attributes = json.loads(run["attributes"])
        assert attributes["langsmith.session_name"] == "weather"
        if want["task"] != "untagged":
            assert json.loads(attributes["metadata"])["team"] == "search"


def test_clusters_per_task_are_the_true_endings(imported):
    db, truth, _ = imported
    with hotmess.open(db) as store:
        result = store.analyze(outcome="exact")
    assert result.n_tasks == 4
    name_of = {r["task_id"]: truth[run_id]["task"] for run_id, (r, _) in _runs(db).items()}
    for task in result.tasks:
        endings = Counter(w["ending"] for w in truth.values() if w["task"] == name_of[task.task_id])
        assert [c.size for c in task.clusters] == sorted(endings.values(), reverse=True), task.task_id


def test_list_form_gzip_and_reimport(imported, recorded, tmp_path):
    db, truth, _ = imported
    path, _ = recorded
    before = _runs(db)
    as_list = tmp_path / "runs.json.gz"
    with gzip.open(as_list, "wt") as f:
        json.dump([json.loads(line) for line in path.read_text().splitlines()], f)
    other = tmp_path / "other.db"
    with hotmess.open(other, create=True) as store:
        assert store.import_langsmith(as_list).to_dict()["new"] == len(truth)
    got = _runs(other)
    assert got.keys() == before.keys() and all(got[k][1] == before[k][1] for k in got)
    with hotmess.open(db) as store:
        again = store.import_langsmith(path).to_dict()
    assert (again["new"], again["already_stored"], again["steps"]) == (0, len(truth), 0)
    assert _runs(db) == before


def test_malformed_records_are_skipped_and_named(recorded, tmp_path):
    path, truth = recorded
    lines = path.read_text().splitlines()
    bad_time = json.loads(lines[0])
    bad_time["start_time"] = "yesterday"
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([*lines[:4], "{not json", '{"name": "x"}', json.dumps(bad_time), "[3]"]) + "\n")
    with hotmess.open(tmp_path / "mixed.db", create=True) as store:
        report = store.import_langsmith(mixed)
    assert report.to_dict()["new"] == 1 and report.batch.skipped == 4
    errors = [str(e) for e in report.batch.errors]
    assert errors[0].startswith(f"{mixed}, line 5: not valid JSON")
    assert errors[1] == f"{mixed}, line 6: missing id"
    assert errors[2] == f"{mixed}, line 7: start_time is not an ISO time: 'yesterday'"
    assert errors[3] == f"{mixed}, line 8 item 0: not an object (a LangSmith run)"
    nothing = tmp_path / "nothing.jsonl"
    nothing.write_text('{"name": "x"}\n')
    with pytest.raises(InputError, match="nothing to import: 1 of 1 runs are malformed"):
        hotmess.open(tmp_path / "never.db", create=True).import_langsmith(nothing)
    assert not (tmp_path / "never.db").exists()


def test_a_trace_without_its_root_is_incomplete(recorded, tmp_path):
    path, truth = recorded
    lines = path.read_text().splitlines()
    children = tmp_path / "children.jsonl"
    children.write_text("\n".join(lines[:3]) + "\n")  # the first run's children, not its root
    with hotmess.open(tmp_path / "c.db", create=True) as store:
        store.import_langsmith(children)
        (run,) = store.runs().to_records()
    assert run["status"] == "incomplete" and run["n_steps"] == 3


def test_error_texts_give_the_exception_type():
    assert exception_of("ConnectionError('down')\n\nTraceback ...") == ("ConnectionError", "down")
    assert exception_of("KeyError: 'x'") == ("KeyError", "'x'")
    assert exception_of("ValueError()") == ("ValueError", "")
    assert exception_of("it broke") == ("Error", "it broke")


def test_cli(recorded, tmp_path):
    path, truth = recorded
    db = tmp_path / "cli.db"
    text = " ".join(cli("import", "langsmith", str(path), "--db", str(db)).stdout.split())
    assert f"Imported {len(truth)} new runs" in text and "3 runs without a task id" in text
    again = json.loads(cli("import", "langsmith", str(path), "--db", str(db), "--json",
                           "--task-attr", "metadata.team").stdout)
    assert (again["source"], again["new"], again["already_stored"]) == ("langsmith", 0, len(truth))
    proc = cli("import", "langsmith", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "x.db"), ok=False)
    assert proc.returncode == 1 and "no such file" in proc.stderr and not (tmp_path / "x.db").exists()


def test_since_and_until(recorded, tmp_path):
    path, truth = recorded
    with hotmess.open(tmp_path / "s.db", create=True) as store:
        assert store.import_langsmith(path, since="2000-01-01").to_dict()["new"] == len(truth)
    with pytest.raises(InputError, match="start outside --since/--until"):
        hotmess.open(tmp_path / "never.db", create=True).import_langsmith(path, until=946684800)
