"""``hotmess report``: every analysis of a database in one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import DbOption, JsonOption, app, db_path, progress
from hotmess.cli.tasks import TasksOption
from hotmess.errors import HotmessError


@app.command("report")
def report_command(
    db: DbOption = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the HTML file.")] = Path("report.html"),
    outcome: Annotated[str, typer.Option("--outcome", help="How outcomes are compared: exact, actions, text.")] = "exact",
    decomposition: Annotated[str, typer.Option("--decomposition", help="brier (outcome clusters), checks, kl, mse.")] = "brier",
    window: Annotated[str | None, typer.Option("--window", help="Drift time window (1d, 6h, 1w, 500runs); default: the shortest of 1h, 6h, 1d, 1w that makes at most 30 windows of typically 30+ runs.")] = None,
    max_runs: Annotated[int, typer.Option("--max-runs", min=0, help="Runs listed with their step trees (0 = all).")] = 500,
    n_boot: Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples for the intervals.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Bootstrap seed.")] = 0,
    tasks: TasksOption = "recorded",
    as_json: JsonOption = False,
) -> None:
    """Write an HTML report: verdict, bias/variance per task, outcome clusters, run length, goals, drift, runs."""
    from hotmess.analyzers import DECOMPOSITIONS, OUTCOME_METHODS

    if outcome not in OUTCOME_METHODS or outcome == "embedding":
        raise HotmessError(f"--outcome must be one of exact, actions, text, not {outcome!r} (embeddings: use the Python API)")
    if decomposition not in DECOMPOSITIONS or decomposition == "embedding":
        raise HotmessError(f"--decomposition must be one of brier, checks, kl, mse, not {decomposition!r}")
    import hotmess
    from hotmess.report.collect import STAGES

    with progress("building the report", STAGES) as advance, hotmess.open(db_path(db)) as store:
        result = store.report(out, outcome=outcome, decomposition=decomposition, window=window, max_runs=max_runs,
                              n_boot=n_boot, seed=seed, tasks=tasks, progress=advance)
    if as_json:
        render.print_json(result.to_json())
        return
    for name, state in result.sections.items():
        if state != "included":
            render.err_console.print(f"[yellow]{name}:[/] {render.escape(state)}")
    shown = result.step_trees["shown"]
    cut = f" (step trees of the first {shown})" if shown < result.runs else ""
    render.console.print(f"Wrote {render.escape(str(out))}: {result.runs} runs, {result.tasks} tasks{cut}", soft_wrap=True)
