"""Every command's terminal and JSON forms and its errors, beyond what test_cli.py covers.

The error matrix runs ``hotmess.cli.main`` in this process (the console script's own entry point,
argv and exit status included) so that seven commands × three databases stay fast; the terminal
checks that need a real terminal (progress bars) run the command in a pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from test_cli import TAU, hotmess

from hotmess.cli import app, main, render
from hotmess.store.database import connect

#: The commands that read a database, with the arguments they need besides --db.
READERS = {
    "runs": (), "show": ("0123abcd",), "analyze": (), "report": (), "horizon": (), "goals": (), "drift": (),
}


def run(capsys: pytest.CaptureFixture, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """``hotmess ARGS`` as the console script runs it, in this process: (exit status, stdout, stderr)."""
    argv = sys.argv
    cwd = os.getcwd()
    sys.argv = ["hotmess", *args]
    os.chdir(tmp_path)  # report's default --out lands here, never in the repository
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    """Tables as wide as a real terminal's (the console was made at import, 80 columns off a tty)."""
    monkeypatch.setattr(render.console, "width", 160)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("commands") / "demo.db"
    hotmess("demo", "--runs", "3", "--db", str(db), "--json")
    return db


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.db"
    connect(path).close()
    return path


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("hotmess: error:"), err
    for needle in needles:
        assert needle in err, (needle, err)


def test_every_command_has_json_and_help():
    command = typer.main.get_command(app)
    leaves = []
    for name, sub in command.commands.items():
        if hasattr(sub, "commands"):  # a group (typer carries its own copy of click: no isinstance)
            leaves += [(f"{name} {n}", c) for n, c in sub.commands.items()]
        else:
            leaves.append((name, sub))
    assert {"runs", "show", "analyze", "report", "demo", "import tau-bench"} <= {n for n, _ in leaves}
    for name, sub in leaves:
        options = {opt for p in sub.params for opt in getattr(p, "opts", [])}
        assert "--json" in options, f"hotmess {name} has no --json"
        assert sub.get_short_help_str(limit=200), f"hotmess {name} has no help"


def test_missing_and_empty_databases_are_one_line_for_every_reader(capsys, tmp_path, empty):
    for name, extra in READERS.items():
        code, out, err = run(capsys, tmp_path, name, *extra, "--db", str(tmp_path / "nope.db"))
        _one_line_error(code, err, "nope.db", "no such database")
        assert out == ""
        code, out, err = run(capsys, tmp_path, name, *extra, "--db", str(empty))
        if name == "runs":  # listing nothing is not an error
            assert code == 0 and "No runs in" in out
        elif name == "show":
            _one_line_error(code, err, "no run '0123abcd'")
        else:
            _one_line_error(code, err, "no runs in", "hotmess demo")
    assert not (tmp_path / "nope.db").exists()
    code, out, _ = run(capsys, tmp_path, "runs", "--db", str(empty), "--json")
    assert code == 0 and json.loads(out)["runs"] == [] and json.loads(out)["schema_version"] == 1


def test_unknown_task_and_run(capsys, tmp_path, demo):
    code, _, err = run(capsys, tmp_path, "analyze", "--db", str(demo), "--task", "nope")
    _one_line_error(code, err, "no runs in", "for task 'nope'")
    code, _, err = run(capsys, tmp_path, "show", "zz", "--db", str(demo), "--json")
    _one_line_error(code, err, "no run 'zz'")
    code, out, _ = run(capsys, tmp_path, "analyze", "--db", str(demo), "--task", "refund-1042", "--json")
    assert code == 0 and json.loads(out)["n_tasks"] == 1


def test_wrong_options(capsys, tmp_path, demo):
    for args, needle in (
        (("analyze", "--decomposition", "bogus"), "--decomposition must be one of"),
        (("analyze", "--outcome", "embedding"), "embedding function"),
        (("report", "--outcome", "embedding"), "--outcome must be one of exact, actions, text"),
        (("report", "--decomposition", "nope"), "--decomposition must be one of"),
    ):
        code, _, err = run(capsys, tmp_path, *args, "--db", str(demo))
        _one_line_error(code, err, needle)
    for args in (("runs", "--limit", "many"), ("analyze", "--n-boot", "5"), ("report", "--bogus"), ("nonsense",)):
        code, _, err = run(capsys, tmp_path, *args, "--db", str(demo))
        assert code == 2 and "Traceback" not in err, (args, err)
    assert not list(tmp_path.glob("*.html"))


def test_debug_shows_the_traceback(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path, "--debug", "analyze", "--db", str(tmp_path / "nope.db"))
    assert code == 1 and "Traceback" in err and "no such database" in err


