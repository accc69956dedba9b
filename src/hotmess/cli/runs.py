"""``hotmess runs`` and ``hotmess show``: what was recorded."""

from __future__ import annotations

from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import (
    DbOption,
    JsonOption,
    app,
    db_path,
    open_db,
)
from hotmess.errors import HotmessError
from hotmess.store.readers import DERIVED_RUN_COLUMNS, find_run, read_runs, read_steps
from hotmess.tables import RUN_COLUMNS, step_forest


@app.command("runs")
def runs_command(
    db: DbOption = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task's runs.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's runs.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Rows to show (default 100 in the terminal, all with --json; 0 = all).")] = None,
    as_json: JsonOption = False,
) -> None:
    """List recorded runs: task, agent, status, success, steps, duration, outcome."""
    conn = open_db(db)
    table = read_runs(conn, task_id=task, agent=agent, columns=[*RUN_COLUMNS, *DERIVED_RUN_COLUMNS])
    rows = table.to_records()
    if task is not None and not rows:
        raise HotmessError(f"no runs for task {task!r} in {db_path(db)} (`hotmess runs` lists the tasks)")
    total = len(rows)
    if limit is None:
        limit = 0 if as_json else 100
    if limit:
        rows = rows[:limit]
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        render.console.print(f"No runs in {db_path(db)} yet. Trace an agent with @hotmess.trace, or `hotmess demo`.")
        return
    tasks = len(set(table["task_id"]))
    title = f"{total} runs of {tasks} task{'' if tasks == 1 else 's'} in {db_path(db)}"
    render.console.print(render.runs_table(rows, total, title, agents=set(table["agent"])))


@app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run's steps as a tree: goals, tool calls with arguments, errors, timings."""
    conn = open_db(db)
    full = find_run(conn, run_id)
    if full is None:
        raise HotmessError(f"no run {run_id!r} in {db_path(db)} (or the prefix is ambiguous); `hotmess runs` lists them")
    run = read_runs(conn, run_ids=[full]).to_records()[0]
    steps = read_steps(conn, run_ids=[full]).to_records()
    if as_json:
        render.print_json({"run": run, "steps": step_forest(steps)})
        return
    render.console.print(render.run_tree(run, steps))
