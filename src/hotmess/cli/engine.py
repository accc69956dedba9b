"""The options that run ``hotmess analyze`` on a distributed engine, and the call behind them.

``hotmess analyze --engine dask --source DIR [--scheduler ADDRESS]`` reads the Parquet
directory ``DIR`` (``hotmess export parquet``) and analyzes it on Dask (:mod:`hotmess.engine`):
on a new ``LocalCluster`` by default, on the cluster whose scheduler is at ``ADDRESS`` with
``--scheduler``. The result, and its ``--json``, are those of ``hotmess analyze`` on the
database the directory was exported from.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hotmess.cli.app import stages
from hotmess.errors import HotmessError

__all__ = [
    "EngineOption", "SchedulerOption", "SourceOption", "check_engine_options",
    "on_engine",
]

EngineOption = Annotated[
    str | None,
    typer.Option("--engine", help="Analyze on a distributed engine: dask (reads --source, not --db).",
                 show_default=False),
]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", help="With --engine: the Parquet directory (hotmess export parquet --out DIR), "
                 "or its URL (s3://bucket/prefix; credentials from the environment).", show_default=False),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="With --engine dask: the scheduler's address (tcp://host:8786); "
                 "default: a LocalCluster on this machine.", show_default=False),
]


def on_engine(command: str, engine: str, source: str | None, scheduler: str | None, **kwargs: Any) -> Any:
    """The result of ``hotmess COMMAND --engine ...`` (``command``: analyze, horizon, drift or goals), from
    :mod:`hotmess.engine`'s function of that name with the command's options ``kwargs``; a progress
    bar of the Dask graph's tasks on a terminal, as the local commands have theirs."""
    import hotmess.engine

    if source is None:
        raise HotmessError("--engine needs --source DIR: a directory written by hotmess export parquet")
    with stages(command) as progress:
        return getattr(hotmess.engine, command)(source, engine=engine, scheduler=scheduler, progress=progress,
                                                **kwargs)


def check_engine_options(engine: str | None, source: str | None, scheduler: str | None) -> None:
    """--source and --scheduler only go with --engine."""
    if engine is None and (source is not None or scheduler is not None):
        raise HotmessError("--source and --scheduler go with --engine dask")
