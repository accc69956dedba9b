"""``hotmess serve``: a real server (a subprocess on a free loopback port) receiving the real OTLP
exporter's protobuf from other processes, OTLP JSON by hand, bad, unauthorised and oversized
requests; its UI pages (escaping agent text), their JSON forms, and headless Chromium."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")

import hotmess  # noqa: E402
from hotmess.errors import ParameterError  # noqa: E402
from hotmess.serve import check_bind  # noqa: E402

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
TOKEN = "t0ken-for-tests"
MAX_BODY = 200_000
EVIL_TASK = "<script>x</script>"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HOTMESS_DB" and not k.startswith("OTEL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env


def request(url: str, data: bytes | None = None, *, token: str | None = TOKEN, headers: dict | None = None,
            method: str | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class Server:
    """``hotmess serve --port 0 --json`` in a subprocess: the CLI itself, on a free port it reports."""

    def __init__(self, db: Path, token: str | None = TOKEN) -> None:
        self.db = db
        self.log = db.with_suffix(".log")
        args = ["serve", "--db", str(db), "--port", "0", "--json", "--max-body", str(MAX_BODY)]
        args += ["--token", token] if token else []
        with open(self.log, "wb") as log:  # a file, not a pipe nobody reads (a full pipe would block it)
            self.proc = subprocess.Popen([sys.executable, "-c", "from hotmess.cli import main; main()", *args],
                                         env=_env(), stdout=subprocess.PIPE, stderr=log, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise AssertionError("the server did not start: " + self.log.read_text(errors="replace"))
        where = json.loads(line)
        assert where["token_required"] is (token is not None) and where["db"] == str(db)
        self.url, self.port = where["otlp_endpoint"], where["port"]
        assert request(self.url + "/healthz", token=token)[0] == 200

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def get_json(self, path: str) -> dict:
        status, _, body = request(self.url + path)
        assert status == 200, body
        return json.loads(body)

    def post_json(self, payload: object, *, gzipped: bool = False) -> tuple[int, dict, bytes]:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if gzipped:
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        return request(self.url + "/v1/traces", body, headers=headers)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("serve") / "served.db")
    yield srv
    srv.stop()


# ---------------------------------------------------------------------------- OTLP JSON by hand


def _attr(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _span(trace: str, span: str, parent: str | None, name: str, start: int, end: int, **attrs: object) -> dict:
    s = {"traceId": trace, "spanId": span, "name": name, "kind": 1,
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
         "attributes": [_attr(k.replace("__", "."), v) for k, v in attrs.items()]}
    if parent:
        s["parentSpanId"] = parent
    return s


def _request(*spans: dict) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "by-hand")]},
                               "scopeSpans": [{"scope": {"name": "by-hand"}, "spans": list(spans)}]}]}


T0 = 1_700_000_000_000_000_000


def _trace(trace: str, task: str, agent: str, outcome: str) -> tuple[dict, dict]:
    root = _span(trace, "a" * 16, None, f"invoke_agent {agent}", T0, T0 + 3_000_000_000,
                 gen_ai__operation__name="invoke_agent", gen_ai__agent__name=agent, hotmess__task__id=task,
                 hotmess__outcome=outcome, hotmess__success=False)
    tool = _span(trace, "b" * 16, "a" * 16, "execute_tool lookup", T0 + 1_000_000_000, T0 + 2_000_000_000,
                 gen_ai__operation__name="execute_tool", gen_ai__tool__name="lookup",
                 gen_ai__tool__call__arguments=json.dumps({"q": outcome}))
    return root, tool


# ---------------------------------------------------------------------------- tests


def test_real_exporter_from_several_processes(server):
    senders = [
        subprocess.Popen([sys.executable, str(HERE / "otlp_sender.py"), server.url, TOKEN, agent, "refund-1", "4", mode],
                         env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for agent, mode in (("agent-simple", "simple"), ("agent-batch", "batch"))
    ]
    for p in senders:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, out + err
    for agent in ("agent-simple", "agent-batch"):
        runs = server.get_json(f"/api/runs?agent={agent}")["runs"]
        assert len(runs) == 4, runs  # with `simple`, each trace came in 3 requests: still one run each
        assert {r["task_id"] for r in runs} == {"refund-1"}
        assert all(r["status"] == "ok" and r["n_steps"] == 2 for r in runs)
        assert sorted(r["outcome"] for r in runs) == sorted(["refund issued", "escalated"] * 2)
        detail = server.get_json(f"/api/runs/{runs[0]['run_id']}")
        kinds = sorted(s["kind"] for s in detail["steps"])
        assert kinds == ["llm", "tool"]
    overview = server.get_json("/api/overview")
    assert {"agent-simple", "agent-batch"} <= set(overview["groups"])


def test_an_agent_with_only_the_standard_environment_variables(server):
    """The issue's done-when: an agent in another process that is told nothing but
    OTEL_EXPORTER_OTLP_ENDPOINT (and the token through OTEL_EXPORTER_OTLP_HEADERS, URL-encoded
    as the specification says): its runs are in the UI within seconds, and the verdict, the
    task's outcome clusters and drift work on them."""
    env = {**_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
           "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{TOKEN}"}
    sender = subprocess.run([sys.executable, str(HERE / "otlp_sender.py"), "-", "", "agent-env", "env-task", "6",
                             "batch"], env=env, capture_output=True, text=True, timeout=60)
    assert sender.returncode == 0, sender.stdout + sender.stderr
    deadline = time.monotonic() + 5
    while len(runs := server.get_json("/api/runs?agent=agent-env")["runs"]) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(runs) == 6 and {r["task_id"] for r in runs} == {"env-task"}
    verdict = server.get_json("/api/overview")["groups"]["agent-env"]
    assert verdict["n_runs"] == 6 and verdict["success_rate"] == 0.5
    task = server.get_json("/api/tasks/env-task")
    clusters = {c["key"]: c["size"] for c in task["analysis"]["tasks"][0]["clusters"]}
    assert clusters == {"<correct>": 3, "escalated": 3}, clusters  # successes are one cluster
    drift = server.get_json("/api/drift?window=2runs&by=agent")
    assert [w["n_runs"] for w in drift["groups"]["agent-env"]["windows"]] == [2, 2, 2]


