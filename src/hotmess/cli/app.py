"""``hotmess``: the command line. Each command reads, analyzes, then renders; nothing else."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.errors import HotmessError
from hotmess.store.database import connect, default_path
from hotmess.store.readers import find_run, read_for_analysis, read_runs, read_steps
from hotmess.store.writer import insert_runs

app = typer.Typer(
    name="hotmess",
    help="Log multi-step agent runs and measure how self-consistent their failures are.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
import_app = typer.Typer(help="Import runs from benchmark result files and production logs.", no_args_is_help=True)
app.add_typer(import_app, name="import")


class _Options:
    debug = False
    quiet = False


DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="SQLite database (default: $HOTMESS_DB or ./hotmess.db).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    _Options.debug = debug
    _Options.quiet = quiet


def _db_path(db: Path | None) -> str:
    return str(db) if db is not None else default_path()


def _open(db: Path | None) -> sqlite3.Connection:
    return connect(_db_path(db), create=False)


def show_progress() -> bool:
    return not _Options.quiet and sys.stderr.isatty()


@app.command("runs")
def runs_command(
    db: DbOption = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task's runs.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's runs.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Rows to show (default 100 in the terminal, all with --json; 0 = all).")] = None,
    as_json: JsonOption = False,
) -> None:
    """List recorded runs: task, agent, status, success, steps, duration, outcome."""
    conn = _open(db)
    table = read_runs(conn, task_id=task, agent=agent)
    rows = table.to_records()
    if task is not None and not rows:
        raise HotmessError(f"no runs for task {task!r} in {_db_path(db)} (`hotmess runs` lists the tasks)")
    total = len(rows)
    if limit is None:
        limit = 0 if as_json else 100
    if limit:
        rows = rows[:limit]
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        render.console.print(f"No runs in {_db_path(db)} yet. Trace an agent with @hotmess.trace, or `hotmess demo`.")
        return
    tasks = len(set(table["task_id"]))
    render.console.print(render.runs_table(rows, total, f"{total} runs of {tasks} tasks in {_db_path(db)}"))


@app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run's steps as a tree: goals, tool calls with arguments, errors, timings."""
    conn = _open(db)
    full = find_run(conn, run_id)
    if full is None:
        raise HotmessError(f"no run {run_id!r} in {_db_path(db)} (or the prefix is ambiguous); `hotmess runs` lists them")
    run = read_runs(conn, run_ids=[full]).to_records()[0]
    steps = read_steps(conn, run_ids=[full]).to_records()
    if as_json:
        render.print_json({"run": run, "steps": render.step_forest(steps)})
        return
    render.console.print(render.run_tree(run, steps))


@app.command("demo")
def demo_command(
    db: Annotated[Path, typer.Option("--db", help="Where to store the demo's runs.")] = Path("hotmess-demo.db"),
    runs_per_task: Annotated[int, typer.Option("--runs", min=2, help="Runs per task and variant.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the agents' stochastic policy.")] = 7,
    as_json: JsonOption = False,
) -> None:
    """Run a built-in tool-using agent in two variants (coherent and incoherent failures)."""
    import hotmess
    from hotmess import demo

    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{db}{suffix}")
    hotmess.configure(db=db)
    total = len(demo.TASKS) * len(demo.AGENTS) * runs_per_task
    started = time.perf_counter()
    with _progress("running the demo agents", total) as advance:
        summary = demo.run_demo(runs_per_task=runs_per_task, seed=seed, progress=advance)
    hotmess.shutdown()
    elapsed = time.perf_counter() - started
    from hotmess.analyzers import analyze

    runs, _ = _load_for_analysis(db, "exact", "brier")
    verdict = analyze(runs, outcome="exact", decomposition="brier", by="agent").to_dict()
    if as_json:
        render.print_json({"db": str(db), "runs": total, "variants": summary, "analysis": verdict})
        return
    render.print_demo(summary, str(db), total, elapsed)
    render.print_analysis(verdict, str(db))
    render.console.print(
        "\nNext:\n"
        f"  hotmess analyze --db {db} --by agent      the same verdict, as a table (--json for scripts)\n"
        f"  hotmess analyze --db {db}                 both variants together, per task\n"
        f"  hotmess runs --db {db} --task refund-1042\n"
        f"  hotmess show --db {db} RUN_ID             one run's steps as a tree"
    )


