"""``hotmess tasks`` and ``hotmess tasks infer``: tasks inferred from the requests themselves."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table as RichTable

from hotmess.cli import render
from hotmess.cli.app import DbOption, JsonOption, app, db_path
from hotmess.errors import HotmessError
from hotmess.results import SCHEMA_VERSION, jsonable, to_json

tasks_app = typer.Typer(
    help="Tasks inferred from the requests, for traffic without task ids: `hotmess tasks infer`, then "
    "`--tasks inferred` on analyze, horizon, goals, drift and report.",
    invoke_without_command=True,
)
app.add_typer(tasks_app, name="tasks")

TasksOption = Annotated[
    str,
    typer.Option("--tasks", help="Which task ids: recorded (default), or inferred (`hotmess tasks infer`)."),
]


def _open(db: Any):
    import hotmess

    return hotmess.open(db_path(db))


@tasks_app.callback()
def tasks_command(
    ctx: typer.Context,
    db: DbOption = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Tasks shown (0 = all).")] = 30,
    as_json: JsonOption = False,
) -> None:
    """List the inferred tasks: runs, distinct phrasings, how tight each group is, an example."""
    if ctx.invoked_subcommand is not None:
        return
    with _open(db) as store:
        rows = store.tasks()
    if as_json:
        render.print_json({"schema_version": SCHEMA_VERSION, "db": db_path(db), "tasks": jsonable(rows)})
        return
    if not rows:
        render.console.print(
            f"No inferred tasks in {db_path(db)} yet: `hotmess tasks infer` groups runs whose requests "
            "are the same task in other words."
        )
        return
    render.console.print(_tasks_table(rows[: limit or None], len(rows), db_path(db)))


@tasks_app.command("infer")
def infer_command(
    db: DbOption = None,
    threshold: Annotated[float | None, typer.Option("--threshold", min=0.0, max=1.99, help="Cosine distance under which every pair of a group's requests lies (lower splits, higher merges; default 0.875).")] = None,
    method: Annotated[str, typer.Option("--method", help="text (TF-IDF over words and characters). An embedding function is Python's: hotmess.open(db).infer_tasks(method='embedding', embed=fn).")] = "text",
    mask: Annotated[bool, typer.Option("--mask/--keep-numbers", help="Mask numbers, ids, dates, e-mails and URLs before comparing (default), or keep them, where the id is what makes the task.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Group runs whose request (first user message) is the same task in other words, with
    numbers, ids and dates masked; stored beside the recorded task ids, never over them."""
    if method != "text":
        raise HotmessError(
            "--method embedding needs an embedding function: use "
            "hotmess.open(db).infer_tasks(method='embedding', embed=fn) from Python"
        )
    with _open(db) as store:
        result = store.infer_tasks(threshold=threshold, method=method, mask=mask)
        rows = store.tasks()
    if as_json:
        render.print_json(to_json(result))
        return
    n_runs = result.n_requests
    render.console.print(
        f"{n_runs:,} runs → [bold]{result.n_tasks:,} inferred tasks[/] (threshold {result.threshold:g})"
        + (f"; {result.n_missing:,} runs without a request keep their recorded task" if result.n_missing else "")
    )
    render.console.print(_tasks_table(rows[:15], len(rows), db_path(db)))
    for warning in result.warnings:
        render.err_console.print(f"[yellow]warning:[/] {render.escape(warning)}")
    render.console.print(
        "Next: [bold]hotmess analyze --tasks inferred[/] (also horizon, goals, drift, report); "
        "[bold]hotmess tasks[/] lists them again."
    )


def _when(ns: int | None) -> str:
    if not ns:
        return ""
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _tasks_table(rows: list[dict[str, Any]], total: int, db: str) -> RichTable:
    first = rows[0] if rows else {}
    title = (f"{total} inferred tasks in {db} · {first.get('method', '')}, threshold "
             f"{first.get('threshold', 0):g} · {_when(first.get('inferred_ns'))}")
    table = RichTable(title=render.escape(title), title_justify="left", header_style="bold",
                      box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column("task", no_wrap=True)
    table.add_column("runs", justify="right", no_wrap=True)
    table.add_column("phrasings", justify="right", no_wrap=True)
    table.add_column("tightness", justify="right", no_wrap=True)
    table.add_column("example request", no_wrap=True, overflow="ellipsis", ratio=1)
    for row in rows:
        table.add_row(row["task_id"], f"{row['n_runs']:,}", f"{row['n_distinct']:,}",
                      render.fmt_float(row["tightness"], 2), render.escape(render.short(row["example"], 200)))
    table.caption = "tightness: mean cosine similarity of a group's requests to their centroid (1 = one wording)"
    if total > len(rows):
        table.caption += f"\n{len(rows)} of {total} shown; --limit 0 shows all"
    return table
