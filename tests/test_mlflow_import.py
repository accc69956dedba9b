"""hotmess import mlflow: traces recorded by real ``@mlflow.trace`` code (tests/mlflow_agent.py)
into a local SQLite tracking store, read through MLflow's client and from ``Trace.to_json()`` files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_cli import hotmess_here

import hotmess
from hotmess.errors import HotmessError, InputError

pytest.importorskip("mlflow")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), "COLUMNS": "200", "HOME": os.environ.get("HOME", "/tmp"),
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    # in this process: MLflow is imported once for the module, not once per command
    return hotmess_here(*args, ok=ok, columns=200)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("mlflow")
    subprocess.run([sys.executable, str(HERE / "mlflow_agent.py"), str(out)], check=True, timeout=300,
                   env=_env(), capture_output=True, cwd=out)  # MLflow's artifacts (./mlruns) go there
    return out, json.loads((out / "truth.json").read_text())


@pytest.fixture(scope="module")
def imported(recorded, tmp_path_factory) -> tuple[Path, dict, object]:
    out, truth = recorded
    db = tmp_path_factory.mktemp("mlflow-db") / "runs.db"
    with hotmess.open(db, create=True) as store:
        report = store.import_mlflow(f"sqlite:///{out / 'mlruns.db'}")
    return db, truth, report


def _runs(db: Path) -> dict[str, tuple[dict, list[dict]]]:
    with hotmess.open(db) as store:
        return {r["run_id"]: (r, store.steps(r["run_id"]).to_records()) for r in store.runs().to_records()}


def test_store_import_maps_runs_outcomes_tools_and_crashes(imported):
    db, truth, report = imported
    assert report.to_dict()["new"] == len(truth) == 14 and report.batch.skipped == 0
    runs = _runs(db)
    assert set(runs) == set(truth)
    untagged = {runs[t][0]["task_id"] for t, want in truth.items() if want["task"] == "untagged"}
    assert len(untagged) == 1 and next(iter(untagged)).startswith("msg:")  # same first user message
    for trace_id, want in truth.items():
        run, steps = runs[trace_id]
        if want["task"] != "untagged":
            assert run["task_id"] == want["task"]
        assert (run["source"], run["agent"]) == ("mlflow", "weather_agent")
        assert run["outcome"] == want["answer"]
        kinds = [s["kind"] for s in steps]
        tools = [(s["tool"], json.loads(s["input"])) for s in steps if s["kind"] == "tool"]
        city = "crash" if want["ending"] == "crash" else want["city"]
        tool = "get_time" if want["ending"] == "wrong" else "get_weather"
        assert tools == [(tool, {"city": city})]
        if want["ending"] == "crash":
            assert run["status"] == "error" and run["error"] == "ConnectionError: weather service unreachable"
            assert kinds == ["llm", "tool"] and steps[1]["error"].startswith("ConnectionError")
            assert (run["n_steps"], run["n_errors"]) == (2, 1)
        else:
            assert run["status"] == "ok" and run["error"] is None
            assert kinds == ["llm", "tool", "llm"] and steps[1]["output"] == tool.replace("get_", "").replace(
                "weather", "sunny").replace("time", "noon") + f" in {city}"
            assert (run["n_steps"], run["n_tool_calls"], run["n_llm_calls"]) == (3, 1, 2)
        llm = [s for s in steps if s["kind"] == "llm"]
        assert all(s["model"] == "fake-model-1" and (s["input_tokens"], s["output_tokens"]) == (12, 5) for s in llm)
        assert "What is the weather in" in llm[0]["input"] and '"role": "system"' in llm[0]["input"]
        assert run["input_tokens"] == 12 * len(llm) and run["start_ns"] > 0 and run["end_ns"] >= run["start_ns"]
        attributes = json.loads(run["attributes"])
        assert attributes["mlflow.trace_id"] == trace_id and attributes["mlflow.experiment_id"]
        if want["task"] != "untagged":
            assert attributes["mlflow.tags"]["task_id"] == want["task"]
            assert attributes["mlflow.metadata"]["team"] == "search"


def test_clusters_per_task_are_the_true_endings(imported):
    db, truth, _ = imported
    with hotmess.open(db) as store:
        result = store.analyze(outcome="exact")
    assert result.n_tasks == 4 and result.n_single_run_tasks == 0
    name_of = {r["task_id"]: truth[run_id]["task"] for run_id, (r, _) in _runs(db).items()}
    for task in result.tasks:
        endings = Counter(w["ending"] for w in truth.values() if w["task"] == name_of[task.task_id])
        assert [c.size for c in task.clusters] == sorted(endings.values(), reverse=True), task.task_id
    crashes = [t for t in result.tasks if name_of[t.task_id] == "t3"][0]
    assert crashes.outcome_clusters == 3  # ok, wrong, and both crashes in one cluster (by exception type)


def test_file_exports_give_the_same_runs_and_steps(imported, recorded, tmp_path):
    db, truth, _ = imported
    out, _ = recorded
    want = _runs(db)
    for name in ("traces.jsonl", "traces.json"):
        path = tmp_path / f"{name}.db"
        with hotmess.open(path, create=True) as store:
            report = store.import_mlflow(out / name)
        assert report.to_dict()["new"] == len(truth)
        got = _runs(path)
        assert got.keys() == want.keys()
        for run_id, (run, steps) in got.items():
            stored = want[run_id][0]
            from_store = json.loads(stored["attributes"])
            assert from_store.pop("mlflow.tracking_uri") == f"sqlite:///{out / 'mlruns.db'}"
            assert json.loads(run.pop("attributes")) == from_store, name
            assert run == {k: v for k, v in stored.items() if k != "attributes"}, name
            assert steps == want[run_id][1], name


def test_reimport_adds_nothing(imported, recorded):
    db, truth, _ = imported
    out, _ = recorded
    before = _runs(db)
    with hotmess.open(db) as store:
        again = store.import_mlflow(f"sqlite:///{out / 'mlruns.db'}").to_dict()
        from_file = store.import_mlflow(out / "traces.jsonl").to_dict()
    assert (again["new"], again["already_stored"], again["steps"]) == (0, len(truth), 0)
    assert (from_file["new"], from_file["already_stored"]) == (0, len(truth))
    assert _runs(db) == before


def test_malformed_records_are_skipped_and_named(recorded, tmp_path):
    out, truth = recorded
    good = (out / "traces.jsonl").read_text().splitlines()
    broken = json.loads(good[1])
    broken["data"]["spans"][0]["span_id"] = "not an id!"
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([good[0], "{not json", '{"info": {}}', json.dumps(broken), good[2], "[1]"]) + "\n")
    with hotmess.open(tmp_path / "mixed.db", create=True) as store:
        report = store.import_mlflow(path)
    assert report.to_dict()["new"] == 2 and report.batch.skipped == 4 and report.batch.records == 6
    errors = [str(e) for e in report.batch.errors]
    assert errors[0].startswith(f"{path}, line 2: not valid JSON")
    assert errors[1] == f'{path}, line 3: not an MLflow trace: no "info" and "data" objects'
    assert errors[2].startswith(f"{path}, line 4: data.spans[0]: malformed span_id")
    assert errors[3].startswith(f"{path}, line 6 item 0: not an object")
    nothing = tmp_path / "nothing.jsonl"
    nothing.write_text("{not json\n")
    with pytest.raises(InputError, match="nothing to import: 1 of 1 traces are malformed"):
        hotmess.open(tmp_path / "never.db", create=True).import_mlflow(nothing)
    assert not (tmp_path / "never.db").exists()


def test_task_attr_since_until_and_experiments(recorded, tmp_path):
    out, truth = recorded
    uri = f"sqlite:///{out / 'mlruns.db'}"
    with hotmess.open(tmp_path / "a.db", create=True) as store:
        store.import_mlflow(uri, task_attr="input.value.task")  # a path into the root's inputs
        assert {r["run_id"]: r["task_id"] for r in store.runs().to_records()} == {
            t: w["task"] for t, w in truth.items()}
    with hotmess.open(tmp_path / "b.db", create=True) as store:
        store.import_mlflow(uri, task_attr="metadata.team", experiments=["weather-agent"], since="2000-01-01")
        tasks = Counter(r["task_id"] for r in store.runs().to_records())
    assert tasks["search"] == sum(1 for w in truth.values() if w["task"] != "untagged") and len(tasks) == 2
    with pytest.raises(InputError, match="nothing to import: no traces found"):
        hotmess.open(tmp_path / "c.db", create=True).import_mlflow(uri, until="2000-01-01")
    with pytest.raises(HotmessError, match="no MLflow experiment named or numbered 'nope'"):
        hotmess.open(tmp_path / "c.db", create=True).import_mlflow(uri, experiments=["nope"])
    with pytest.raises(HotmessError, match="not a time"):
        hotmess.open(tmp_path / "c.db", create=True).import_mlflow(uri, since="last tuesday")
    assert not (tmp_path / "c.db").exists()
    with hotmess.open(tmp_path / "d.db", create=True) as store:  # a file's traces: by their root's start
        report = store.import_mlflow(out / "traces.jsonl", since="2000-01-01", until="2999-01-01")
    assert report.to_dict()["new"] == len(truth) and report.batch.outside == 0
    with pytest.raises(InputError, match="start outside --since/--until"):
        hotmess.open(tmp_path / "c.db", create=True).import_mlflow(out / "traces.jsonl", since="2999-01-01")


def test_cli_terminal_and_json(recorded, tmp_path):
    out, truth = recorded
    db = tmp_path / "cli.db"
    text = " ".join(cli("import", "mlflow", f"sqlite:///{out / 'mlruns.db'}", "--db", str(db)).stdout.split())
    assert f"Imported {len(truth)} new runs" in text and "hotmess analyze --outcome text" in text
    assert "3 runs without a task id" in text
    again = json.loads(cli("import", "mlflow", str(out / "traces.json"), "--db", str(db), "--json").stdout)
    assert (again["source"], again["new"], again["already_stored"], again["skipped"]) == ("mlflow", 0, len(truth), 0)
    proc = cli("import", "mlflow", str(out / "traces.json"), "--db", str(db), "--since", "yesterday", ok=False)
    assert proc.returncode == 1 and "--since: not a time" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("import", "mlflow", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "x.db"), ok=False)
    assert proc.returncode == 1 and "no such file" in proc.stderr and not (tmp_path / "x.db").exists()


def test_without_mlflow_hotmess_imports_and_the_error_names_the_extra(recorded, tmp_path):
    out, _ = recorded
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "import hotmess, hotmess.cli\n"
        "from hotmess.errors import HotmessError\n"
        f"db = hotmess.open({str(tmp_path / 'x.db')!r}, create=True)\n"
        f"print(db.import_mlflow({str(out / 'traces.jsonl')!r}).to_dict()['new'])\n"  # files need no mlflow
        "try:\n"
        f"    db.import_mlflow('sqlite:///{out / 'mlruns.db'}')\n"
        "except HotmessError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["14", "this import needs the mlflow package: pip install 'hotmess[mlflow]'"]


def test_store_is_read_page_by_page(recorded, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from hotmess.integrations.mlflow_traces import read_mlflow_store

    out, truth = recorded
    pages = []
    search = MlflowClient.search_traces

    def counting(self, *args, **kwargs):
        page = search(self, *args, **kwargs)
        pages.append((kwargs["page_token"], len(page)))
        return page

    monkeypatch.setattr(MlflowClient, "search_traces", counting)
    batch = read_mlflow_store(f"sqlite:///{out / 'mlruns.db'}", page_size=4)
    assert len(batch.runs) == len(truth) and [n for _, n in pages] == [4, 4, 4, 2]
    assert pages[0][0] is None and all(token for token, _ in pages[1:])
    starts = [r["start_ns"] // 1_000_000 for r in batch.runs]  # MLflow orders by the millisecond
    assert starts == sorted(starts)  # oldest first


def test_a_directory_or_the_sqlite_file_is_the_store(recorded, tmp_path):
    out, truth = recorded
    store_dir = tmp_path / "server"
    store_dir.mkdir()
    (store_dir / "mlflow.db").write_bytes((out / "mlruns.db").read_bytes())
    for source in (store_dir, out / "mlruns.db"):
        with hotmess.open(tmp_path / f"{source.name}.db", create=True) as store:
            report = store.import_mlflow(source)
        assert report.to_dict()["new"] == len(truth), source


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tracking_server_on_localhost(recorded, tmp_path):
    """The API path: ``mlflow server`` on 127.0.0.1 over the recorded store, read over HTTP."""
    import signal
    import time
    import urllib.request

    out, truth = recorded
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    env = {**_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{out / 'mlruns.db'}", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--default-artifact-root", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)
        db = tmp_path / "http.db"
        text = " ".join(cli("import", "mlflow", f"http://127.0.0.1:{port}", "--db", str(db),
                            "--experiment", "weather-agent", "--since", "2000-01-01").stdout.split())
        assert f"Imported {len(truth)} new runs" in text
        assert set(_runs(db)) == set(truth)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_resume_asks_only_for_traces_after_the_newest_stored(recorded, tmp_path):
    out, truth = recorded
    uri = f"sqlite:///{out / 'mlruns.db'}"
    times = sorted(json.loads(line)["info"]["request_time"] for line in (out / "traces.jsonl").read_text().splitlines())
    db = tmp_path / "r.db"
    with hotmess.open(db, create=True) as store:
        first = store.import_mlflow(uri, until=times[8], resume=True)  # nothing stored yet: from the start
        # --until bounds by the root span's start, which can be a millisecond off request_time:
        # about the first 8, never all
        before = first.to_dict()["new"]
        assert 7 <= before <= 9 and before == len(store.runs())
        rest = store.import_mlflow(uri, resume=True)
        assert rest.to_dict()["new"] == len(truth) - before and rest.batch.records < len(truth)
        again = store.import_mlflow(uri, resume=True)
        # resume asks from the newest stored trace's start on: only the traces that started
        # then (the agent records several in one millisecond; root start and request_time
        # can differ by one)
        from datetime import datetime, timedelta

        at = [datetime.fromisoformat(t) for t in times]
        newest = sum(t >= at[-1] - timedelta(milliseconds=2) for t in at)
        assert again.to_dict()["new"] == 0 and 1 <= again.batch.records <= newest < len(truth)
        assert {r["run_id"] for r in store.runs().to_records()} == set(truth)
        with pytest.raises(HotmessError, match="resume continues reading a tracking store"):
            store.import_mlflow(out / "traces.jsonl", resume=True)


def test_success_from_feedback_assessments(recorded, tmp_path):
    """MLflow's own ``Feedback`` assessments on the traces: ``correctness`` (found by default)
    or the one ``success_key`` names is the run's success."""
    from mlflow.entities import Feedback

    out, truth = recorded
    traces = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines() if line.strip()]
    for trace in traces:
        info = trace["info"]
        ending = truth[info["trace_id"]]["ending"]
        info["assessments"] = [Feedback(name="correctness", value=ending == "ok", trace_id=info["trace_id"]).to_dictionary(),
                               Feedback(name="quality", value=0.2, trace_id=info["trace_id"]).to_dictionary()]
    path = tmp_path / "assessed.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in traces) + "\n")
    with hotmess.open(tmp_path / "a.db", create=True) as store:
        store.import_mlflow(path)
        got = {r["run_id"]: r["success"] for r in store.runs().to_records()}
    assert got == {t: w["ending"] == "ok" for t, w in truth.items()}
    with hotmess.open(tmp_path / "b.db", create=True) as store:
        store.import_mlflow(path, success_key="quality")
        assert {r["success"] for r in store.runs().to_records()} == {False}