JS_AGENT = HERE / "js" / "agent.mjs"
needs_js = pytest.mark.skipif(
    shutil.which("node") is None or not (JS_AGENT.parent / "node_modules" / "@opentelemetry").is_dir(),
    reason="the JavaScript agent needs node and tests/js/node_modules (make test runs npm ci in tests/js)")


@needs_js
@pytest.mark.parametrize(("encoding", "compression"), [("proto", "none"), ("json", "none"), ("proto", "gzip")])
def test_an_agent_in_javascript_with_only_the_standard_environment_variables(server, encoding, compression):
    """The issue's first case: an agent in another language (the OpenTelemetry JS SDK and its
    OTLP/HTTP exporters, protobuf and JSON, gzip or not) told nothing but the standard variables."""
    agent = f"js-agent-{encoding}-{compression}"
    env = {**_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
           "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{TOKEN}",
           "OTEL_EXPORTER_OTLP_COMPRESSION": compression}
    sender = subprocess.run(["node", str(JS_AGENT), encoding, agent, "js-task", "6"], env=env,
                            capture_output=True, text=True, timeout=60, cwd=JS_AGENT.parent)
    assert sender.returncode == 0 and "failures 0" in sender.stdout, sender.stdout + sender.stderr
    runs = server.get_json(f"/api/runs?agent={agent}")["runs"]
    assert len(runs) == 6 and {r["task_id"] for r in runs} == {"js-task"}
    assert {r["status"] for r in runs} == {"ok"} and all(r["n_steps"] == 2 for r in runs)
    verdict = server.get_json("/api/overview")["groups"][agent]
    assert verdict["n_runs"] == 6 and verdict["success_rate"] == 0.5
    run = server.get_json(f"/api/runs/{runs[0]['run_id']}")
    steps = {s["kind"]: s for s in run["steps"]}
    assert steps["tool"]["tool"] == "refund" and json.loads(steps["tool"]["input"])["order"] in range(6)
    assert steps["llm"]["model"] == "gpt-test" and steps["llm"]["input_tokens"] == 12


def test_a_trace_split_across_json_requests_is_one_run(server):
    trace = "1" * 32
    root, tool = _trace(trace, "split-task", "agent-json", "found it")
    status, headers, body = server.post_json(_request(tool))
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body) == {}
    status, _, _ = server.post_json(_request(root), gzipped=True)
    assert status == 200
    runs = server.get_json("/api/runs?task=split-task")["runs"]
    assert len(runs) == 1
    assert runs[0]["run_id"] == trace and runs[0]["agent"] == "agent-json" and runs[0]["n_steps"] == 1
    assert runs[0]["outcome"] == "found it"
    # the same again changes nothing
    assert server.post_json(_request(root, tool))[0] == 200
    assert len(server.get_json("/api/runs?task=split-task")["runs"]) == 1


