"""hotmess import phoenix: the scripted LangChain agent of tests/instrumented_agent.py (3 tasks × 10
runs, known endings) run under the real OpenInference instrumentor; its spans laid out as Phoenix
serves them — the spans dataframe of ``get_spans_dataframe()`` (written as Parquet and as JSON
lines) and the REST API's ``GET /v1/projects/{project}/spans`` pages, replayed by a local server
with cursor paging — and imported. The layouts follow Phoenix's own code
(``phoenix/trace/dsl/query.py``: ``_get_spans_dataframe``, ``_flatten_semantic_conventions``;
``phoenix/server/api/routers/v1/spans.py``: ``span_search``): the dataframe keeps OpenInference's
semantic conventions as columns holding lists of ``message.*`` objects and parses JSON-text
attributes (``metadata``); the REST API flattens every attribute (``llm.input_messages.0.message.role``),
pops ``openinference.span.kind`` into ``span_kind`` and pages newest first."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import urllib.parse
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import hotmess
from hotmess.analyzers.outcomes import canonical_json
from hotmess.errors import HotmessError, InputError
from hotmess.integrations.otlp_wire import read_records, request_spans

pytest.importorskip("openinference.instrumentation.langchain")
from test_cli import hotmess_here  # noqa: E402

HERE = Path(__file__).resolve().parent
_JSON_TEXT = ("metadata", "tool.parameters", "llm.prompt_template.variables")


# ---------------------------------------------------------------------------------------------
# Phoenix's layouts of the agent's OpenInference spans


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def _loaded(attrs: dict[str, Any]) -> dict[str, Any]:
    """Phoenix parses JSON-text attributes on ingestion (JSON_STRING_ATTRIBUTES)."""
    return {k: json.loads(v) if k in _JSON_TEXT and isinstance(v, str) else v for k, v in attrs.items()}


def _flat(key: str, value: Any, out: dict[str, Any]) -> None:
    """phoenix.trace.attributes.flatten(recurse_on_sequence=True)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{key}.{k}", v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flat(f"{key}.{i}", v, out)
    else:
        out[key] = value


