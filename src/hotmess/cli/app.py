"""The ``hotmess`` app: shared options, helpers and error handling.

Commands live in their own modules (``runs``, ``demo``, ``imports``, ``analyze``, ...), each of
which reads, analyzes, then renders; nothing else. ``hotmess.cli`` imports them to register them.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from hotmess.cli import render
from hotmess.errors import HotmessError
from hotmess.progress import Progress
from hotmess.store.database import connect, default_path

app = typer.Typer(
    name="hotmess",
    help="Log multi-step agent runs and measure how self-consistent their failures are.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
import_app = typer.Typer(help="Import runs from benchmark result files and production logs.", no_args_is_help=True)
app.add_typer(import_app, name="import")


class _Options:
    debug = False
    quiet = False


DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="SQLite database (default: $HOTMESS_DB or ./hotmess.db).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    _Options.debug = debug
    _Options.quiet = quiet


def db_path(db: Path | None) -> str:
    return str(db) if db is not None else default_path()


def open_db(db: Path | None) -> sqlite3.Connection:
    return connect(db_path(db), create=False)


def show_progress() -> bool:
    return not _Options.quiet and sys.stderr.isatty()


@contextlib.contextmanager
def progress(description: str, total: int | None):
    """A rich progress bar on stderr when it is a terminal; a no-op otherwise."""
    if not show_progress():
        yield lambda n=1: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=render.err_console, transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


@contextlib.contextmanager
def stages(label: str) -> Iterator[Progress | None]:
    """A rich progress bar on stderr for work that reports through a ``progress(unit, done, total)``
    callback (:mod:`hotmess.progress`): one bar per unit in turn (bytes, records, steps read,
    tasks, ...). Yields the callback to pass on as ``progress=``, or None when no bar is shown
    (not a terminal, or ``--quiet``), so the work then pays nothing for it."""
    if not show_progress():
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), _count_column()(), TimeRemainingColumn(),
        console=render.err_console, transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}
        current: list[Any] = []

        def update(unit: str, done: int, total: int | None) -> None:
            task = tasks.get(unit)
            if task is None:
                if current:
                    bar.update(current[-1], visible=False)
                task = tasks[unit] = bar.add_task(label, total=total, unit=unit)
                current.append(task)
            bar.update(task, completed=done, total=total)

        yield update


def _count_column() -> type:
    """The column class, made on first use (rich.progress is imported only when a bar is shown)."""
    from rich.filesize import decimal
    from rich.progress import ProgressColumn
    from rich.text import Text

    class CountColumn(ProgressColumn):
        """``12.3/45.6 MB`` for bytes, ``1,024/5,000 records`` for everything else."""

        def render(self, task: Any) -> Text:
            unit = task.fields.get("unit", "")
            done, total = int(task.completed), task.total
            if unit == "bytes":
                text = decimal(done) + ("" if total is None else f"/{decimal(int(total))}")
            else:
                text = f"{done:,}" + ("" if total is None else f"/{int(total):,}") + f" {unit}"
            return Text(text, style="progress.download")

    return CountColumn


# Options of the app itself, accepted anywhere on the line: click takes them only before the command.
_GLOBAL_FLAGS = frozenset({"--debug", "--quiet", "-q"})


def global_flags_first(argv: list[str]) -> list[str]:
    """``import otlp f.jsonl -q`` as ``-q import otlp f.jsonl``; nothing after ``--`` moves."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in _GLOBAL_FLAGS]
    rest = [a for a in argv[:end] if a not in _GLOBAL_FLAGS]
    return flags + rest + argv[end:]


def main() -> None:
    try:
        app(args=global_flags_first(sys.argv[1:]), standalone_mode=False)
    except HotmessError as exc:
        _fail(str(exc), exc)
    except sqlite3.DatabaseError as exc:
        _fail(f"database error: {exc}", exc)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        _fail(f"{exc.filename}: {exc.strerror}", exc)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        render.err_console.print("aborted")
        sys.exit(1)
    except Exception as exc:
        # Usage errors (click's, or the copy typer carries) show themselves with exit code 2.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        _fail(f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the traceback; please report it)", exc)


def _fail(message: str, exc: BaseException) -> None:
    if _Options.debug:
        import traceback

        traceback.print_exception(exc)
    render.err_console.print(f"[red]hotmess: error:[/] {render.escape(message)}")
    sys.exit(1)
