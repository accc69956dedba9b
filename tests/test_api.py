"""The Python API has the CLI's verbs: every ``hotmess COMMAND --json`` is exactly the
``to_json()`` of the library call behind it, with the same defaults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_cli import TAU, hotmess

import hotmess as hm
from hotmess.results import SCHEMA_VERSION, to_json

GENAI = Path(__file__).parent / "data" / "otlp" / "genai.jsonl"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("api") / "demo.db"
    hotmess("demo", "--runs", "3", "--db", str(db), "--json")
    return db


def cli_json(*args: str) -> dict:
    return json.loads(hotmess(*args, "--json").stdout)


def test_analyze_by_agent_to_json_is_the_cli_json(demo):
    db = hm.open(demo)
    result = db.analyze(by="agent")
    assert result.to_json() == cli_json("analyze", "--by", "agent", "--db", str(demo))
    assert result.to_json()["schema_version"] == SCHEMA_VERSION
    coherent = result.groups["support-bot-coherent"].incoherence
    assert 0 <= coherent.value <= 1 and coherent.ci_low <= coherent.value <= coherent.ci_high
    assert db.analyze().to_json() == cli_json("analyze", "--db", str(demo))


@pytest.mark.parametrize(
    ("verb", "kwargs", "args"),
    [
        ("horizon", {}, ()),
        ("horizon", {"by": "agent", "length": "tool_calls"}, ("--by", "agent", "--length", "tool_calls")),
        ("goals", {}, ()),
        ("goals", {"align": "progress"}, ("--align", "progress")),
        ("drift", {"window": "20runs", "by": "agent"}, ("--window", "20runs", "--by", "agent")),
    ],
)
def test_every_analysis_verb_is_its_command(demo, verb, kwargs, args):
    with hm.open(demo) as db:
        expected = to_json(getattr(db, verb)(**kwargs))
    assert cli_json(verb, *args, "--db", str(demo)) == expected


def test_show_and_report_are_their_commands(demo, tmp_path):
    with hm.open(demo) as db:
        run_id = db.runs(agent="support-bot-coherent").to_records()[0]["run_id"]
        assert cli_json("show", run_id, "--db", str(demo)) == db.run(run_id).to_json()
        report = db.report(tmp_path / "api.html")
    from_cli = cli_json("report", "--db", str(demo), "--out", str(tmp_path / "cli.html"))
    assert {**from_cli, "path": None, "bytes": None} == {**report.to_json(), "path": None, "bytes": None}
    assert report.sections["drift"] == "included" or report.sections["drift"].startswith("not enough data")


def test_imports_are_their_commands(tmp_path):
    api_db, cli_db = tmp_path / "api.db", tmp_path / "cli.db"
    with hm.open(api_db, create=True) as db:
        imported = db.import_otlp(GENAI, task_attr="app.task")
    assert imported.to_json() == cli_json("import", "otlp", str(GENAI), "--db", str(cli_db), "--task-attr", "app.task")
    if TAU.exists():
        small = tmp_path / "tau.json"
        small.write_text(json.dumps(json.loads(TAU.read_text())[:8]))
        with hm.open(api_db) as db:
            tau = db.import_taubench(small)
        assert tau.to_json() == cli_json("import", "tau-bench", str(small), "--db", str(cli_db))


def test_a_failed_import_leaves_no_database_behind(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(hm.errors.HotmessError, match="empty.jsonl"), hm.open(tmp_path / "new.db", create=True) as db:
        db.import_otlp(empty)
    assert not (tmp_path / "new.db").exists()


def test_open_refuses_a_missing_database_and_takes_a_connection(demo, tmp_path):
    with pytest.raises(hm.errors.HotmessError, match="no such database"):
        hm.open(tmp_path / "missing.db")
    copy = tmp_path / "copy.db"
    shutil.copy(demo, copy)
    import sqlite3

    conn = sqlite3.connect(copy)
    assert len(hm.open(conn).runs()) == len(hm.open(demo).runs())
