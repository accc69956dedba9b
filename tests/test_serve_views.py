"""``hotmess serve``'s analysis views (horizon, goals, compare, runs over time), the runs table's
filters (outcome cluster, time range, step search) and the live update, on one in-process server
(the real app under uvicorn on a free loopback port) over the demo agents' runs plus runs whose
text is markup, and one headless Chromium."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from test_cli import hotmess_here

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")

from test_serve import (  # noqa: E402, I001
    EVIL_TASK,
    T0,
    _request,
    _trace,
    browser,  # noqa: E402, F401  (the module's one headless Chromium)
    request,
)

import hotmess  # noqa: E402
from hotmess import demo  # noqa: E402
from hotmess.store.readers import read_runs_page  # noqa: E402

EVIL_AGENT = "<b>agent</b>"
STEP_SECRET = "needle-in-a-step-<i>output</i>"


class InProcess:
    """The app under uvicorn in a thread of this process (no token: loopback only)."""

    def __init__(self, db: Path) -> None:
        from hotmess.serve import create_app

        self.db = db
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.server = uvicorn.Server(uvicorn.Config(create_app(str(db)), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        for _ in range(200):
            try:
                if request(self.url + "/healthz", token=None)[0] == 200:
                    break
            except OSError:
                time.sleep(0.02)

    def get(self, path: str) -> tuple[int, dict, str]:
        status, headers, body = request(self.url + path, token=None)
        return status, headers, body.decode()

    def get_json(self, path: str) -> dict:
        status, _, body = self.get(path)
        assert status == 200, body[:500]
        return json.loads(body)

    def post(self, *spans: dict) -> None:
        status, _, body = request(self.url + "/v1/traces", json.dumps(_request(*spans)).encode(), token=None,
                                  headers={"Content-Type": "application/json"})
        assert status == 200 and json.loads(body) == {}, body  # every span stored

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _evil(trace: str, outcome: str, start: int, step_output: str = "plain") -> tuple[dict, dict]:
    root, tool = _trace(trace, EVIL_TASK, EVIL_AGENT, outcome)
    for span, shift in ((root, 0), (tool, 1_000_000_000)):
        span["startTimeUnixNano"] = str(start + shift)
        span["endTimeUnixNano"] = str(start + shift + 1_000_000_000)
    tool["attributes"].append({"key": "gen_ai.tool.call.result", "value": {"stringValue": step_output}})
    root["spanId"], tool["spanId"], tool["parentSpanId"] = trace[:16], trace[16:][::-1], trace[:16]
    return root, tool


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    db = tmp_path_factory.mktemp("serve-views") / "views.db"
    hotmess.configure(db=db, flush_interval=0.05)
    try:
        demo.run_demo(runs_per_task=4, seed=3)
    finally:
        hotmess.shutdown()
    srv = InProcess(db)
    day = 86_400 * 10**9
    srv.post(*_evil("a1" * 16, "<img src=x onerror=alert(1)>", T0, STEP_SECRET))
    srv.post(*_evil("a2" * 16, "<img src=x onerror=alert(1)>", T0 + 2 * day))
    srv.post(*_evil("a3" * 16, "another <i>answer</i>", T0 + 4 * day))
    yield srv
    srv.stop()


def _same(page: dict, result: object) -> None:
    assert page == json.loads(json.dumps(result, default=str))


def test_the_views_json_is_the_library_calls(site):
    with hotmess.open(site.db) as db:
        _same(site.get_json("/api/horizon"), db.horizon().to_json())
        _same(site.get_json("/horizon?by=agent&length=tool_calls&format=json"),
              db.horizon(by="agent", length="tool_calls").to_json())
        _same(site.get_json("/api/goals?align=progress"), db.goals(align="progress").to_json())
        _same(site.get_json("/api/compare?by=agent"), db.analyze(by="agent").to_json())
        _same(site.get_json("/api/activity?unit=day"), db.activity(unit="day").to_json())
    cli = hotmess_here("activity", "--db", str(site.db), "--unit", "day", "--json")
    assert json.loads(cli.stdout) == site.get_json("/api/activity?unit=day")  # the CLI's --json shape
    table = hotmess_here("activity", "--db", str(site.db), "--unit", "hour").stdout
    assert " runs per hour in " in table and "incomplete" in table
    activity = site.get_json("/api/activity?unit=day")
    assert activity["unit"] == "day"
    assert sum(b["ok"] + b["error"] + b["incomplete"] for b in activity["buckets"]) == site.get_json(
        "/api/runs?per=1000")["runs"].__len__()
    assert site.get("/api/horizon?length=miles")[0] == 400 and site.get("/compare?by=weather")[0] == 400


def test_runs_filters_cluster_time_and_step_search(site):
    _, _, task_page = site.get(f"/tasks/{quote(EVIL_TASK, safe='')}")
    links = re.findall(r'<a class="cluster" href="([^"]+)">(\d+) runs</a>', task_page)
    assert sorted(int(n) for _, n in links) == [1, 2]
    for href, n in links:
        runs = site.get_json(href.replace("&amp;", "&") + "&format=json")["runs"]
        assert len(runs) == int(n) and len({r["outcome"] for r in runs}) == 1
    assert site.get("/api/runs?cluster=abc")[0] == 400  # a cluster belongs to a task
    day = 86_400 * 10**9
    since, until = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((T0 + k * day) / 1e9)) for k in (1, 3))
    found = site.get_json(f"/api/runs?since={since}&until={until}")["runs"]
    assert [r["run_id"] for r in found] == ["a2" * 16]
    assert site.get("/api/runs?since=yesterday")[0] == 400
    hits = site.get_json(f"/api/runs?steps={quote('needle-in-a-step')}")["runs"]
    assert [r["run_id"] for r in hits] == ["a1" * 16]
    assert site.get_json("/api/runs?q=needle-in-a-step")["runs"] == []  # not in a run's outcome
    # bounded: with a budget of one run a page, the pages still reach the match, one run at a time
    with hotmess.open(site.db) as db:
        seen, after, pages = [], None, 0
        while True:
            rows, after = read_runs_page(db.conn, step_search="needle-in-a-step", limit=5, after=after, scan=1)
            seen += [r["run_id"] for r in rows]
            pages += 1
            if after is None:
                break
        assert seen == ["a1" * 16] and pages == len(db.runs())


def test_new_views_show_agent_markup_as_text(site):
    for path in ("/", "/horizon", "/horizon?by=agent", "/goals", "/compare", "/compare?by=model", "/activity",
                 f"/runs?steps={quote(STEP_SECRET)}", f"/tasks/{quote(EVIL_TASK, safe='')}"):
        status, headers, text = site.get(path)
        assert status == 200, (path, text[:300])
        assert "script-src 'self'" in headers["content-security-policy"]
        scripts = re.findall(r"<script[^>]*>", text)
        assert len(scripts) == 1 and re.fullmatch(r'<script src="/live.js" data-generation="[\d-]+" '
                                                  r'data-every="[\d.]+" defer>', scripts[0]), (path, scripts)
        assert "<img" not in text and "<b>agent" not in text and "<i>answer" not in text, path
    assert "&lt;b&gt;agent&lt;/b&gt;" in site.get("/compare")[2]
    status, headers, js = site.get("/live.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript") and "/api/generation" in js


def _shoot(driver, name: str) -> None:
    where = os.environ.get("HOTMESS_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(where) / f"{name}.png"))


def test_views_in_chromium_and_a_new_run_appears_by_itself(site, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for path, plot in (("/", "runs-over-time"), ("/horizon?by=agent", "horizon"), ("/goals", "goals"),
                       ("/compare", "incoherence")):
        browser.get(site.url + path)
        assert browser.find_elements(By.CSS_SELECTOR, f'svg[aria-label="{plot}"]'), path
        _shoot(browser, path.strip("/").split("?")[0] or "overview")
    assert EVIL_AGENT in browser.find_element(By.CSS_SELECTOR, "table.agents").text  # shown as text
    browser.get(site.url + f"/runs?steps={quote('needle-in-a-step')}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.runs tr")) == 2
    browser.get(site.url + "/runs?agent=agent-live")
    assert "no runs match" in browser.page_source
    browser.execute_script("window.__same_page = 1")
    site.post(*_trace("b7" * 16, "live-task", "agent-live", "arrived"))
    WebDriverWait(browser, 8, poll_frequency=0.2).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "table.runs tr")) == 2)
    assert "agent=agent-live" in browser.current_url  # reloaded as itself
    assert browser.execute_script("return window.__same_page") is None  # by the page, not by the test
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_the_overview_links_the_first_tasks_and_says_how_many_more():
    from hotmess.serve.pages import OVERVIEW_TASKS, task_links

    n = OVERVIEW_TASKS + 123
    tasks = [{"task_id": f"t-{i}", "n": 2} for i in range(n)]
    html = task_links({"a": {"tasks": tasks[::2]}, "b": {"tasks": tasks[1::2]}})
    assert html.count('href="/tasks/t-') == OVERVIEW_TASKS
    assert "and 123 more tasks" in html and 'href="/runs"' in html
    few = task_links({"a": {"tasks": tasks[:3]}, "b": {"tasks": tasks[:3]}})  # a task two agents ran
    assert few.count('href="/tasks/t-') == 3 and "4 runs" in few and "more tasks" not in few
