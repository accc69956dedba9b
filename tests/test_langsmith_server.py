"""hotmess import langsmith --project: the runs of tests/langsmith_agent.py (the SDK's own
RunTree objects, as ``Run`` JSON) served by a local stand-in of LangSmith's API
(``GET /sessions``, ``POST /runs/query`` paged by cursors) and read with the official client."""

from __future__ import annotations

import json
import socket
from collections import Counter

import pytest

import hotmess
from hotmess.errors import InputError
from hotmess.integrations.platform_traces import iso_ns

pytest.importorskip("langsmith")
from langsmith import schemas  # noqa: E402
from langsmith_agent import run_agent  # noqa: E402
from mlflow_agent import SCRIPT  # noqa: E402
from platform_server import Server  # noqa: E402

PAGE = 10
#: what ``POST /runs/query`` returns of a run: the fields ``Client.list_runs`` selects by default
FIELDS = {"app_path", "completion_tokens", "dotted_order", "end_time", "error", "events", "extra", "feedback_stats",
          "id", "inputs", "name", "outputs", "parent_run_id", "prompt_tokens", "reference_example_id", "run_type",
          "session_id", "start_time", "status", "tags", "total_tokens", "trace_id"}
PROJECT_ID = "5f1c6f9e-0000-4000-8000-000000000001"


def _runs() -> tuple[list[dict], dict]:
    """Every run of the scripted agent as ``Run`` JSON (newest first, as the server sorts), a
    ``correctness`` feedback on each root that answered, and trace id → what the run did."""
    connect = socket.socket.connect
    socket.socket.connect = lambda *a, **k: (_ for _ in ()).throw(OSError("no network in tests"))
    try:
        runs, truth = [], {}
        for task, endings in SCRIPT.items():
            for ending in endings:
                root = run_agent(task, ending)
                for tree in [root, *root.child_runs]:
                    d = json.loads(tree.model_dump_json(exclude={"child_runs", "parent_run", "client"}))
                    d = {k: v for k, v in d.items() if k in FIELDS}
                    d["session_id"] = PROJECT_ID
                    if tree is root and ending != "crash":
                        d["feedback_stats"] = {"correctness": {"n": 1, "avg": 1.0 if ending == "ok" else 0.0}}
                    schemas.Run(**d)  # the SDK's own schema accepts it
                    runs.append(d)
                truth[str(root.trace_id)] = {"task": task, "ending": ending}
    finally:
        socket.socket.connect = connect
    runs.sort(key=lambda d: d["start_time"], reverse=True)
    return runs, truth


class LangSmith:
    def __init__(self, runs: list[dict]) -> None:
        self.runs, self.fail_after = runs, None

    def __call__(self, method: str, path: str, query: dict, body: dict | None) -> tuple[int, object]:
        if method == "GET" and path == "/sessions":
            return 200, [{"id": PROJECT_ID, "name": query["name"][0], "tenant_id": PROJECT_ID,
                          "start_time": "2026-01-01T00:00:00", "reference_dataset_id": None}]
        if method == "GET" and path == "/info":
            return 200, {"version": "test"}
        if method == "POST" and path == "/runs/query":
            assert body["session"] == [PROJECT_ID]
            found = [r for r in self.runs if "start_time" not in body
                     or iso_ns(r["start_time"], "") >= iso_ns(body["start_time"], "")]
            at = int(body.get("cursor") or 0)
            if self.fail_after is not None and at >= self.fail_after:
                return 400, {"detail": "the server went away"}
            nxt = at + PAGE
            return 200, {"runs": found[at:nxt], "cursors": {"next": str(nxt) if nxt < len(found) else None}}
        return 404, {"detail": f"no {method} {path}"}


@pytest.fixture(scope="module")
def server(monkeypatch_module):
    runs, truth = _runs()
    handler = LangSmith(runs)
    with Server(handler) as s:
        monkeypatch_module.setenv("LANGSMITH_ENDPOINT", s.url)
        monkeypatch_module.setenv("LANGSMITH_API_KEY", "test-key")
        monkeypatch_module.setenv("LANGSMITH_TRACING", "false")
        yield s, handler, truth


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def imported(server, tmp_path_factory):
    s, _, truth = server
    db = tmp_path_factory.mktemp("ls-server") / "runs.db"
    with hotmess.open(db, create=True) as store:
        report = store.import_langsmith(project="weather")
    return db, report


