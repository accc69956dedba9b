"""The HTML report: built from the demo, from tau-bench and from hostile runs, read back in a real
headless Chromium (Debian's chromium + chromedriver, driven by selenium), plus fast checks of
the page builder on its own."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
from test_cli import TAU, hotmess, hotmess_here, needs_tau

import hotmess as hm
from hotmess.analyzers import analyze
from hotmess.report import build_report, plots
from hotmess.tables import RUN_COLUMNS, Table

PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOSTILE_TASK = "<script>alert('task')</script>$x$"
PNG = b"\x89PNG\r\n\x1a\n"
#: Plots every full report has, each inside the section of the same name.
PLOTS = {"plot-incoherence": "verdict", "plot-pass-hat-k": "verdict", "plot-bias-variance": "bias-variance"}


# ---------------------------------------------------------------------------- databases


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo-report")
    hotmess("demo", "--runs", "5", "--db", str(root / "demo.db"), "--json")
    out = root / "demo.html"
    info = json.loads(hotmess("report", "--db", str(root / "demo.db"), "--out", str(out), "--json").stdout)
    return out, info


@pytest.fixture(scope="module")
def tau_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tau-report")
    hotmess("import", "tau-bench", str(TAU), "--db", str(root / "tau.db"))
    out = root / "tau.html"
    info = json.loads(hotmess("report", "--db", str(root / "tau.db"), "--out", str(out),
                              "--outcome", "actions", "--window", "50runs", "--json").stdout)
    return out, info


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs recorded by the real tracer whose task id, tool arguments, results, errors and
    outcome are all markup meant to run in the reader's browser."""
    root = tmp_path_factory.mktemp("hostile")
    db = root / "hostile.db"
    hm.configure(db=db, flush_interval=0.05)

    @hm.trace(task_id=HOSTILE_TASK, agent='bot"><script>window.__pwned=3</script>')
    def agent(trial: int) -> None:
        hm.goal(PAYLOAD)
        hm.action("lookup</title><script>window.__pwned=4</script>", {"q": PAYLOAD}, result=PAYLOAD)
        hm.action("write", {"q": trial}, error=PAYLOAD)
        hm.outcome(PAYLOAD if trial % 2 else f"fine {trial}", success=trial % 2 == 0, reference="fine")

    for trial in range(4):
        agent(trial)
    assert hm.flush(timeout=20)
    hm.shutdown()
    out = root / "hostile.html"
    hotmess("report", "--db", str(db), "--out", str(out))
    return out


# ---------------------------------------------------------------------------- the builder alone


def _data(task_id: str = HOSTILE_TASK, **sections) -> dict:
    records = [
        {"run_id": f"r{i}", "task_id": task_id, "agent": "a<b>", "status": "ok", "start_ns": i,
         "outcome": PAYLOAD if i % 2 else '"fine"', "success": float(i % 2 == 0), "n_steps": 1}
        for i in range(4)
    ]
    runs = Table.from_records(records, RUN_COLUMNS)
    steps = {"r1": [{"run_id": "r1", "span_id": "s1", "parent_span_id": None, "kind": "tool",
                     "name": PAYLOAD, "input": PAYLOAD, "output": "x" * 5000, "error": PAYLOAD}]}
    return {"database": "<db>.db", "analysis": analyze(runs, n_boot=200).to_dict(), "runs": records,
            "steps": steps, "generated": "2026-01-01 00:00:00 UTC", **sections}


def test_page_escapes_everything_that_came_from_runs():
    page = build_report(_data())
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "onerror=" not in page.replace("onerror=&quot;", "")
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#x27;task&#x27;)&lt;/script&gt;" in page  # a table cell
    assert "a&lt;b&gt;" in page and "&lt;db&gt;.db" in page
    assert 'id="run-r1"' in page and 'href="#run-r1"' in page
    assert "3000 more characters" in page  # long outputs are cut
    # The task id also went through matplotlib into the SVG tick labels: escaped there too.
    svg = page[page.index('<figure id="plot-bias-variance">'):]
    assert "&lt;script&gt;alert" in svg[: svg.index("</figure>")]


