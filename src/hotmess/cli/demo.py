"""``hotmess demo``: the built-in agents, recorded and analyzed."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import (
    JsonOption,
    app,
    load_for_analysis,
    progress,
)


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
    with progress("running the demo agents", total) as advance:
        summary = demo.run_demo(runs_per_task=runs_per_task, seed=seed, progress=advance)
    hotmess.shutdown()
    elapsed = time.perf_counter() - started
    from hotmess.analyzers import analyze

    runs, _ = load_for_analysis(db, "exact", "brier")
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
