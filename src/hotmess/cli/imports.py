"""``hotmess import ...``: benchmark result files and production logs into the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import (
    DbOption,
    JsonOption,
    db_path,
    import_app,
)
from hotmess.errors import HotmessError
from hotmess.store.database import connect
from hotmess.store.writer import insert_runs


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
    conn = connect(db_path(db))
    result = insert_runs(conn, batch.runs, batch.steps, source="tau-bench", path=file)
    if as_json:
        render.print_json({**result.to_dict(), "flagged": batch.flagged})
        return
    render.print_import(result, db_path(db), flagged=batch.flagged)
