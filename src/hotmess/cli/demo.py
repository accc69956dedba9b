"""``hotmess demo``: the built-in agents, recorded and analyzed."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import JsonOption, app, progress
from hotmess.results import SCHEMA_VERSION, jsonable


@app.command("demo")
def demo_command(
    db: Annotated[Path, typer.Option("--db", help="Where to store the demo's runs.")] = Path("hotmess-demo.db"),
    runs_per_task: Annotated[int, typer.Option("--runs", min=2, help="Runs per task and variant.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the agents' stochastic policy.")] = 7,
    as_json: JsonOption = False,
) -> None:
    """Run a built-in tool-using agent in two variants (coherent and incoherent failures), then
    import four weeks of its production traces (OTLP JSON, a prompt update in week 3)."""
    import hotmess
    from hotmess import demo
    from hotmess.analyzers.drift import iso_utc

    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{db}{suffix}")
    hotmess.configure(db=db)
    total = len(demo.TASKS) * len(demo.AGENTS) * runs_per_task
    started = time.perf_counter()
    with progress("running the demo agents", total) as advance:
        summary = demo.run_demo(runs_per_task=runs_per_task, seed=seed, progress=advance)
    hotmess.shutdown()
    prod_file = db.with_name(f"{db.stem}-prod.jsonl")
    production = demo.write_production_log(prod_file, time.time_ns(), seed=seed)
    imported = demo.import_production_log(prod_file, db)
    elapsed = time.perf_counter() - started
    production = {
        "file": str(prod_file), "agent": demo.PROD_AGENT, "runs": imported.new, "steps": imported.steps,
        "from": iso_utc(production["start_ns"]), "to": iso_utc(production["end_ns"]),
        "prompt_update": iso_utc(production["change_ns"]),
    }
    with hotmess.open(db) as store:
        analysis = store.analyze(by="agent")
    verdict = analysis.to_dict()
    if as_json:
        render.print_json({"schema_version": SCHEMA_VERSION, "db": str(db), "runs": total, "variants": summary,
                           "production": production, "analysis": jsonable(verdict)})
        return
    render.print_demo(summary, str(db), total, elapsed)
    render.console.print(
        f"production: {production['runs']} runs of {demo.PROD_AGENT} from {production['from'][:10]} to "
        f"{production['to'][:10]} (prompt update on {production['prompt_update'][:10]}), written as OTLP "
        f"JSON to {render.escape(str(prod_file))} and imported as `hotmess import otlp` does",
    )
    render.print_analysis(verdict, str(db))
    render.console.print()
    render.print_next_steps([
        ("horizon --by agent", "incoherence against run length, per agent"),
        ("drift --window 1w --by agent", "week by week: the prompt update is flagged"),
        ("analyze --by agent", "the same verdict, as a table (--json for scripts)"),
        ("runs --task warranty-620", "one task's runs"),
        ("show RUN_ID", "one run's steps as a tree"),
        ("serve", "all of it in a browser, at http://127.0.0.1:4318/"),
    ], str(db))