def _stored(db):
    with hotmess.open(db) as store:
        return {r["run_id"]: (r, store.steps(r["run_id"]).to_records()) for r in store.runs().to_records()}


def test_runs_steps_outcomes_and_success_from_feedback(server, imported):
    s, handler, truth = server
    db, report = imported
    assert report.to_dict()["new"] == len(truth) == 14
    assert sum(1 for m, p, *_ in s.requests if p == "/runs/query") >= len(handler.runs) // PAGE  # paged
    assert all(m in ("GET", "POST") and p in ("/info", "/sessions", "/runs/query") for m, p, *_ in s.requests)  # read-only
    runs = _stored(db)
    assert set(runs) == set(truth)
    for trace_id, want in truth.items():
        run, steps = runs[trace_id]
        assert run["source"] == "langsmith"
        assert run["success"] == {"ok": True, "wrong": False, "crash": None}[want["ending"]]
        tools = [st["tool"] for st in steps if st["kind"] == "tool"]
        assert tools == [{"ok": "get_weather", "wrong": "get_time", "crash": "get_weather"}[want["ending"]]]
        if want["ending"] == "crash":
            assert run["error"].startswith("ConnectionError")
    with hotmess.open(db) as store:
        result = store.analyze()
    assert result is not None


def test_resume_after_an_interrupted_import(server, tmp_path):
    s, handler, truth = server
    db = tmp_path / "runs.db"
    handler.fail_after = PAGE  # the server goes down after the first page
    try:
        with pytest.raises(InputError), hotmess.open(db, create=True) as store:
            store.import_langsmith(project="weather")
    finally:
        handler.fail_after = None
    # an earlier import that read the older half; --resume reads on from its newest run
    roots = sorted((r for r in handler.runs if r["parent_run_id"] is None), key=lambda r: r["start_time"])
    mid = roots[len(roots) // 2]["start_time"]
    with hotmess.open(db, create=True) as store:
        first = store.import_langsmith(project="weather", until=mid)
        second = store.import_langsmith(project="weather", resume=True)
        since = next(b for m, p, q, b in reversed(s.requests) if p == "/runs/query")["start_time"]
        assert since  # the resumed query asks only from the high-water mark on
        ids = [r["run_id"] for r in store.runs().to_records()]
    assert first.to_dict()["new"] == len(roots) // 2
    assert first.to_dict()["new"] + second.to_dict()["new"] == len(truth)
    assert Counter(ids) == Counter(list(truth))  # nothing duplicated, nothing missed


def test_since_until_and_success_key(server, tmp_path):
    s, handler, truth = server
    roots = sorted((r for r in handler.runs if r["parent_run_id"] is None), key=lambda r: r["start_time"])
    with hotmess.open(tmp_path / "a.db", create=True) as store:
        report = store.import_langsmith(project="weather", since=roots[3]["start_time"], until=roots[8]["start_time"])
        assert {r["run_id"] for r in store.runs().to_records()} == {r["trace_id"] for r in roots[3:8]}
    assert report.batch.outside >= 1
    with hotmess.open(tmp_path / "b.db", create=True) as store:
        store.import_langsmith(project="weather", success_key="helpfulness")
        assert {r["success"] for r in store.runs().to_records()} == {None}


def test_cli_and_errors(server, tmp_path):
    from test_cli import hotmess_here  # noqa: PLC0415

    db = tmp_path / "cli.db"
    result = hotmess_here("import", "langsmith", "--project", "weather", "--db", str(db), "--json")
    assert json.loads(result.stdout)["new"] == 14
    bad = hotmess_here("import", "langsmith", str(tmp_path / "x.jsonl"), "--project", "weather", "--db", str(db),
                       ok=False)
    assert bad.returncode != 0 and "not both" in bad.stderr
    none = hotmess_here("import", "langsmith", "--db", str(db), ok=False)
    assert none.returncode != 0 and "--project" in none.stderr
    again = hotmess_here("import", "langsmith", "--project", "weather", "--resume", "--db", str(db), "--json")
    assert json.loads(again.stdout)["new"] == 0