def test_partial_success_names_the_rejected_spans(server):
    root, tool = _trace("2" * 32, "partial-task", "agent-json", "half")
    bad = dict(tool, spanId="nothex!!", name="broken")
    status, _, body = server.post_json(_request(root, bad))
    assert status == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "spanId" in partial["errorMessage"]
    assert len(server.get_json("/api/runs?task=partial-task")["runs"]) == 1
    # spans of no agent (an HTTP call) are rejected as such, not stored
    http = _span("3" * 32, "c" * 16, None, "GET /health", T0, T0 + 1, http__method="GET")
    status, _, body = server.post_json(_request(http))
    assert status == 200 and json.loads(body)["partialSuccess"]["rejectedSpans"] == "1"


@pytest.mark.parametrize("body, ctype, says", [
    (b'{"foo": 1}', "application/json", "resourceSpans"),
    (b"not json at all", "application/json", "not valid JSON"),
    (b"[1, 2]", "application/json", "ExportTraceServiceRequest"),
    (b"\xff\xff\xff\xff", "application/x-protobuf", "protobuf"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "x"}]}]}], "x": {}}', "application/json", None),
])
def test_a_payload_that_is_not_otlp_gets_400(server, body, ctype, says):
    status, _, reply = request(server.url + "/v1/traces", body, headers={"Content-Type": ctype})
    if says is None:  # every span malformed: the request is fine, its spans are rejected
        assert status == 200 and json.loads(reply)["partialSuccess"]["rejectedSpans"] == "1"
        return
    assert status == 400, reply
    if ctype == "application/json":
        assert says in json.loads(reply)["message"]
    else:
        from google.rpc.status_pb2 import Status

        assert says in Status.FromString(reply).message
    status, _, _ = request(server.url + "/v1/traces", b"{}", headers={"Content-Type": "text/plain"})
    assert status == 415


def test_requests_without_the_token_get_401(server):
    for token in (None, "wrong"):
        status, headers, _ = request(server.url + "/v1/traces", b"{}", token=token,
                                     headers={"Content-Type": "application/json"})
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert request(server.url + "/", token=token)[0] == 401
    # a browser: ?token= once sets a cookie and redirects to the page without it
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(server.url + f"/runs?agent=x&token={TOKEN}", timeout=20) as r:
        assert r.status == 200 and r.url == server.url + "/runs?agent=x"
    with opener.open(server.url + "/drift", timeout=20) as r:
        assert r.status == 200


