"""``hotmess goals`` as a user runs it: a real process on real SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import TAU, hotmess, hotmess_here, needs_tau

from hotmess.integrations.taubench import parse_taubench
from hotmess.store.database import connect
from hotmess.store.writer import insert_runs


@pytest.fixture(scope="module")
def tau_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("tau") / "tau.db"
    if TAU.exists():
        hotmess("import", "tau-bench", str(TAU), "--db", str(db))
    return db


@needs_tau
def test_goals_json_has_the_documented_shape(tau_db):
    out = json.loads(hotmess("goals", "--db", str(tau_db), "--json").stdout)
    assert {"positions", "goal_drift"} <= set(out)
    assert out["align"] == "index" and out["method"] == "exact" and out["n_runs"] == 200
    first = out["positions"][0]
    assert {"position", "n_runs", "goal_clusters", "variance", "incoherence"} <= set(first)
    assert first["position"] == 0 and first["n_runs"] == 182
    assert isinstance(first["goal_clusters"], int) and isinstance(first["variance"], float)
    assert isinstance(first["incoherence"], float)
    assert [p["position"] for p in out["positions"]] == list(range(len(out["positions"])))
    assert any(p["incoherence"] is None for p in out["positions"])  # past every reference
    drift = out["goal_drift"]
    assert isinstance(drift["mean_slope"], float) and drift["runs"] > 100
    assert len(drift["drifting"]) == min(10, drift["n_drifting"])
    assert set(drift["drifting"][0]) == {"run_id", "task_id", "slope", "n_goals"}

    deciles = json.loads(
        hotmess("goals", "--db", str(tau_db), "--align", "progress", "--method", "text",
                "--skip-read-only", "--task", "3", "--limit", "0", "--json").stdout
    )
    assert [p["position"] for p in deciles["positions"]] == list(range(10))
    assert deciles["n_tasks"] == 1 and deciles["read_only_excluded"] is True
    assert deciles["goal_drift"]["drifting"] == []


@needs_tau
def test_goals_terminal_table_verdict_and_drifting_runs(tau_db):
    out = hotmess("goals", "--db", str(tau_db), "--limit", "3").stdout
    assert "position" in out and "variance" in out and "bias²" in out and "incoh." in out
    assert "Goals scatter as runs go on" in out
    assert "Goal drift from each run's first goal" in out and "top 3 drifting runs" in out
    deciles = hotmess("goals", "--db", str(tau_db), "--align", "progress").stdout
    assert "90–100%" in deciles


def test_goals_on_explicit_goal_records_without_reference(tmp_path):
    db = tmp_path / "demo.db"
    hotmess("demo", "--db", str(db), "--runs", "5", "--json")
    out = json.loads(hotmess("goals", "--db", str(db), "--task", "upgrade-5", "--json").stdout)
    # the demo records goal("understand: ...") and goal("act: <tool>") around its tool calls:
    # both count, so every run has at least 4 goals (a retry adds one)
    assert [p["n_runs"] for p in out["positions"]][:4] == [10, 10, 10, 10]
    assert out["positions"][0]["variance"] == 0.0
    assert all(p["incoherence"] is None for p in out["positions"])
    table = hotmess("goals", "--db", str(db), "--task", "upgrade-5").stdout
    assert "No reference goals" in table and "no run has 3 goals" not in table


def test_goals_errors_are_one_clear_line(tmp_path, tau_db):
    def error(*args: str) -> str:
        proc = hotmess_here("goals", *args, ok=False)
        assert proc.returncode == 1 and proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        return lines[0]

    assert "no such database" in error("--db", str(tmp_path / "missing.db"))
    empty = tmp_path / "empty.db"
    connect(empty).close()
    assert "no runs in" in error("--db", str(empty))
    assert "--align must be one of index, progress" in error("--db", str(empty), "--align", "steps")
    assert "--method must be exact or text" in error("--db", str(empty), "--method", "fuzzy")
    assert "embed" in error("--db", str(empty), "--method", "embedding")
    if TAU.exists():
        assert "no task 'nope'" in error("--db", str(tau_db), "--task", "nope")
        no_steps = tmp_path / "no-steps.db"
        batch = parse_taubench(TAU)
        conn = connect(no_steps)
        insert_runs(conn, batch.runs[:8], [], source="tau-bench", path=TAU)
        conn.close()
        assert "no goal-bearing steps" in error("--db", str(no_steps))