def test_page_is_self_contained_and_deterministic():
    data = _data()
    page = build_report(data)
    assert page == build_report(data)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page and not re.search(r"url\((?!#)", page)  # only in-page references
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "ids must be unique across the inline SVGs"


def test_missing_or_thin_sections_say_so():
    page = build_report(_data(horizon=None, goals="not enough data: no goals recorded", drift={
        "a<b>": {"windows": [{"start": "s", "end": "e", "n_runs": 4, "success_rate": 0.5,
                              "incoherence": None, "js_divergence": None, "p_value": None, "changed": False}]},
    }))
    for section in ("verdict", "bias-variance", "clusters", "horizon", "goals", "drift", "runs", "steps"):
        assert f'<section id="{section}">' in page
    assert "not available: this version of hotmess has no horizon analyzer" in page
    assert "not enough data: no goals recorded" in page
    assert "single time window" in page
    assert "plot-horizon" not in page and "plot-drift" not in page


def test_over_time_sections_draw_their_dicts():
    horizon = {"groups": [{"length_mean": m, "n_tasks": 4, "incoherence": i, "ci_low": i - 0.1, "ci_high": i + 0.1}
                          for m, i in ((3.0, 0.2), (7.0, 0.35), (15.0, 0.6))],
               "slope": 0.5, "slope_ci": [0.21, 0.83], "trend": "rises", "r2": 0.9,
               "diversity_slope": 0.04, "diversity_slope_ci": [-0.02, 0.1], "diversity_trend": "none",
               "median_split": {"short": 0.3, "long": 0.5, "difference": 0.2, "difference_ci": [0.05, 0.35]},
               "warnings": ["across tasks incoherence rises with length, but within tasks the longer runs ..."]}
    goals = {"positions": [{"position": p, "n_runs": 4, "goal_clusters": p + 1, "variance": p / 5,
                            "incoherence": None if p == 0 else 0.5} for p in range(4)],
             "goal_drift": {"mean_slope": 0.01, "runs": 4}}
    drift = {"windows": [{"start": f"day {d}", "end": f"day {d + 1}", "n_runs": 10, "success_rate": 0.5,
                          "incoherence": 0.4, "js_divergence": None if d == 0 else 0.2,
                          "p_value": None if d == 0 else 0.01, "changed": d == 2} for d in range(3)]}
    page = build_report(_data(horizon={"a<b>": horizon}, goals={"a<b>": goals}, drift={"a<b>": drift}))
    for plot in ("plot-horizon", "plot-goals", "plot-drift"):
        assert f'<figure id="{plot}"><svg' in page
    assert "0.500" in page and "changed" in page
    assert "0.500 [0.210, 0.830]" in page and "<td>rises</td>" in page and "0.200 [0.050, 0.350]" in page
    assert "success cannot" in page and "across tasks incoherence rises with length" in page


def test_plots_take_dollar_signs_and_markup_as_plain_text():
    tasks = [{"task_id": "$\\bogus{$", "bias": 0.5, "variance": math.nan}]
    svg = plots.bias_variance_plot({"$\\frac{a}{b}$ <i>": tasks, "other": tasks})
    assert svg.startswith("<svg") and ">$\\bogus{$<" in svg and ">$\\frac{a}{b}$ &lt;i&gt;<" in svg


# ---------------------------------------------------------------------------- the command


def test_report_command_json_and_terminal(demo_report, tmp_path):
    out, info = demo_report
    assert info["path"] == str(out) and out.stat().st_size == info["bytes"]
    assert info["runs"] == 80 + 480 and info["tasks"] == 8 + 8  # live runs and the production log
    assert info["agents"] == ["support-bot-coherent", "support-bot-incoherent", "support-bot-prod"]
    assert set(info["sections"]) == {"verdict", "bias-variance", "clusters", "horizon", "goals", "drift"}
    assert set(info["sections"].values()) == {"included"}
    assert info["step_trees"] == {"shown": 500, "total": 560}
    db = out.with_name("demo.db")
    capped = tmp_path / "capped.html"
    proc = hotmess("report", "--db", str(db), "--out", str(capped), "--max-runs", "7")
    assert f"Wrote {capped}" in proc.stdout and "step trees of the first 7" in proc.stdout
    page = capped.read_text()
    assert page.count('<details class="run"') == 7 and "the first 7 of 560 runs are listed" in page