def test_analyze_terminal_reads_as_a_verdict(capsys, tmp_path, demo):
    code, out, err = run(capsys, tmp_path, "analyze", "--db", str(demo))
    assert code == 0
    assert "incoherence [95% CI]" in out and "per task" in out and "refund-1042" in out
    assert any(word in out for word in ("coherent", "mixed", "a hot mess"))
    assert "tasks in incoherence" in err  # few tasks: the warning goes to stderr, not into the table
    code, out, _ = run(capsys, tmp_path, "analyze", "--db", str(demo), "--by", "agent")
    assert code == 0
    assert "support-bot-coherent" in out and "support-bot-incoherent" in out
    assert "incoherence support-bot-coherent − support-bot-incoherent" in out
    code, _, err = run(capsys, tmp_path, "analyze", "--db", str(demo), "--by", "nope")
    assert code == 1 and f"hotmess: error: {demo}: by='nope' is neither a runs column" in err
    assert "unexpected error" not in err and len(err.strip().splitlines()) == 1


def test_runs_and_show_terminal(capsys, tmp_path, demo):
    code, out, _ = run(capsys, tmp_path, "runs", "--db", str(demo), "--agent", "support-bot-coherent")
    assert code == 0 and "24 runs of 8 tasks" in out and "agent support-bot-coherent" in out
    code, out, _ = run(capsys, tmp_path, "runs", "--db", str(demo), "--agent", "support-bot-coherent",
                       "--json", "--limit", "2")
    listed = json.loads(out)
    first = listed["runs"][0]
    assert code == 0 and len(listed["runs"]) == 2 and listed["total"] == 24
    code, out, _ = run(capsys, tmp_path, "show", first["run_id"][:8], "--db", str(demo))
    assert code == 0 and first["run_id"] in out and "goal" in out and "outcome" in out


def test_report_terminal_and_default_path(capsys, tmp_path, demo):
    code, out, err = run(capsys, tmp_path, "report", "--db", str(demo))
    # the 48 live runs and the 480 of the production log, its 8 request kinds as tasks
    assert code == 0 and out.startswith("Wrote report.html: 528 runs, 16 tasks (step trees of the first 500)")
    assert (tmp_path / "report.html").stat().st_size > 10_000
    assert err == ""  # every section has something to show: drift from the production weeks