def _nested(items: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys split at their list indices: ``llm.input_messages.0.message.role`` →
    ``{"llm.input_messages": [{"message.role": ...}]}`` (unflatten with semantic conventions kept whole)."""
    out: dict[str, Any] = {}
    lists: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in items.items():
        found = re.match(r"^(.*?)\.(\d+)\.(.*)$", key)
        if found:
            lists.setdefault(found.group(1), {}).setdefault(int(found.group(2)), {})[found.group(3)] = value
        else:
            out[key] = value
    for key, by_index in lists.items():
        out[key] = [_nested(by_index[i]) for i in sorted(by_index)]
    return out


def _events(rec) -> list[dict[str, Any]]:
    return [{"name": e["name"], "timestamp": _iso(e["timestamp"]), "attributes": e.get("attributes", {})}
            for e in rec.events]


def dataframe_row(rec) -> dict[str, Any]:
    attrs = _loaded(rec.attributes)
    row = {"name": rec.name, "span_kind": attrs.pop("openinference.span.kind", "UNKNOWN"),
           "parent_id": rec.parent_span_id, "start_time": datetime.fromtimestamp(rec.start_ns / 1e9, UTC),
           "end_time": datetime.fromtimestamp(rec.end_ns / 1e9, UTC), "status_code": rec.status_code,
           "status_message": rec.status_message or "", "events": _events(rec),
           "context.span_id": rec.span_id, "context.trace_id": rec.trace_id}
    row.update({f"attributes.{k}": v for k, v in _nested(attrs).items()})
    return row


def rest_span(rec, n: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for k, v in _loaded(rec.attributes).items():
        _flat(k, v, attrs)
    return {"id": base64.b64encode(f"Span:{n}".encode()).decode(), "name": rec.name,
            "context": {"trace_id": rec.trace_id, "span_id": rec.span_id},
            "span_kind": attrs.pop("openinference.span.kind", "UNKNOWN"), "parent_id": rec.parent_span_id,
            "start_time": _iso(rec.start_ns), "end_time": _iso(rec.end_ns), "status_code": rec.status_code,
            "status_message": rec.status_message or "", "attributes": attrs, "events": _events(rec)}


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> tuple[Path, list, dict]:
    root = tmp_path_factory.mktemp("phoenix")
    traces, truth = root / "otlp.jsonl", root / "truth.json"
    subprocess.run([sys.executable, str(HERE / "instrumented_agent.py"), "openinference", str(traces), str(truth)],
                   check=True, timeout=300)
    spans = [s for _, request in read_records(traces, str(traces)) for s in request_spans(request)]
    return root, spans, json.loads(truth.read_text())


@pytest.fixture(scope="module")
def files(agent) -> dict[str, Path]:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    root, spans, _ = agent
    df = pd.DataFrame([dataframe_row(s) for s in spans]).set_index("context.span_id", drop=False)
    out = {"parquet": root / "spans.parquet", "jsonl": root / "spans.jsonl", "rest": root / "pages.jsonl"}
    # pyarrow cannot store metadata's mixed lists (langgraph_path holds str, int and bool) as a
    # struct: written as JSON text, as a user has to
    df.assign(**{"attributes.metadata": df["attributes.metadata"].map(json.dumps, na_action="ignore")}
              ).to_parquet(out["parquet"])
    df.to_json(out["jsonl"], orient="records", lines=True, date_format="iso")
    rest = [rest_span(s, n) for n, s in enumerate(spans)]
    with open(out["rest"], "w") as f:
        for i in range(0, len(rest), 40):
            f.write(json.dumps({"data": rest[i:i + 40], "next_cursor": None if i + 40 >= len(rest) else "x"}) + "\n")
    return out


def _by_request(db: Path) -> dict[str, tuple[dict, list[dict]]]:
    from hotmess.vocab.instructions import step_instruction

    with hotmess.open(db) as store:
        out = {}
        for run in store.runs().to_records():
            steps = store.steps(run["run_id"]).to_records()
            first_call = next(s for s in steps if s["kind"] == "llm")
            out[step_instruction(first_call["input"])] = (run, steps)
    return out


def _check_runs(db: Path, truth: dict) -> None:
    runs = _by_request(db)
    assert set(runs) == set(truth)
    for request, (run, steps) in runs.items():
        want = truth[request]
        assert run["source"] == "phoenix" and run["agent"] == "refund-bot"
        assert run["task_id"] == want["task"], request  # the root's metadata
        if want["crash"]:
            assert run["status"] == "error" and run["outcome"] is None
            assert run["error"].startswith(want["crash"] + ": "), run["error"]
        else:
            assert run["status"] == "ok" and run["outcome"] == want["answer"], request
        tools = [s for s in steps if s["kind"] == "tool"]
        assert [[s["tool"], json.loads(s["input"])] for s in tools] == want["tools"], request
        n_llm = len(want["tools"]) + (0 if want["crash"] else 1)
        assert run["n_tool_calls"] == len(want["tools"]) and run["n_llm_calls"] == n_llm
        assert all(s["input_tokens"] > 0 for s in steps if s["kind"] == "llm")


def _check_clusters(db: Path, truth: dict) -> None:
    with hotmess.open(db) as store:
        for outcome, key in (("exact", "answer"), ("actions", "tools")):
            result = store.analyze(outcome=outcome)
            assert result.n_tasks == 3
            for task in result.tasks:
                endings = Counter(canonical_json(r[key]) if r["crash"] is None else r["crash"]
                                  for r in truth.values() if r["task"] == task.task_id)
                assert [c.size for c in task.clusters] == sorted(endings.values(), reverse=True)


@pytest.fixture(scope="module")
def imported(agent, files, tmp_path_factory) -> dict[str, Path]:
    dbs = {}
    for layout, path in files.items():
        dbs[layout] = tmp_path_factory.mktemp(f"db-{layout}") / "runs.db"
        with hotmess.open(dbs[layout], create=True) as store:
            report = store.import_phoenix(path)
        assert report.to_dict()["new"] == 30 and report.batch.skipped == 0, layout
    return dbs


@pytest.mark.parametrize("layout", ["parquet", "jsonl", "rest"])
def test_runs_steps_and_outcomes_are_what_the_agent_did(agent, imported, layout):
    _check_runs(imported[layout], agent[2])


def test_a_rest_span_reads_back_as_the_openinference_span(agent):
    from hotmess.integrations.phoenix_spans import span_record

    _, spans, _ = agent
    for n, rec in enumerate(spans):
        back = span_record(rest_span(rec, n))
        assert (back.trace_id, back.span_id, back.parent_span_id) == (rec.trace_id, rec.span_id, rec.parent_span_id)
        assert back.status_code == rec.status_code and abs(back.start_ns - rec.start_ns) < 1000
        want = {k: json.loads(v) if k in _JSON_TEXT else v for k, v in rec.attributes.items()}
        got = {k: json.loads(v) if k in _JSON_TEXT else v for k, v in back.attributes.items()}
        assert got == want, rec.name


@pytest.mark.parametrize("layout", ["parquet", "rest"])
def test_clusters_are_the_true_distinct_endings(agent, imported, layout):
    _check_clusters(imported[layout], agent[2])


def test_the_cli_imports_a_file_and_a_second_import_adds_nothing(files, tmp_path):
    db = tmp_path / "runs.db"
    first = json.loads(hotmess_here("import", "phoenix", str(files["jsonl"]), "--db", str(db), "--json").stdout)
    again = json.loads(hotmess_here("import", "phoenix", str(files["parquet"]), "--db", str(db), "--json").stdout)
    assert (first["runs"], first["new"]) == (30, 30) and (again["runs"], again["new"]) == (30, 0)
    shown = hotmess_here("import", "phoenix", str(files["jsonl"]), "--db", str(db)).stdout
    assert "30" in shown


def test_bad_spans_are_skipped_and_named_and_a_broken_file_names_itself(files, tmp_path):
    lines = files["jsonl"].read_text().splitlines()
    broken = json.loads(lines[0])
    broken.pop("context.trace_id")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([json.dumps(broken), "{not json", *lines[1:]]) + "\n")
    with hotmess.open(tmp_path / "bad.db", create=True) as store:
        report = store.import_phoenix(bad)
    errors = [str(e) for e in report.batch.errors]
    assert report.batch.skipped == 2 and len(errors) == 2
    assert "line 1" in errors[0] and "context.trace_id" in errors[0] and "line 2" in errors[1]
    assert report.to_dict()["new"] >= 29  # only the trace that lost a span is incomplete
    garbage = tmp_path / "spans.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="spans.parquet"):
        hotmess.open(tmp_path / "g.db", create=True).import_phoenix(garbage)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = hotmess_here("import", "phoenix", str(empty), "--db", str(tmp_path / "e.db"), ok=False)
    assert proc.returncode != 0 and "empty.jsonl" in proc.stderr and "empty" in proc.stderr
    assert not (tmp_path / "e.db").exists()


# ---------------------------------------------------------------------------------------------
# a server replaying Phoenix's REST API


@pytest.fixture(scope="module")
def server(agent):
    _, spans, _ = agent
    newest_first = sorted((rest_span(s, n) for n, s in enumerate(spans)),
                          key=lambda s: s["start_time"], reverse=True)
    seen: list[tuple[str, dict, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            seen.append((url.path, query, self.headers.get("Authorization")))
            if url.path != "/v1/projects/support/spans":
                self.send_response(404)
                self.end_headers()
                return
            chosen = [s for s in newest_first if "start_time" not in query
                      or datetime.fromisoformat(s["start_time"]) >= datetime.fromisoformat(query["start_time"])]
            start = int(query.get("cursor", 0))
            limit = int(query.get("limit", 100))
            page = chosen[start:start + limit]
            body = {"data": page, "next_cursor": str(start + limit) if start + limit < len(chosen) else None}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen, newest_first
    httpd.shutdown()
    httpd.server_close()


def test_a_server_is_read_page_by_page_with_its_key(agent, server, tmp_path, monkeypatch):
    endpoint, seen, _ = server
    monkeypatch.setenv("PHOENIX_API_KEY", "px-secret")
    db = tmp_path / "runs.db"
    seen.clear()
    with hotmess.open(db, create=True) as store:
        report = store.import_phoenix(endpoint=endpoint, project="support", page_size=50)
    assert report.to_dict()["new"] == 30
    assert len(seen) > 3 and all(auth == "Bearer px-secret" for _, _, auth in seen)
    assert [q.get("cursor") for _, q, _ in seen][:2] == [None, "50"]
    _check_runs(db, agent[2])
    _check_clusters(db, agent[2])


def test_since_until_and_resume(agent, server, tmp_path):
    endpoint, seen, newest_first = server
    roots = sorted(s["start_time"] for s in newest_first if s["parent_id"] is None)
    before, after = (datetime.fromisoformat(t) for t in roots[14:16])
    middle = (before + (after - before) / 2).isoformat()  # between two roots: no rounding at the bound
    db = tmp_path / "runs.db"
    first = json.loads(hotmess_here("import", "phoenix", "--endpoint", endpoint, "--project", "support",
                                    "--until", middle, "--db", str(db), "--json").stdout)
    assert first["new"] == 15
    seen.clear()
    rest = json.loads(hotmess_here("import", "phoenix", "--endpoint", endpoint, "--project", "support",
                                   "--resume", "--db", str(db), "--json").stdout)
    assert "start_time" in seen[0][1]  # resume asks the server only for the newer spans
    assert rest["new"] == 15
    again = json.loads(hotmess_here("import", "phoenix", "--endpoint", endpoint, "--project", "support",
                                    "--resume", "--db", str(db), "--json").stdout)
    assert again["new"] == 0
    _check_runs(db, agent[2])
    with hotmess.open(tmp_path / "since.db", create=True) as store:
        assert store.import_phoenix(endpoint=endpoint, project="support", since=middle).to_dict()["new"] == 15


def test_server_errors_are_clear(server, tmp_path):
    endpoint, _, _ = server
    with pytest.raises(HotmessError, match="404.*no project 'nope'"):
        hotmess.open(tmp_path / "a.db", create=True).import_phoenix(endpoint=endpoint, project="nope")
    proc = hotmess_here("import", "phoenix", "--endpoint", "ftp://x", "--db", str(tmp_path / "b.db"), ok=False)
    assert proc.returncode != 0 and "http" in proc.stderr
    proc = hotmess_here("import", "phoenix", "--db", str(tmp_path / "c.db"), ok=False)
    assert proc.returncode != 0 and "--endpoint" in proc.stderr
    with pytest.raises(HotmessError, match="resume"):
        hotmess.open(tmp_path / "d.db", create=True).import_phoenix("x.parquet", resume=True)
