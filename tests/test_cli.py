"""The hotmess command as a user runs it: its entry point, real files, terminal and JSON forms;
one real process per kind of output (test_the_console_script_in_a_real_process)."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

TAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-bench" / "gpt-4o-airline.json"
needs_tau = pytest.mark.skipif(not TAU.exists(), reason="the tau-bench file lives beside the repository, in ../shared/data/tau-bench (tau-bench's historical_trajectories/gpt-4o-airline.json, MIT)")


def hotmess_process(*args: str, ok: bool = True, columns: int = 120) -> subprocess.CompletedProcess:
    """``hotmess ARGS`` in a new interpreter, as a user's shell runs it."""
    proc = subprocess.run(
        [sys.executable, "-c", "from hotmess.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120,
        env={"COLUMNS": str(columns), "PATH": "/usr/bin:/bin"},
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def hotmess_here(*args: str, ok: bool = True, columns: int = 120) -> subprocess.CompletedProcess:
    """``hotmess ARGS`` through the console script's own entry point (``main``), in this process,
    on a terminal ``columns`` wide: the same parsing, calls, rendering and exit codes as a new
    interpreter, without paying for one per case (tests/test_cli.py::test_the_console_script_
    in_a_real_process keeps one real process per kind of output)."""
    import contextlib
    import io

    from hotmess.cli import main, render
    from hotmess.cli.app import _Options

    out, err, argv, code = io.StringIO(), io.StringIO(), sys.argv, 0
    widths = render.console._width, render.err_console._width
    flags = _Options.debug, _Options.quiet
    sys.argv = ["hotmess", *args]
    render.console.width = render.err_console.width = columns
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
        render.console._width, render.err_console._width = widths
        _Options.debug, _Options.quiet = flags
    proc = subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
    if ok:
        assert code == 0, proc.stderr
    return proc


hotmess = hotmess_here


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    out = hotmess("demo", "--db", str(db), "--json")
    return db, json.loads(out.stdout)


@pytest.fixture(scope="module")
def tau_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("tau") / "tau.db"
    if TAU.exists():
        hotmess("import", "tau-bench", str(TAU), "--db", str(db))
    return db


def test_demo_coherent_variant_is_clearly_less_incoherent(demo_db):
    db, out = demo_db
    assert out["runs"] == 320
    groups = out["analysis"]["groups"]
    coherent = groups["support-bot-coherent"]["incoherence"]
    incoherent = groups["support-bot-incoherent"]["incoherence"]
    assert coherent["ci_high"] < incoherent["ci_low"]
    assert groups["support-bot-coherent"]["failure_consistency"] == 1.0
    # two ways to be wrong on a one-lookup task, over a hundred on a six-lookup one
    assert groups["support-bot-incoherent"]["failure_consistency"] < 0.3
    variants = out["variants"]
    for agent in ("support-bot-coherent", "support-bot-incoherent"):
        assert all(t["runs"] == 20 for t in variants[agent].values())
    # same success on every task: only the failures differ
    assert variants["support-bot-coherent"] == variants["support-bot-incoherent"]
    assert sorted({t["lookups"] for t in variants["support-bot-coherent"].values()}) == [1, 2, 3, 4, 5, 6]


def test_demo_terminal_output_says_what_to_run_next(tmp_path):
    out = hotmess("demo", "--db", str(tmp_path / "d.db"), "--runs", "10").stdout
    assert "support-bot-coherent" in out and "incoherence" in out and "Next:" in out
    assert f"hotmess horizon --by agent --db {tmp_path / 'd.db'}" in out
    assert f"hotmess drift --window 1w --by agent --db {tmp_path / 'd.db'}" in out
    assert (tmp_path / "d-prod.jsonl").exists() and "prompt update on" in out
    # at 80 columns a command to run next is never cut across lines
    narrow = hotmess("demo", "--db", str(tmp_path / "e.db"), "--runs", "10", columns=80).stdout
    assert f"hotmess drift --window 1w --by agent --db {tmp_path / 'e.db'}" in narrow


def test_demo_horizon_rises_for_the_incoherent_agent_only(demo_db):
    db, _ = demo_db
    out = json.loads(hotmess("horizon", "--db", str(db), "--by", "agent", "--json").stdout)
    assert out["by"] == "agent"
    groups = out["groups"]
    assert set(groups) == {"support-bot-coherent", "support-bot-incoherent", "support-bot-prod"}
    incoherent, coherent = groups["support-bot-incoherent"], groups["support-bot-coherent"]
    # "rises" only where the slope's bootstrap interval lies above 0
    assert incoherent["trend"] == "rises" and incoherent["slope_ci"][0] > 0
    assert coherent["trend"] == "none" and coherent["slope_ci"][0] < 0 < coherent["slope_ci"][1]
    assert incoherent["diversity_trend"] == "rises"
    assert all(g["failure_diversity"] == 0 for g in coherent["groups"])  # it always fails the same way
    first, last = incoherent["groups"][0], incoherent["groups"][-1]
    assert last["length_mean"] > 2 * first["length_mean"] and last["incoherence"] > first["incoherence"] + 0.1
    # paired over tasks, the coherent agent's longer runs fail no more diversely (its incoherence
    # there moves with its success rate, p <= incoherence, which the ties of the split decide)
    split = coherent["median_split"]
    assert split["paired"] and split["diversity_trend"] == "none"
    assert split["failure_diversity_short"] == split["failure_diversity_long"] == 0
    shown = hotmess("horizon", "--db", str(db), "--by", "agent").stdout
    assert "agent support-bot-incoherent" in shown and "incoherence rises with length" in shown
    assert "failures scatter more on longer tasks" in shown
    assert "no clear trend of incoherence with length" in shown


def test_demo_production_log_drifts_at_the_prompt_update(demo_db):
    db, out = demo_db
    production = out["production"]
    assert production["runs"] == 480 and Path(production["file"]).exists()
    assert Path(production["file"]).name == "demo-prod.jsonl"
    drift = json.loads(hotmess("drift", "--db", str(db), "--window", "1w", "--by", "agent", "--json").stdout)
    windows = drift["groups"]["support-bot-prod"]["windows"]
    assert [w["start"] for w in windows][0] == production["from"] and len(windows) == 4
    assert [w["start"] for w in windows if w["changed"]] == [production["prompt_update"]]
    for agent in ("support-bot-coherent", "support-bot-incoherent"):  # traced live: one window
        assert len(drift["groups"][agent]["windows"]) == 1
    # the file is what `hotmess import otlp` reads: importing it again adds nothing
    again = json.loads(hotmess("import", "otlp", production["file"], "--db", str(db), "--json").stdout)
    assert again["runs"] == 480 and again["new"] == 0


def test_runs_and_show_terminal_and_json(demo_db):
    db, _ = demo_db
    runs = json.loads(hotmess("runs", "--db", str(db), "--json").stdout)["runs"]
    assert len(runs) == 320 + 480 and {r["status"] for r in runs} == {"ok"}
    assert {r["source"] for r in runs if r["agent"] == "support-bot-prod"} == {"otlp"}
    one_task = json.loads(hotmess("runs", "--db", str(db), "--task", "refund-1042", "--json").stdout)["runs"]
    assert len(one_task) == 40 and {r["task_id"] for r in one_task} == {"refund-1042"}
    table = hotmess("runs", "--db", str(db), "--limit", "5").stdout
    assert "5 of 800 runs shown" in table
    short = json.loads(hotmess("runs", "--db", str(db), "--task", "upgrade-5", "--json").stdout)["runs"]
    run_id = next(r["run_id"] for r in short if r["n_steps"] == 4)  # one lookup, no retry
    shown = json.loads(hotmess("show", run_id[:10], "--db", str(db), "--json").stdout)
    assert shown["run"]["run_id"] == run_id
    kinds = [s["kind"] for s in shown["steps"]]
    assert kinds == ["goal", "llm", "tool", "goal", "llm", "tool"]
    tree = hotmess("show", run_id, "--db", str(db)).stdout
    assert "goal" in tree and "execute_tool" in tree and "outcome" in tree


def test_runs_at_80_columns_tell_the_agents_and_outcomes_apart(demo_db):
    db, _ = demo_db
    lines = hotmess("runs", "--db", str(db), "--limit", "0", columns=80).stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    body = "\n".join(lines)
    # the three agents share "support-bot-": that part gives way, not what tells them apart
    assert "…coherent" in body and "…incoherent" in body and "…prod" in body
    assert "action=" in body and "None" not in body
    alone = hotmess("runs", "--db", str(db), "--agent", "support-bot-coherent", "--limit", "3", columns=80).stdout
    assert "support-bot-coherent" in alone and "…" not in alone.splitlines()[0]


def test_analyze_at_80_columns_keeps_task_ids_whole(demo_db):
    db, _ = demo_db
    out = hotmess("analyze", "--db", str(db), columns=80).stdout
    tasks = json.loads(hotmess("analyze", "--db", str(db), "--json").stdout)["tasks"]
    per_task = out[out.index("per task"):].splitlines()
    assert max(len(line) for line in per_task) <= 80
    for t in tasks:  # every id whole at the start of its row (the figures give way)
        assert any(line.startswith(t["task_id"] + " ") for line in per_task), t["task_id"]


def test_drift_in_one_window_points_to_a_count_window(demo_db):
    db, _ = demo_db
    out = hotmess("drift", "--db", str(db), "--window", "1w", "--by", "agent", columns=80).stdout
    assert "--window 16runs makes 10 of these" in " ".join(out.split())
    counted = hotmess("drift", "--db", str(db), "--window", "40runs", "--by", "agent", columns=80).stdout
    header = next(line for line in counted.splitlines() if line.startswith("#"))
    assert header.split()[:3] == ["#", "runs", "#"] and len(header) <= 80


def test_analyze_json_has_the_documented_shape(demo_db):
    db, _ = demo_db
    out = json.loads(hotmess("analyze", "--db", str(db), "--json").stdout)
    for key in ("n_tasks", "n_runs", "success_rate", "pass_hat_k", "pass_at_k", "bias", "variance",
                "error", "incoherence", "failure_consistency", "tasks"):
        assert key in out
    assert out["n_tasks"] == 8 + 8 and out["n_runs"] == 320 + 480  # the live tasks and production's request kinds
    assert set(out["incoherence"]) >= {"value", "ci_low", "ci_high", "method"}
    assert out["incoherence"]["method"] == "brier"
    task = out["tasks"][0]
    assert set(task) >= {"task_id", "n", "successes", "bias", "variance", "error", "incoherence",
                         "outcome_clusters", "failure_consistency"}
    assert math.isclose(task["bias"] + task["variance"], task["error"], abs_tol=1e-9)
    grouped = json.loads(hotmess("analyze", "--db", str(db), "--by", "agent", "--json").stdout)
    assert set(grouped["groups"]) == {"support-bot-coherent", "support-bot-incoherent", "support-bot-prod"}
    assert len(grouped["differences"]) == 3


@needs_tau
def test_tau_bench_import_is_idempotent_and_analyzes(tau_db):
    again = json.loads(hotmess("import", "tau-bench", str(TAU), "--db", str(tau_db), "--json").stdout)
    assert again["new"] == 0 and again["already_stored"] == 200
    conn = sqlite3.connect(tau_db)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 200
    records = json.loads(TAU.read_text())
    out = json.loads(hotmess("analyze", "--db", str(tau_db), "--outcome", "actions", "--json").stdout)
    assert out["n_tasks"] == 50 and out["n_runs"] == 200
    # pass^k straight from the file's rewards
    by_task: dict[int, list[float]] = {}
    for r in records:
        by_task.setdefault(r["task_id"], []).append(r["reward"])
    for k in (1, 2, 3, 4):
        direct = sum(math.comb(sum(v == 1.0 for v in rs), k) / math.comb(len(rs), k) for rs in by_task.values()) / len(by_task)
        assert math.isclose(out["pass_hat_k"][str(k)], direct, rel_tol=1e-12)
    assert math.isclose(out["success_rate"], sum(r["reward"] == 1.0 for r in records) / 200)
    inc = out["incoherence"]
    assert 0 <= inc["ci_low"] <= inc["value"] <= inc["ci_high"] <= 1
    checks = json.loads(hotmess("analyze", "--db", str(tau_db), "--decomposition", "checks", "--json").stdout)
    assert checks["incoherence"]["method"] == "checks"
    assert 0 < checks["n_tasks"] <= 50


@needs_tau
def test_malformed_import_names_file_and_record_and_keeps_the_database(tau_db, tmp_path):
    bad = tmp_path / "bad.json"
    records = json.loads(TAU.read_text())[:3]
    del records[2]["traj"]
    bad.write_text(json.dumps(records))
    before = sqlite3.connect(tau_db).execute("SELECT count(*) FROM runs").fetchone()[0]
    proc = hotmess("import", "tau-bench", str(bad), "--db", str(tau_db), ok=False)
    assert proc.returncode == 1
    assert "bad.json" in proc.stderr and "record 2" in proc.stderr and "traj" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sqlite3.connect(tau_db).execute("SELECT count(*) FROM runs").fetchone()[0] == before


def test_errors_are_one_clear_line(tmp_path, demo_db):
    db, _ = demo_db
    missing = hotmess("runs", "--db", str(tmp_path / "nope.db"), ok=False)
    assert missing.returncode == 1 and "no such database" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
    empty = tmp_path / "empty.db"
    hotmess("import", "tau-bench", "--help")
    from hotmess.store.database import connect

    connect(empty).close()
    assert "No runs" in hotmess("runs", "--db", str(empty)).stdout
    no_runs = hotmess("analyze", "--db", str(empty), ok=False)
    assert no_runs.returncode == 1 and "no runs" in no_runs.stderr
    unknown_run = hotmess("show", "ffffffff", "--db", str(db), ok=False)
    assert unknown_run.returncode == 1 and "no run 'ffffffff'" in unknown_run.stderr
    unknown_task = hotmess("runs", "--db", str(db), "--task", "nope", ok=False)
    assert unknown_task.returncode == 1 and "no runs for task 'nope'" in unknown_task.stderr
    wrong = hotmess("analyze", "--db", str(db), "--outcome", "bogus", ok=False)
    assert wrong.returncode == 1 and "--outcome must be one of" in wrong.stderr
    usage = hotmess("runs", "--bogus", ok=False)
    assert usage.returncode == 2 and "bogus" in usage.stderr
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)")
    refused = hotmess("runs", "--db", str(foreign), ok=False)
    assert refused.returncode == 1 and "not a hotmess" in refused.stderr
    for proc in (missing, no_runs, unknown_run, unknown_task, wrong, refused):
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_global_flags_are_accepted_after_the_command(demo_db, tmp_path):
    db, _ = demo_db
    after = hotmess("runs", "--db", str(db), "--limit", "3", "-q")
    assert after.stdout == hotmess("-q", "runs", "--db", str(db), "--limit", "3").stdout
    assert hotmess("analyze", "--db", str(db), "--quiet", "--json").returncode == 0
    # --debug after the command shows the traceback of an unexpected error as before the command
    missing = hotmess("runs", "--db", str(tmp_path / "nope.db"), "--debug", ok=False)
    assert missing.returncode == 1 and "Traceback" in missing.stderr


def test_the_console_script_in_a_real_process(demo_db, tmp_path):
    """The installed ``hotmess`` script in a new process gives what the in-process runs give:
    the JSON, the table at the shell's width, and a one-line error with exit code 1."""
    db, _ = demo_db
    script = Path(sys.executable).with_name("hotmess")
    command = [str(script)] if script.exists() else [sys.executable, "-c", "from hotmess.cli import main; main()"]
    env = {"COLUMNS": "80", "PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, env=env)  # noqa: E731
    analysis = run("analyze", "--db", str(db), "--json")
    assert analysis.returncode == 0, analysis.stderr
    assert json.loads(analysis.stdout) == json.loads(hotmess("analyze", "--db", str(db), "--json").stdout)
    table = run("runs", "--db", str(db), "--limit", "5")
    assert table.stdout == hotmess("runs", "--db", str(db), "--limit", "5", columns=80).stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    missing = run("runs", "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert missing.stderr == hotmess("runs", "--db", str(tmp_path / "nope.db"), ok=False).stderr


def test_global_flags_first_moves_only_the_app_flags():
    from hotmess.cli.app import global_flags_first

    assert global_flags_first(["import", "otlp", "f.jsonl", "-q"]) == ["-q", "import", "otlp", "f.jsonl"]
    assert global_flags_first(["runs", "--debug", "--", "-q"]) == ["--debug", "runs", "--", "-q"]


def test_analyze_on_several_agents_says_they_are_pooled_and_how_to_split_them(demo_db):
    db, _ = demo_db
    out = hotmess("analyze", "--db", str(db)).stdout
    assert "3 agents in this database" in out and "hotmess analyze --by agent" in out
    split = hotmess("analyze", "--db", str(db), "--by", "agent").stdout
    assert "agents in this database" not in split and "paired over" in split
    assert "failure diversity" in out and "pass^1 (mean over tasks)" in out
    assert "None" not in out