def test_report_errors_are_one_line(tmp_path, demo_report):
    out, _ = demo_report
    db = out.with_name("demo.db")
    from hotmess.store.database import connect

    connect(tmp_path / "empty.db").close()
    cases = {
        "no such database": ("report", "--db", str(tmp_path / "nope.db"), "--out", str(tmp_path / "a.html")),
        "no runs in": ("report", "--db", str(tmp_path / "empty.db"), "--out", str(tmp_path / "b.html")),
        "--outcome must be one of": ("report", "--db", str(db), "--outcome", "bogus"),
        "No such file or directory": ("report", "--db", str(db), "--out", str(tmp_path / "no" / "dir" / "r.html")),
    }
    for message, args in cases.items():
        proc = hotmess_here(*args, ok=False)
        assert proc.returncode == 1 and message in proc.stderr, (message, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a.html").exists() and not (tmp_path / "b.html").exists()
    usage = hotmess("report", "--max-runs", "-1", ok=False)
    assert usage.returncode == 2


# ---------------------------------------------------------------------------- in the browser


def _chromium_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for binary in ("chromium", "chromedriver"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (Debian: apt-get install chromium chromium-driver; `make test` does it)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _chromium_missing()
    if reason:
        if os.environ.get("CI"):  # CI installs chromium (make test): a missing browser is a failure there
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

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


def _open(browser, page: Path) -> None:
    browser.get_log("browser")  # drop what an earlier page logged
    browser.get(page.as_uri())


def _check_page(browser, page: Path, plots_expected: dict[str, str], shot: Path) -> None:
    _open(browser, page)
    svgs = browser.execute_script(
        """return Array.from(document.querySelectorAll('figure svg')).map(s => {
             const r = s.getBoundingClientRect();
             return {figure: s.parentElement.id, section: s.closest('section').id,
                     width: r.width, height: r.height,
                     visible: getComputedStyle(s).visibility === 'visible' && getComputedStyle(s).display !== 'none'};
           });"""
    )
    drawn = {s["figure"]: s for s in svgs}
    assert set(plots_expected) <= set(drawn), sorted(drawn)
    for figure, section in plots_expected.items():
        s = drawn[figure]
        assert s["section"] == section and s["visible"] and s["width"] > 100 and s["height"] > 50, s
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    browser.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 10_000
    # A run link lands on its step tree, which opens to show steps with tool arguments.
    anchor = browser.execute_script("return document.querySelector('table.runs a').getAttribute('href')")
    tree = browser.find_element("id", anchor[1:])
    tree.find_element("tag name", "summary").click()
    assert tree.get_attribute("open") is not None and tree.find_elements("css selector", "details")


def test_demo_report_in_chromium(browser, demo_report, tmp_path):
    out, info = demo_report
    # every section has its plot: tasks of 1 to 6 lookups, goals recorded, four production weeks
    expected = {**PLOTS, **{f"plot-{s}": s for s in ("horizon", "goals", "drift")}}
    _check_page(browser, out, expected, tmp_path / "demo.png")
    page = out.read_text()
    assert "not enough data" not in page
    drift = page[page.index('<section id="drift"'):page.index("</section>", page.index('<section id="drift"'))]
    assert "window 1w" in drift  # the automatic window: weeks
    # the prompt update at the start of week 2: one change point, flagged in its window's row
    assert drift.count('<b class="fail">behaviour changed</b> from') == 1
    assert drift.count("<b class=fail>behaviour changed</b>") == 1 and "mix changed" not in drift
    assert "issue_coupon" in drift
    assert "support-bot-coherent, support-bot-incoherent have all runs in one window" in drift


@needs_tau
def test_tau_bench_report_in_chromium(browser, tau_report, tmp_path):
    out, info = tau_report
    assert info["runs"] == 200 and info["tasks"] == 50
    expected = {**PLOTS, **{f"plot-{s}": s for s in ("horizon", "goals", "drift")}}
    _check_page(browser, out, expected, tmp_path / "tau.png")


def test_hostile_runs_are_shown_as_text_and_never_run(browser, hostile_report, tmp_path):
    _open(browser, hostile_report)
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.execute_script("return document.querySelectorAll('script, img').length") == 0
    for tree in browser.find_elements("css selector", "details"):
        browser.execute_script("arguments[0].open = true", tree)
    text = browser.find_element("tag name", "body").text
    assert PAYLOAD in text and HOSTILE_TASK in text
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    browser.save_screenshot(str(tmp_path / "hostile.png"))
    assert (tmp_path / "hostile.png").read_bytes().startswith(PNG)


def test_report_and_terminal_share_the_verdict_not_the_cli():
    """The HTML renderer takes the verdict and step trees from public modules, not the CLI's."""
    import subprocess
    import sys

    code = ("import sys, hotmess.report.html as h; h.verdict_text({'incoherence': {'value': 0.5}}); "
            "print(sorted(m for m in sys.modules if m.startswith('hotmess.cli')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
    from hotmess.cli.render import _verdict
    from hotmess.report.html import verdict_text

    for value, consistency, css, markup in (
        (0.2, 1.0, "coherent", "[green]coherent[/]: most error is bias, a systematic miss; "
                               "two failures of a task fail the same way 100% of the time"),
        (0.5, None, "mixed", "[yellow]mixed[/]: error splits between systematic misses and scatter"),
        (0.9, 0.25, "hotmess", "[red]a hot mess[/]: most error is variance, a different miss each time; "
                               "two failures of a task fail the same way 25% of the time"),
        (0.7, 0.8, "mixed", "[yellow]mixed[/]: most error is variance, yet failures repeat; two failures of a "
                            "task fail the same way 80% of the time; the variance is mostly runs switching "
                            "between success and the same miss"),
        (None, None, "", "incoherence undefined (no errors, or no reference to measure error against)"),
    ):
        result = {"incoherence": {"value": value}, "failure_consistency": consistency}
        assert _verdict(result) == markup
        assert verdict_text(result) == (css, re.sub(r"\[/?\w*\]", "", markup))


@needs_tau
def test_tau_bench_clusters_show_the_task_and_where_examples_differ(tmp_path):
    db = tmp_path / "tau.db"
    hotmess("import", "tau-bench", str(TAU), "--db", str(db))
    out = tmp_path / "tau.html"
    hotmess("report", "--db", str(db), "--outcome", "actions", "--out", str(out))
    page = out.read_text()
    # each task opens to its instruction and the reference actions
    assert page.count('<details class="task-context">') == 50
    assert "You are mia_li_3668" in page and "book_reservation" in page
    # task 0's three wrong bookings share their first 300 characters: the examples start where they differ
    result = hm.open(db).analyze(outcome="actions")
    examples = [c.example for c in result.tasks[0].clusters]
    assert len(set(examples)) == len(examples) >= 3
    assert all(e.startswith("…") and "payment_methods" in e for e in examples)


def test_differing_excerpts_cut_where_texts_differ():
    from hotmess.analyzers.examples import differing_excerpts

    shared = "x" * 300
    a, b = differing_excerpts([shared + "AAA" + "y" * 300, shared + "BBB"], width=60, context=10)
    assert a == "…" + "x" * 10 + "AAA" + "y" * 45 + "…" and b == "…" + "x" * 10 + "BBB"
    assert differing_excerpts(["short", "other"]) == ["short", "other"]
    assert differing_excerpts([None, "z" * 300])[0] is None
