"""``hotmess analyze``: bias, variance, incoherence, failure consistency, pass^k."""

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
from hotmess.results import to_json


@app.command("analyze")
def analyze_command(
    db: DbOption = None,
    outcome: Annotated[str, typer.Option("--outcome", help="How outcomes are compared: exact, actions, text, embedding.")] = "exact",
    decomposition: Annotated[str, typer.Option("--decomposition", help="brier (outcome clusters), checks, kl, mse.")] = "brier",
    by: Annotated[str | None, typer.Option("--by", help="Compare groups: a runs column (agent) or a run attribute (gen_ai.request.model).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task.")] = None,
    tasks: TasksOption = "recorded",
    correction: Annotated[bool, typer.Option("--correction/--plug-in", help="The unbiased small-sample form (default), or the plug-in figures.")] = True,
    interval: Annotated[str, typer.Option("--interval", help="jackknife (default: covers at the sizes people have) or bootstrap.")] = "jackknife",
    incomplete: Annotated[str, typer.Option("--incomplete", help="Runs that never ended: drop (default; they may still be running) or fail (count them as failures).")] = "drop",
    n_boot: Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples, for --interval bootstrap.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Bootstrap seed.")] = 0,
    as_json: JsonOption = False,
    engine: EngineOption = None,
    source: SourceOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Bias, variance and incoherence (with a bootstrap interval), failure consistency, pass^k."""
    from hotmess.analyzers import DECOMPOSITIONS, OUTCOME_METHODS
    from hotmess.analyzers.analysis import INCOMPLETE
    from hotmess.analyzers.incoherence import INTERVALS

    if outcome not in OUTCOME_METHODS:
        raise HotmessError(f"--outcome must be one of {', '.join(OUTCOME_METHODS)}, not {outcome!r}")
    if decomposition not in DECOMPOSITIONS:
        raise HotmessError(f"--decomposition must be one of {', '.join(DECOMPOSITIONS)}, not {decomposition!r}")
    if interval not in INTERVALS:
        raise HotmessError(f"--interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if incomplete not in INCOMPLETE:
        raise HotmessError(f"--incomplete must be one of {', '.join(INCOMPLETE)}, not {incomplete!r}")
    if outcome == "embedding":
        raise HotmessError(
            "--outcome embedding needs an embedding function: use hotmess.analyzers.analyze(..., "
            "outcome='embedding', embed=fn) from Python (sentence_transformer_embedder for a local model)"
        )
    check_engine_options(engine, source, scheduler)
    if engine is not None:
        result = on_engine("analyze", engine, source, scheduler, outcome=outcome, decomposition=decomposition, by=by,
                                   task=task, tasks=tasks, correction=correction, interval=interval,
                                   incomplete=incomplete, n_boot=n_boot, seed=seed)
        if as_json:
            render.print_json(to_json(result))
        else:
            render.print_analysis(result.to_dict(), str(source))
        return
    import hotmess

    with stages("analyze") as progress, hotmess.open(db_path(db)) as store:
        result = store.analyze(outcome=outcome, decomposition=decomposition, by=by, task=task, tasks=tasks,
                               correction=correction, interval=interval, incomplete=incomplete,
                               n_boot=n_boot, seed=seed, progress=progress)
        agents = store.agents(task=task, tasks=tasks) if by is None else []
    if as_json:
        render.print_json(to_json(result))
        return
    pooled = agents if by is None and len(agents) > 1 else []
    render.print_analysis(result.to_dict(), db_path(db), pooled_agents=pooled)
