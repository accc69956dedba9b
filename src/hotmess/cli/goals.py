"""``hotmess goals``: do runs of a task pursue the same intermediate goals, step by step?"""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import DbOption, JsonOption, app, db_path, open_db, stages
from hotmess.cli.tasks import TasksOption
from hotmess.errors import HotmessError

GOAL_RUN_COLUMNS = ("run_id", "task_id", "status", "reference")


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
) -> None:
    """Spread of intermediate goals across runs at each step (variance, bias against reference
    actions, incoherence) and each run's drift from its first goal (or its instruction)."""
    from hotmess.analyzers.common import natural_key
    from hotmess.analyzers.goals import ALIGNMENTS, DRIFT_FROM, goal_coherence
    from hotmess.analyzers.outcomes import DEFAULT_READ_ONLY
    from hotmess.cli import render_goals
    from hotmess.store.readers import read_goal_steps, read_instructions, read_runs

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
    path = db_path(db)
    with stages("goals") as progress, contextlib.closing(open_db(db)) as conn:
        runs = read_runs(conn, task_id=task, columns=GOAL_RUN_COLUMNS, tasks=tasks, progress=progress)
        if len(runs) == 0:
            if task is None:
                raise HotmessError(
                    f"no runs in {path} (record some with @hotmess.trace, `hotmess import`, "
                    "or `hotmess demo`)"
                )
            known = sorted({str(t) for t in read_runs(conn, columns=("task_id",), tasks=tasks)["task_id"]},
                           key=natural_key)
            shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
            raise HotmessError(
                f"no task {task!r} in {path}"
                + (f" (its {len(known)} tasks: {shown})" if known else " (it has no runs)")
            )
        steps = read_goal_steps(conn, task_id=task, tasks=tasks, progress=progress)
        instructions = read_instructions(conn, task_id=task, tasks=tasks) if drift_from == "instruction" else None
        if progress is not None:
            progress("analyzing", 0, None)
        result = goal_coherence(
            runs,
            steps,
            align=align,
            method=method,
            read_only=DEFAULT_READ_ONLY if skip_read_only else None,
            drift_threshold=drift_threshold,
            correction=correction,
            drift_from=drift_from,
            instructions=instructions,
            progress=progress,
        )
    if result.n_goals == 0:
        raise HotmessError(
            f"no goal-bearing steps in {path}"
            + (f" for task {task!r}" if task else "")
            + ": goals come from hotmess.goal(), tool calls"
            + (" that are not read-only" if skip_read_only else "")
            + ", or LLM steps stating a plan ('plan: ...')"
        )
    data = result.to_dict(drift_limit=limit)
    if as_json:
        render.print_json(data)
        return
    render_goals.print_goals(data, path, limit)