@contextlib.contextmanager
def _progress(description: str, total: int | None):
    """A rich progress bar on stderr when it is a terminal; a no-op otherwise."""
    if not show_progress():
        yield lambda n=1: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=render.err_console, transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def main() -> None:
    try:
        app(standalone_mode=False)
    except HotmessError as exc:
        _fail(str(exc), exc)
    except sqlite3.DatabaseError as exc:
        _fail(f"database error: {exc}", exc)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        _fail(f"{exc.filename}: {exc.strerror}", exc)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        render.err_console.print("aborted")
        sys.exit(1)
    except Exception as exc:
        # Usage errors (click's, or the copy typer carries) show themselves with exit code 2.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        _fail(f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the traceback; please report it)", exc)


def _fail(message: str, exc: BaseException) -> None:
    if _Options.debug:
        import traceback

        traceback.print_exception(exc)
    render.err_console.print(f"[red]hotmess: error:[/] {render.escape(message)}")
    sys.exit(1)



@import_app.command("tau-bench")
def import_taubench_command(
    file: Annotated[Path, typer.Argument(help="A tau-bench results file (JSON list of task/trial records).")],
    db: DbOption = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Agent name for these runs (default: the file's name).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Import a tau-bench results file: one run per task trial, steps from its messages."""
    from hotmess.integrations.taubench import parse_taubench

    if not file.exists():
        raise HotmessError(f"{file}: no such file")
    batch = parse_taubench(file, agent=agent)
    conn = connect(_db_path(db))
    result = insert_runs(conn, batch.runs, batch.steps, source="tau-bench", path=file)
    if as_json:
        render.print_json({**result.to_dict(), "flagged": batch.flagged})
        return
    render.print_import(result, _db_path(db), flagged=batch.flagged)


def _load_for_analysis(db: Path | None, outcome: str, decomposition: str, task: str | None = None):
    needs_steps = outcome == "actions" or decomposition == "checks"
    runs, steps = read_for_analysis(_open(db), task_id=task, with_steps=needs_steps)
    if len(runs) == 0:
        raise HotmessError(
            f"no runs in {_db_path(db)}" + (f" for task {task!r}" if task else "")
            + " (record some with @hotmess.trace, `hotmess import`, or `hotmess demo`)"
        )
    return runs, steps


@app.command("analyze")
def analyze_command(
    db: DbOption = None,
    outcome: Annotated[str, typer.Option("--outcome", help="How outcomes are compared: exact, actions, text, embedding.")] = "exact",
    decomposition: Annotated[str, typer.Option("--decomposition", help="brier (outcome clusters), checks, kl, mse.")] = "brier",
    by: Annotated[str | None, typer.Option("--by", help="Compare groups: a runs column (agent) or a run attribute (gen_ai.request.model).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    correction: Annotated[bool, typer.Option("--correction", help="Finite-sample n/(n-1) correction of variance.")] = False,
    n_boot: Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples for the interval.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Bias, variance and incoherence (with a bootstrap interval), failure consistency, pass^k."""
    from hotmess.analyzers import DECOMPOSITIONS, OUTCOME_METHODS, analyze

    if outcome not in OUTCOME_METHODS:
        raise HotmessError(f"--outcome must be one of {', '.join(OUTCOME_METHODS)}, not {outcome!r}")
    if decomposition not in DECOMPOSITIONS:
        raise HotmessError(f"--decomposition must be one of {', '.join(DECOMPOSITIONS)}, not {decomposition!r}")
    if outcome == "embedding":
        raise HotmessError(
            "--outcome embedding needs an embedding function: use hotmess.analyzers.analyze(..., "
            "outcome='embedding', embed=fn) from Python (sentence_transformer_embedder for a local model)"
        )
    runs, steps = _load_for_analysis(db, outcome, decomposition, task)
    result = analyze(runs, steps, outcome=outcome, decomposition=decomposition, by=by,
                     correction=correction, n_boot=n_boot, seed=seed)
    if as_json:
        render.print_json(result.to_dict())
        return
    render.print_analysis(result.to_dict(), _db_path(db))
