"""``hotmess goals``: do runs of a task pursue the same intermediate goals, step by step?"""

from __future__ import annotations

from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import DbOption, JsonOption, app, db_path, stages
from hotmess.cli.engine import (
    EngineOption,
    SchedulerOption,
    SourceOption,
    check_engine_options,
    on_engine,
)
from hotmess.cli.tasks import TasksOption
from hotmess.errors import HotmessError
from hotmess.results import SCHEMA_VERSION, jsonable


@app.command("goals")
def goals_command(
    db: DbOption = None,
    align: Annotated[str, typer.Option("--align", help="Align runs by goal index or by progress decile: index, progress.")] = "index",
    method: Annotated[str, typer.Option("--method", help="How goals are compared: exact, text (TF-IDF clusters).")] = "exact",
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    tasks: TasksOption = "recorded",
    skip_read_only: Annotated[bool, typer.Option("--skip-read-only", help="Leave read-only tool calls (get*, search*, ...) out of the goals.")] = False,
    drift_threshold: Annotated[float, typer.Option("--drift-threshold", help="List runs whose goal drift slope (per goal) exceeds this.")] = 0.1,
    drift_from: Annotated[str, typer.Option("--drift-from", help="Measure goal drift from each run's first goal or from its instruction (with --method text): first, instruction.")] = "first",
    limit: Annotated[int, typer.Option("--limit", min=0, help="Drifting runs listed.")] = 10,
    correction: Annotated[bool, typer.Option("--correction/--plug-in", help="The unbiased small-sample form (default), or the plug-in figures.")] = True,
    as_json: JsonOption = False,
    engine: EngineOption = None,
    source: SourceOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Spread of intermediate goals across runs at each step (variance, bias against reference
    actions, incoherence) and each run's drift from its first goal (or its instruction)."""
    from hotmess.analyzers.goals import ALIGNMENTS, DRIFT_FROM
    from hotmess.cli import render_goals

    check_engine_options(engine, source, scheduler)
    if align not in ALIGNMENTS:
        raise HotmessError(f"--align must be one of {', '.join(ALIGNMENTS)}, not {align!r}")
    if method == "embedding":
        raise HotmessError(
            "--method embedding needs an embedding function: use hotmess.analyzers.goals."
            "goal_coherence(..., method='embedding', embed=fn) from Python"
        )
    if method not in ("exact", "text"):
        raise HotmessError(f"--method must be exact or text, not {method!r}")
    if drift_from not in DRIFT_FROM:
        raise HotmessError(f"--drift-from must be one of {', '.join(DRIFT_FROM)}, not {drift_from!r}")
    if drift_from == "instruction" and method == "exact":
        raise HotmessError(
            "--drift-from instruction needs --method text (an exact goal key never equals an "
            "instruction, so every distance would be 1)"
        )
    import hotmess

    options = {"align": align, "method": method, "task": task, "tasks": tasks, "skip_read_only": skip_read_only,
               "drift_threshold": drift_threshold, "drift_from": drift_from, "correction": correction}
    if engine is not None:
        path = source
        result = on_engine("goals", engine, source, scheduler, **options)
    else:
        path = db_path(db)
        with stages("goals") as progress, hotmess.open(path) as store:
            result = store.goals(**options, progress=progress)
    data = {"schema_version": SCHEMA_VERSION, **jsonable(result.to_dict(drift_limit=limit))}
    if as_json:
        render.print_json(data)
        return
    render_goals.print_goals(data, path, limit)
