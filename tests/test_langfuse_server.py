"""hotmess import langfuse --host: the traces of tests/langfuse_agent.py (observations built
from the Langfuse SDK's own ``ObservationV2`` model, scores from its ``NumericScore`` /
``BooleanScore``, camelCase JSON as the API returns them) served by a local stand-in of
Langfuse's public API (``GET /api/public/traces`` paged, ``GET /api/public/traces/{id}``)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import datetime

import pytest

import hotmess
from hotmess.errors import InputError

pytest.importorskip("langfuse")
from langfuse.api import BooleanScore, NumericScore  # noqa: E402
from langfuse_agent import ERROR, _observations  # noqa: E402
from mlflow_agent import SCRIPT  # noqa: E402
from platform_server import Server  # noqa: E402

PAGE = 4
AUTH = "Basic " + base64.b64encode(b"pk-test:sk-test").decode()


def _traces() -> tuple[list[dict], dict]:
    """Each run as ``GET /api/public/traces/{id}`` returns it: the trace's fields (from its root
    observation), its observations and a ``correctness`` score on each run that answered."""
    import uuid
    from datetime import UTC, timedelta

    traces, truth = [], {}
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for task, endings in SCRIPT.items():
        for ending in endings:
            trace_id = uuid.uuid4().hex
            observations = [json.loads(o.json()) for o in _observations(task, ending, trace_id, t0)]
            root = observations[0]
            scores = []
            if ending != "crash":
                common = dict(id=uuid.uuid4().hex, trace_id=trace_id, name="correctness", source="API",
                              timestamp=t0 + timedelta(seconds=30), created_at=t0, updated_at=t0, environment="production")
                scores.append(json.loads(BooleanScore(**common, value=1.0 if ending == "ok" else 0.0,
                                                      string_value="True" if ending == "ok" else "False").json()))
                scores.append(json.loads(NumericScore(**{**common, "id": uuid.uuid4().hex, "name": "helpfulness"},
                                                      value=0.9).json()))
                scores[0]["dataType"], scores[1]["dataType"] = "BOOLEAN", "NUMERIC"
            traces.append({"id": trace_id, "name": root["name"], "timestamp": root["startTime"],
                           "input": root.get("input"), "output": root.get("output"), "metadata": root.get("metadata"),
                           "tags": root.get("tags"), "sessionId": root.get("sessionId"),
                           "environment": root.get("environment"), "projectId": "proj",
                           "observations": observations, "scores": scores})
            truth[trace_id] = {"task": task, "ending": ending}
            t0 += timedelta(minutes=1)
    return traces, truth


class Langfuse:
    def __init__(self, traces: list[dict]) -> None:
        self.traces, self.fail_page = traces, None
        self.by_id = {t["id"]: t for t in traces}

    def __call__(self, method: str, path: str, query: dict, body: object) -> tuple[int, object]:
        if method != "GET":
            return 405, {"message": "read-only"}
        if path == "/api/public/traces":
            found = [t for t in self.traces
                     if ("fromTimestamp" not in query or t["timestamp"] >= query["fromTimestamp"][0])
                     and ("toTimestamp" not in query or t["timestamp"] < query["toTimestamp"][0])]
            page, limit = int(query["page"][0]), int(query["limit"][0])
            if self.fail_page is not None and page >= self.fail_page:
                return 503, {"message": "down"}
            listed = [{k: v for k, v in t.items() if k != "observations"} | {"observations": [o["id"] for o in t["observations"]],
                      "scores": [s["id"] for s in t["scores"]]} for t in found[(page - 1) * limit:page * limit]]
            return 200, {"data": listed, "meta": {"page": page, "limit": limit, "totalItems": len(found),
                                                  "totalPages": -(-len(found) // limit)}}
        if path.startswith("/api/public/traces/"):
            return 200, self.by_id[path.rsplit("/", 1)[1]]
        return 404, {"message": f"no {path}"}


@pytest.fixture(scope="module")
def server():
    traces, truth = _traces()
    handler = Langfuse(traces)
    with Server(handler) as s, pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANGFUSE_PUBLIC_KEY", "pk-test")
        mp.setenv("LANGFUSE_SECRET_KEY", "sk-test")
        mp.delenv("LANGFUSE_HOST", raising=False)
        yield s, handler, truth


@pytest.fixture(scope="module")
def imported(server, tmp_path_factory):
    s, _, _ = server
    db = tmp_path_factory.mktemp("lf-server") / "runs.db"
    with hotmess.open(db, create=True) as store:
        report = store.import_langfuse(host=s.url, page_size=PAGE)
    return db, report


def test_runs_steps_crashes_and_success_from_scores(server, imported):
    s, handler, truth = server
    db, report = imported
    assert report.to_dict()["new"] == len(truth) == 14
    pages = [q["page"][0] for m, p, q, _ in s.requests if p == "/api/public/traces"]
    assert pages[:4] == ["1", "2", "3", "4"]  # 14 traces in pages of 4
    assert {m for m, *_ in s.requests} == {"GET"}  # read-only
    assert set(s.authorization) == {AUTH}  # basic auth from LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY
    with hotmess.open(db) as store:
        runs = {r["run_id"]: (r, store.steps(r["run_id"]).to_records()) for r in store.runs().to_records()}
        outcomes = store.analyze()
    assert set(runs) == set(truth)
    for trace_id, want in truth.items():
        run, steps = runs[trace_id]
        assert run["success"] == {"ok": True, "wrong": False, "crash": None}[want["ending"]]
        if want["task"] != "untagged":
            assert run["task_id"] == want["task"]
        tools = [st["tool"] for st in steps if st["kind"] == "tool"]
        assert tools == [{"ok": "get_weather", "wrong": "get_time", "crash": "get_weather"}[want["ending"]]]
        if want["ending"] == "crash":
            assert run["error"] == f"Error: {ERROR}" and run["outcome"] is None
    assert outcomes is not None


def test_success_key(server, tmp_path):
    s, handler, truth = server
    with hotmess.open(tmp_path / "a.db", create=True) as store:
        store.import_langfuse(host=s.url, page_size=PAGE, success_key="helpfulness")
        assert {r["success"] for r in store.runs().to_records() if truth[r["run_id"]]["ending"] != "crash"} == {True}


def test_since_until_and_resume_after_an_interrupted_import(server, tmp_path):
    s, handler, truth = server
    times = [t["timestamp"] for t in handler.traces]
    with hotmess.open(tmp_path / "b.db", create=True) as store:
        store.import_langfuse(host=s.url, page_size=PAGE, since=times[2], until=times[9])
        assert {r["run_id"] for r in store.runs().to_records()} == {t["id"] for t in handler.traces[2:9]}
    db = tmp_path / "c.db"
    handler.fail_page = 2  # the server goes down after the first page
    try:
        with pytest.raises(InputError), hotmess.open(db, create=True) as store:
            store.import_langfuse(host=s.url, page_size=PAGE)
    finally:
        handler.fail_page = None
    with hotmess.open(db, create=True) as store:
        first = store.import_langfuse(host=s.url, page_size=PAGE, until=times[6])
        second = store.import_langfuse(host=s.url, page_size=PAGE, resume=True)
        ids = [r["run_id"] for r in store.runs().to_records()]
    last = [q for m, p, q, _ in s.requests if p == "/api/public/traces"][-1]
    assert times[4] < last["fromTimestamp"][0] < times[6]  # resumed from the newest stored trace on
    assert first.to_dict()["new"] == 6 and second.to_dict()["new"] == len(truth) - 6
    assert Counter(ids) == Counter(list(truth))  # nothing duplicated, nothing missed


def test_cli(server, tmp_path):
    from test_cli import hotmess_here  # noqa: PLC0415

    s, _, _ = server
    db = tmp_path / "cli.db"
    out = hotmess_here("import", "langfuse", "--host", s.url, "--db", str(db), "--json")
    assert json.loads(out.stdout)["new"] == 14
    again = hotmess_here("import", "langfuse", "--host", s.url, "--resume", "--db", str(db), "--json")
    assert json.loads(again.stdout)["new"] == 0
    both = hotmess_here("import", "langfuse", str(tmp_path / "x.json"), "--host", s.url, "--db", str(db), ok=False)
    assert both.returncode != 0 and "not both" in both.stderr


def test_an_error_observation_keys_by_its_exception_type():
    from langfuse.api import ObservationV2

    from hotmess.integrations.langfuse_traces import observation_record

    obs = json.loads(ObservationV2(id="o1", trace_id="t1", project_id="p", type="TOOL", name="get_weather",
                                   start_time=datetime(2026, 3, 1), level="ERROR",
                                   status_message="KeyError: 'no such city'").json())
    rec = observation_record(obs)
    assert rec.status_code == "ERROR" and rec.status_message == "KeyError: 'no such city'"
    assert rec.events[0]["attributes"]["exception.type"] == "KeyError"
