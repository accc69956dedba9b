"""``hotmess export parquet``: the store as Parquet files, for engines past one machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import DbOption, JsonOption, app, db_path

export_app = typer.Typer(help="Export the store for other tools: `hotmess export parquet --out DIR`.",
                         no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("parquet")
def export_parquet_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write runs/ and steps/ under (new or empty).")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Runs and steps as Parquet, partitioned by day (runs/day=YYYY-MM-DD/, steps/day=.../),
    the columns of the runs and steps tables; what `hotmess analyze --engine dask --source DIR` reads."""
    import hotmess

    with hotmess.open(db_path(db)) as store:
        report = store.export_parquet(out)
    if as_json:
        render.print_json(report.to_json())
        return
    days = report.days
    span = f"{days[0]} to {days[-1]}" if len(days) > 1 else (days[0] if days else "no days")
    render.console.print(
        f"Wrote {report.runs:,} runs and {report.steps:,} steps to {report.out} "
        f"({report.files} files, {len(days)} days: {span})."
    )