def test_oversized_bodies_get_413(server):
    big = _request(*[_span("4" * 32, f"{i:016x}", None, "x" * 200, T0, T0 + 1) for i in range(1000)])
    status, _, body = server.post_json(big)
    assert status == 413 and "too large" in json.loads(body)["message"]
    bomb = gzip.compress(b"{" + b" " * (MAX_BODY * 20) + b"}")  # small compressed, huge inflated
    status, _, _ = request(server.url + "/v1/traces", bomb,
                           headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 413
    status, _, _ = request(server.url + "/v1/traces", b"{}",
                           headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 400


def test_binding_beyond_loopback_needs_a_token():
    with pytest.raises(ParameterError, match="token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "secret")
    check_bind("127.0.0.1", None)
    check_bind("::1", None)


def test_an_acknowledged_span_survives_a_killed_server(tmp_path):
    srv = Server(tmp_path / "killed.db", token=None)  # no token: the default, loopback only
    try:
        root, tool = _trace("5" * 32, "kill-task", "agent-kill", "kept")
        assert srv.post_json(_request(root, tool))[0] == 200
        sender = subprocess.run([sys.executable, str(HERE / "otlp_sender.py"), srv.url, "unused", "agent-kill",
                                 "kill-task-2", "2", "batch"], env=_env(), capture_output=True, text=True, timeout=60)
        assert sender.returncode == 0, sender.stdout + sender.stderr
    finally:
        srv.stop(signal.SIGKILL)
    with hotmess.open(tmp_path / "killed.db") as db:
        runs = db.runs(task="kill-task").to_records()
        assert len(db.runs(task="kill-task-2")) == 2
    assert [r["run_id"] for r in runs] == ["5" * 32] and runs[0]["n_steps"] == 1


@pytest.fixture(scope="module")
def evil_run(server):
    root, tool = _trace("6" * 32, EVIL_TASK, "<b>agent</b>", "<img src=x onerror=alert(1)>")
    root2, tool2 = _trace("7" * 32, EVIL_TASK, "<b>agent</b>", "another <i>answer</i>")
    for t in (root2, tool2):
        t["spanId"] = t["spanId"].replace("a", "d").replace("b", "e")
        if t.get("parentSpanId"):
            t["parentSpanId"] = "d" * 16
    assert server.post_json(_request(root, tool, root2, tool2))[0] == 200
    return "6" * 32


def test_ui_pages_escape_agent_text(server, evil_run):
    pages = ["/", "/runs", f"/runs?task={quote(EVIL_TASK)}", "/runs?q=onerror", f"/runs/{evil_run}",
             f"/tasks/{quote(EVIL_TASK, safe='')}", "/drift", "/drift?window=1h", "/runs?per=1&after=1:zz"]
    for path in pages:
        status, headers, body = request(server.url + path)
        text = body.decode()
        assert status == 200, (path, text[:500])
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]  # /live.js only, no inline script
        assert text.count("<script") == text.count('<script src="/live.js"') <= 1, path
        assert "<script>x" not in text and "<img" not in text and "<b>agent" not in text, path
    run_page = request(server.url + f"/runs/{evil_run}")[2].decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in run_page and "&lt;img src=x onerror=alert(1)&gt;" in run_page
    assert "<svg" in run_page  # the waterfall
    task_page = request(server.url + f"/tasks/{quote(EVIL_TASK, safe='')}")[2].decode()
    assert "Outcome clusters" in task_page and "&lt;i&gt;answer&lt;/i&gt;" in task_page
    found = server.get_json("/runs?q=onerror&format=json")["runs"]
    assert [r["run_id"] for r in found] == [evil_run]
    assert request(server.url + "/runs/nope")[0] == 404
    assert request(server.url + "/tasks/nope?format=json")[0] == 404
    assert request(server.url + "/runs?status=weird")[0] == 400


def test_json_forms_are_the_cli_shapes(server, evil_run):
    with hotmess.open(server.db) as db:
        assert server.get_json(f"/api/runs/{evil_run}") == json.loads(json.dumps(db.run(evil_run).to_json(), default=str))
        by_agent = db.analyze(by="agent").to_json()
    assert server.get_json("/?format=json")["groups"].keys() == by_agent["groups"].keys()
    task = server.get_json(f"/api/tasks/{quote(EVIL_TASK, safe='')}")
    assert task["task_id"] == EVIL_TASK and task["analysis"]["n_runs"] == 2
    assert "windows" in server.get_json("/api/drift?window=1h")


# ---------------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def browser():
    missing = next((b for b in ("chromium", "chromedriver") if shutil.which(b) is None), None)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing = missing or "selenium"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is not installed")
        pytest.skip(f"{missing} is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_overview_and_run_page_in_chromium(server, evil_run, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + f"/?token={TOKEN}")  # sets the cookie, then the overview
    assert browser.current_url == server.url + "/"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
    assert "<b>agent</b>" in browser.find_element(By.CSS_SELECTOR, "table.agents").text  # shown as text
    assert EVIL_TASK in browser.find_element(By.TAG_NAME, "body").text
    browser.find_element(By.LINK_TEXT, EVIL_TASK).click()
    WebDriverWait(browser, 20).until(lambda b: "/tasks/" in b.current_url and "Outcome clusters" in b.page_source)
    browser.get(server.url + f"/runs/{evil_run}")
    text = browser.find_element(By.TAG_NAME, "body").get_attribute("textContent")
    assert EVIL_TASK in text and "<img src=x onerror=alert(1)>" in text  # markup shown as text
    assert not browser.find_elements(By.CSS_SELECTOR, "body img, body b script")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.waterfall rect.bar")
    assert browser.execute_script("return Array.from(document.scripts, s => new URL(s.src).pathname)") == ["/live.js"]
    # the runs table: a filter and a search through the form
    browser.get(server.url + "/runs")
    browser.find_element(By.NAME, "q").send_keys("onerror")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    WebDriverWait(browser, 20).until(lambda b: "q=onerror" in b.current_url
                                     and b.execute_script("return document.readyState") == "complete")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.runs tr")[1:]
    assert len(rows) == 1 and EVIL_TASK in rows[0].text
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_protobuf_partial_success_is_a_protobuf_response(server):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for span_id, name in ((b"\x0a" * 8, "invoke_agent pb"), (b"\x01\x02", "short id")):
        s = spans.add(trace_id=b"\x08" * 16, span_id=span_id, name=name, start_time_unix_nano=T0,
                      end_time_unix_nano=T0 + 10)
        s.attributes.append(KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="invoke_agent")))
        s.attributes.append(KeyValue(key="hotmess.task.id", value=AnyValue(string_value="pb-task")))
    body = gzip.compress(req.SerializeToString())
    status, headers, reply = request(server.url + "/v1/traces", body, headers={
        "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(reply)
    assert response.partial_success.rejected_spans == 1 and "spanId" in response.partial_success.error_message
    runs = server.get_json("/api/runs?task=pb-task")["runs"]
    assert [r["run_id"] for r in runs] == ["08" * 16]


def test_too_many_waiting_requests_get_503_with_retry_after(tmp_path):
    from starlette.testclient import TestClient

    from hotmess.serve import create_app

    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(str(tmp_path / "busy.db"), max_pending=0, token=TOKEN)) as client:
        r = client.post("/v1/traces", content=b"{}", headers={"Content-Type": "application/json", **auth})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert client.get("/", headers=auth).status_code == 200  # the UI still answers: no runs yet
        assert "no runs" in client.get("/", headers=auth).text


def test_without_a_token_only_loopback_host_names_are_served(tmp_path):
    from starlette.testclient import TestClient

    from hotmess.serve import create_app

    with TestClient(create_app(str(tmp_path / "open.db")), base_url="http://127.0.0.1:4318") as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/healthz", headers={"Host": "localhost:4318"}).status_code == 200
        # a page from evil.example that rebinds its name to 127.0.0.1 must not read the runs
        assert client.get("/api/runs", headers={"Host": "evil.example:4318"}).status_code == 400
        assert client.post("/v1/traces", content=b"{}", headers={
            "Host": "evil.example", "Content-Type": "application/json"}).status_code == 400


def test_another_process_closing_the_database_leaves_the_server_its_wal(server):
    """The UI's reads must not drop the writer's locks (a plain open() of the file would), or
    another process closing its connection deletes the WAL and the shared memory under it."""
    for path in ("/", "/runs", "/drift"):
        assert request(server.url + path)[0] == 200
    with hotmess.open(server.db) as db:
        db.runs()
    assert Path(f"{server.db}-wal").exists() and Path(f"{server.db}-shm").exists()
    assert request(server.url + "/api/runs")[0] == 200


def test_the_cli_refuses_other_interfaces_without_a_token_and_a_port_in_use(server, tmp_path):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from hotmess.cli import main; main()", "serve",
                               "--db", str(tmp_path / "x.db"), *args], env=_env(), capture_output=True,
                              text=True, timeout=30)

    refused = cli("--host", "0.0.0.0")
    assert refused.returncode == 1 and "--token" in refused.stderr and len(refused.stderr.splitlines()) == 1
    taken = cli("--port", str(server.port))
    assert taken.returncode == 1 and f"cannot listen on 127.0.0.1:{server.port}" in taken.stderr


def test_pages_show_runs_that_arrive_after_they_were_computed(server):
    server.get_json("/api/overview")  # computed, and kept until the database changes
    before = server.get_json("/api/overview")
    assert "agent-late" not in before["groups"]
    for i in range(2):
        root, tool = _trace("ef"[i] * 32, "late-task", "agent-late", f"answer {i}")
        assert server.post_json(_request(root, tool))[0] == 200
    assert "agent-late" in server.get_json("/api/overview")["groups"]
    assert server.get_json("/api/tasks/late-task")["analysis"]["n_runs"] == 2


def test_the_runs_table_pages_by_keyset_through_every_run(server, evil_run):
    everything = server.get_json("/api/runs?per=1000")
    assert everything["next"] is None
    seen, cursor = [], None
    while True:
        page = server.get_json("/api/runs?per=3" + (f"&after={quote(cursor)}" if cursor else ""))
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [r["run_id"] for r in everything["runs"]] and len(seen) > 6
    html = request(server.url + "/runs?per=3")[2].decode()
    assert "older →" in html and "newest" not in html
    assert request(server.url + "/runs?after=nonsense")[0] == 400
