"""``hotmess horizon`` and ``hotmess drift`` as a user runs them: a real process on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import TAU, hotmess, hotmess_here, needs_tau
from test_drift import production
from test_horizon import LONGEST, agent_runs

import hotmess as hm
from hotmess.analyzers.drift import drift
from hotmess.analyzers.horizon import horizon
from hotmess.results import SCHEMA_VERSION, to_json
from hotmess.store.database import connect
from hotmess.store.readers import read_runs
from hotmess.store.writer import insert_runs
from hotmess.tables import Table


def store(path: Path, runs: Table) -> Path:
    source = path.with_suffix(".source.txt")
    source.write_text("synthetic runs for the CLI tests\n")
    records = [{**r, "source": "test"} for r in runs.to_records()]
    conn = connect(path)
    assert insert_runs(conn, records, [], source="test", path=source).new == len(records)
    conn.close()
    return path


@pytest.fixture(scope="module")
def growing_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = agent_runs(lambda steps: steps / LONGEST, n_tasks=20, n_runs=20)
    return store(tmp_path_factory.mktemp("horizon") / "growing.db", runs)


@pytest.fixture(scope="module")
def switch_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return store(tmp_path_factory.mktemp("drift") / "switch.db", production(20, 60, switch_day=12))


def test_horizon_terminal_reads_the_curve(growing_db):
    out = hotmess("horizon", "--db", str(growing_db)).stdout
    assert "incoherence by run length (steps)" in out and "20 tasks, 400 runs" in out
    # 20 tasks: the failures' scatter shows in failure diversity before it shows in incoherence
    assert "failure diversity rises: +" in out and "failures scatter more on longer tasks" in out
    assert "within tasks (median split over 20 tasks, paired)" in out
    assert "failure diversity" in out and "95% CI" in out


def test_horizon_json_is_the_analyzer_result(growing_db):
    out = json.loads(hotmess("horizon", "--db", str(growing_db), "--groups", "4", "--json").stdout)
    conn = connect(growing_db, create=False)
    expected = to_json(horizon(read_runs(conn), groups=4))
    conn.close()
    assert out == expected and out["schema_version"] == SCHEMA_VERSION
    with hm.open(growing_db) as db:
        assert out == to_json(db.horizon(groups=4))
    assert [g["n_tasks"] for g in out["groups"]] == [5, 5, 5, 5]
    assert out["slope"] > 0.1 and set(out["median_split"]) >= {"short", "long"}
    tools = json.loads(hotmess("horizon", "--db", str(growing_db), "--length", "tool_calls", "--json").stdout)
    assert tools["length"] == "tool_calls" and tools["groups"][0]["length_mean"] < out["groups"][0]["length_mean"]


@needs_tau
def test_horizon_on_imported_tau_bench(tmp_path):
    db = tmp_path / "tau.db"
    hotmess("import", "tau-bench", str(TAU), "--db", str(db))
    out = json.loads(hotmess("horizon", "--db", str(db), "--outcome", "actions", "--json").stdout)
    assert sum(g["n_tasks"] for g in out["groups"]) == 50
    assert all(g["incoherence"] is not None for g in out["groups"])
    assert isinstance(out["slope"], float)
    counted = json.loads(hotmess("drift", "--db", str(db), "--window", "50runs", "--json").stdout)
    assert [w["n_runs"] for w in counted["windows"]] == [50, 50, 50, 50]


def test_drift_terminal_flags_the_switch(switch_db):
    out = hotmess("drift", "--db", str(switch_db)).stdout
    assert "windows of 1d" in out
    assert "behaviour changed from 2026-01-13T00:00:00Z, window 12" in out
    assert "success 0.7" in out and "→ 0.3" in out
    assert "new: new miss (5 tasks" in out and "gone: usual miss (5 tasks" in out
    assert "mix of tasks changed" not in out
    assert "within tasks" in out


def test_drift_json_is_the_analyzer_result(switch_db):
    out = json.loads(hotmess("drift", "--db", str(switch_db), "--json").stdout)
    conn = connect(switch_db, create=False)
    expected = to_json(drift(read_runs(conn)))
    conn.close()
    assert out == expected
    with hm.open(switch_db) as db:
        assert out == to_json(db.drift())
    assert [w["start"] for w in out["windows"] if w["changed"]] == ["2026-01-13T00:00:00Z"]
    assert [c["window"] for c in out["change_points"]] == [12] and out["mix_change_points"] == []
    grouped = json.loads(hotmess("drift", "--db", str(switch_db), "--window", "2d", "--by", "task",
                                 "--alpha", "0.1", "--json").stdout)
    assert grouped["by"] == "task" and len(grouped["groups"]) == 5 and grouped["alpha"] == 0.1


def test_errors_are_one_clear_line(tmp_path, switch_db):
    empty = tmp_path / "empty.db"
    connect(empty).close()
    cases = [
        (("horizon", "--db", str(tmp_path / "nope.db")), "no such database"),
        (("drift", "--db", str(tmp_path / "nope.db")), "no such database"),
        (("horizon", "--db", str(empty)), "no runs"),
        (("drift", "--db", str(empty)), "no runs"),
        (("horizon", "--db", str(switch_db), "--length", "seconds"), "--length must be one of steps, tool_calls, tokens"),
        (("horizon", "--db", str(switch_db), "--groups", "9"), "5 tasks with a known error"),
        (("drift", "--db", str(switch_db), "--window", "1x"), "--window: window must be a positive count and a unit"),
        (("drift", "--db", str(switch_db), "--alpha", "2"), "--alpha must be between 1e-6 and 0.5"),
        (("drift", "--db", str(switch_db), "--alpha", "0.9"), "--alpha must be between 1e-6 and 0.5"),
        (("drift", "--db", str(switch_db), "--by", "nope"), "by='nope' is neither a runs column"),
    ]
    for args, message in cases:
        proc = hotmess_here(*args, ok=False)
        assert proc.returncode == 1, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "nope.db").exists()
    usage = hotmess("drift", "--bogus", ok=False)
    assert usage.returncode == 2 and "bogus" in usage.stderr
    assert "Change points" in hotmess("drift", "--help").stdout
