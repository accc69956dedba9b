"""``hotmess runs``, ``hotmess show`` and ``hotmess activity``: what was recorded, and when."""

from __future__ import annotations

from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import DbOption, JsonOption, app, db_path
from hotmess.errors import HotmessError
from hotmess.results import SCHEMA_VERSION, jsonable


@app.command("runs")
def runs_command(
    db: DbOption = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task's runs.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's runs.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="Rows to show (default 100 in the terminal, all with --json; 0 = all).")] = None,
    as_json: JsonOption = False,
) -> None:
    """List recorded runs: task, agent, status, success, steps, duration, outcome."""
    import hotmess

    with hotmess.open(db_path(db)) as store:
        table = store.runs(task=task, agent=agent)
    rows = table.to_records()
    if task is not None and not rows:
        raise HotmessError(f"no runs for task {task!r} in {db_path(db)} (`hotmess runs` lists the tasks)")
    total = len(rows)
    if limit is None:
        limit = 0 if as_json else 100
    if limit:
        rows = rows[:limit]
    if as_json:
        render.print_json({"schema_version": SCHEMA_VERSION, "db": db_path(db), "total": total, "runs": jsonable(rows)})
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
    import hotmess

    with hotmess.open(db_path(db)) as store:
        detail = store.run(run_id)
    if as_json:
        render.print_json(detail.to_json())
        return
    render.console.print(render.run_tree(detail.run, detail.steps))


@app.command("activity")
def activity_command(
    db: DbOption = None,
    unit: Annotated[str | None, typer.Option("--unit", help="hour, day or week (UTC); default: chosen from the "
                                             "span of the runs' start times.", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Runs started per hour, day or week, by status: when the agent ran, and how its runs ended."""
    import hotmess

    with hotmess.open(db_path(db)) as store:
        result = store.activity(unit=unit)
    if as_json:
        render.print_json(result.to_json())
        return
    if not result.buckets:
        render.console.print(f"No runs in {db_path(db)} yet. Trace an agent with @hotmess.trace, or `hotmess demo`.")
        return
    total = sum(b["ok"] + b["error"] + b["incomplete"] for b in result.buckets)
    render.console.print(render.activity_table(result.buckets, result.unit,
                                               f"{total} runs per {result.unit} in {db_path(db)}"))