def _in_a_terminal(*args: str, stdout: Path | None = None) -> str:
    """Run ``hotmess ARGS`` with stdout and stderr on a pseudo-terminal; everything it wrote.
    With ``stdout``, standard output goes to that file instead and only stderr is returned."""
    leader, follower = pty.openpty()
    out = open(stdout, "wb") if stdout is not None else None  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from hotmess.cli import main; main()", *args],
        stdin=subprocess.DEVNULL, stdout=follower if out is None else out, stderr=follower, close_fds=True,
        env={"PATH": "/usr/bin:/bin", "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(follower)
    if out is not None:
        out.close()
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_progress_bars_only_in_a_terminal_and_not_with_quiet(tmp_path):
    shown = _in_a_terminal("demo", "--runs", "2", "--db", str(tmp_path / "a.db"))
    assert "running the demo agents" in shown
    quiet = _in_a_terminal("--quiet", "demo", "--runs", "2", "--db", str(tmp_path / "b.db"))
    assert "running the demo agents" not in quiet and "support-bot-coherent" in quiet
    piped = hotmess("demo", "--runs", "2", "--db", str(tmp_path / "c.db"))
    assert "running the demo agents" not in piped.stderr + piped.stdout
    report = _in_a_terminal("report", "--db", str(tmp_path / "a.db"), "--out", str(tmp_path / "a.html"))
    assert "building the report" in report and "Wrote" in report


OTLP = Path(__file__).parent / "data" / "otlp" / "genai.jsonl"

#: Commands with a progress bar: (arguments besides --db, the bar's label, the unit it counts last).
BARS = {
    "import otlp": (("import", "otlp", str(OTLP)), "importing genai.jsonl", "spans stored"),
    "analyze": (("analyze",), "analyze", "analyzing"),
    "goals": (("goals",), "goals", "analyzing"),
    "horizon": (("horizon",), "horizon", "analyzing"),
    "drift": (("drift", "--window", "20runs"), "drift", "windows"),
}
if TAU.exists():
    BARS["import tau-bench"] = (("import", "tau-bench", str(TAU)), "importing gpt-4o-airline.json", "steps stored")


@pytest.mark.parametrize("name", list(BARS))
def test_imports_and_analyses_show_a_bar_only_in_a_terminal(capsys, tmp_path, demo, name):
    """A bar on stderr in a terminal (stdout stays clean JSON); none when piped. (--quiet, one
    flag for every command, is test_progress_bars_only_in_a_terminal_and_not_with_quiet's.)"""
    args, label, unit = BARS[name]
    importing = name.startswith("import")
    out = tmp_path / "out.json"
    shown = _in_a_terminal(*args, "--db", str(tmp_path / "a.db" if importing else demo), "--json", stdout=out)
    assert label in shown and unit in shown and "━" in shown, shown
    json.loads(out.read_text())
    code, _, piped = run(capsys, tmp_path, *args, "--db", str(tmp_path / "c.db" if importing else demo))
    assert code == 0 and unit not in piped and "━" not in piped, piped


def test_import_suggests_the_analysis_that_fits_what_was_imported(capsys, tmp_path):
    from hotmess.cli.imports import next_steps

    if TAU.exists():
        code, out, _ = run(capsys, tmp_path, "import", "tau-bench", str(TAU), "--db", str(tmp_path / "t.db"))
        assert code == 0 and "Next: hotmess analyze --outcome actions" in out and "reference actions" in out
    # production logs without a reference or success: final answers as text, variance only; drift over time
    code, out, _ = run(capsys, tmp_path, "import", "otlp", str(OTLP.parent / "openinference.jsonl"),
                       "--db", str(tmp_path / "o.db"))
    text = " ".join(out.split())  # as read, whatever the terminal's width
    assert code == 0 and "Next: hotmess analyze --outcome text" in text and "only variance" in text
    assert text.index("--outcome text") < text.index("--outcome actions") < text.index("hotmess drift --window 1d")
    # a recorded success makes error defined
    assert next_steps([{"success": 1.0, "n_tool_calls": 2}], production=True)[0] == (
        "analyze --outcome text",
        "final answers clustered as text; bias and variance against the reference or the recorded success")
    assert [a for a, _ in next_steps([{"reference": '"42"', "n_tool_calls": 0}])] == ["analyze"]
    actions = '[{"name": "book", "kwargs": {"id": 1}}]'
    assert [a for a, _ in next_steps([{"reference": actions}], production=True)] == [
        "analyze --outcome actions", "drift --window 1d"]


@pytest.mark.skipif(not TAU.exists(), reason="the tau-bench file lives beside the repository, in ../shared/data/tau-bench (tau-bench's historical_trajectories/gpt-4o-airline.json, MIT)")
def test_markup_in_imported_ids_is_printed_as_text(capsys, tmp_path):
    records = json.loads(TAU.read_text(encoding="utf-8"))
    ungraded = next(r for r in records if r["info"]["reward_info"] is None)
    ungraded["task_id"] = "x[/]y[bold]"
    path = tmp_path / "markup.json"
    path.write_text(json.dumps([ungraded]))
    code, out, err = run(capsys, tmp_path, "import", "tau-bench", str(path), "--db", str(tmp_path / "m.db"))
    assert code == 0, err
    assert "task x[/]y[bold] trial" in " ".join(out.split())
    code, out, err = run(capsys, tmp_path, "runs", "--db", str(tmp_path / "m.db"))
    assert code == 0 and "x[/]y[bold]" in out


def test_negative_limits_are_refused_by_name(capsys, tmp_path, demo):
    code, _, err = run(capsys, tmp_path, "runs", "--db", str(demo), "--limit", "-5")
    assert code == 2 and "--limit" in err


def test_analyze_by_task_is_accepted_as_drift_and_horizon_accept_it(capsys, tmp_path, demo):
    code, out, err = run(capsys, tmp_path, "analyze", "--db", str(demo), "--by", "task", "--json")
    assert code == 0, err
    groups = json.loads(out)["groups"]
    code, listed, _ = run(capsys, tmp_path, "runs", "--db", str(demo), "--json", "--limit", "0")
    assert set(groups) == {r["task_id"] for r in json.loads(listed)["runs"]}
    code, out, _ = run(capsys, tmp_path, "analyze", "--db", str(demo), "--by", "task")
    assert code == 0 and out.count("\n") < 200  # a row per task, not a column each


def test_a_bug_in_an_analyzer_is_reported_as_one_not_as_bad_input(capsys, tmp_path, demo, monkeypatch):
    """Bad input is an AnalysisError (one line naming the database); any other exception out of
    an analyzer is a bug and says so."""
    import hotmess.analyzers

    def broken(*args, **kwargs):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(hotmess.analyzers, "analyze", broken)
    code, _, err = run(capsys, tmp_path, "analyze", "--db", str(demo))
    assert code == 1 and "unexpected error: ValueError: an internal invariant broke" in err
    assert "please report it" in err
    monkeypatch.undo()
    code, _, err = run(capsys, tmp_path, "drift", "--db", str(demo), "--window", "99999999999999999999d")
    assert code == 1 and "--window: window '99999999999999999999d' is too long" in err
