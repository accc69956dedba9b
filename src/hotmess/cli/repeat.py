"""``hotmess repeat AGENT TASKS``: run a Python agent n times on each task of a file (:func:`hotmess.repeat`)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hotmess.cli import render
from hotmess.cli.app import DbOption, JsonOption, app, db_path, stages
from hotmess.errors import HotmessError


def load_agent(spec: str) -> Any:
    """``package.module:function`` or ``path/to/file.py:function`` → the function."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise HotmessError(f"{spec}: give the agent as module:function or file.py:function")
    try:
        if where.endswith(".py") or Path(where).is_file():
            path = Path(where).resolve()
            if not path.is_file():
                raise HotmessError(f"{where}: no such file")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules.setdefault(path.stem, module)
            module_spec.loader.exec_module(module)
        else:
            if "" not in sys.path:
                sys.path.insert(0, "")  # modules of the directory the command runs in, as python -m does
            module = importlib.import_module(where)
    except HotmessError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import: say which and why
        raise HotmessError(f"{where}: cannot import it ({type(exc).__name__}: {exc})") from exc
    agent = getattr(module, name, None)
    if not callable(agent):
        raise HotmessError(f"{spec}: {where} has no function {name!r}")
    return agent


def load_tasks(path: Path) -> Any:
    """A task file: a JSON object of task id → input, a JSON list of inputs, or JSON lines of inputs
    (inputs carry their id as ``task_id`` or ``id``, or the traced agent's ``task_id=`` finds it)."""
    if not path.is_file():
        raise HotmessError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        tasks = json.loads(text)
    except ValueError as exc:
        raise HotmessError(f"{path}: not JSON ({exc})") from None
    if not isinstance(tasks, dict | list):
        raise HotmessError(f"{path}: expected an object of task id → input or a list of inputs")
    return tasks


@app.command("repeat")
def repeat_command(
    agent: Annotated[str, typer.Argument(help="The agent: module:function or file.py:function (sync or async, "
                                              "traced with @hotmess.trace or not), called with one task input.")],
    tasks: Annotated[Path, typer.Argument(help="Tasks: a JSON object of task id → input, a JSON list of inputs "
                                               "with an 'id', or .jsonl lines of them.")],
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="Trials per task.")] = 30,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Runs at a time.")] = 8,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds per run; a run that takes longer is recorded as a TimeoutError.")] = None,
    budget_runs: Annotated[int | None, typer.Option("--budget-runs", min=0, help="Start at most this many runs.")] = None,
    budget_tokens: Annotated[int | None, typer.Option("--budget-tokens", min=0, help="Start no run once the runs have used this many tokens.")] = None,
    agent_name: Annotated[str | None, typer.Option("--agent", help="The agent's name (default: the traced agent's, else the function's).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run an agent n times on each task (resuming what the database holds), then analyze the runs."""
    import hotmess
    from hotmess.harness import Budget

    function = load_agent(agent)
    task_list = load_tasks(tasks)
    with stages("running") as progress:
        try:
            result = hotmess.repeat(function, task_list, n, concurrency=concurrency, timeout=timeout,
                                    budget=Budget(runs=budget_runs, tokens=budget_tokens), db=db_path(db),
                                    agent_name=agent_name, progress=progress)
        except (ValueError, TypeError) as exc:
            raise HotmessError(f"{tasks}: {exc}") from exc
    if as_json:
        render.print_json(result.to_json())
        return
    for line in result.summary().splitlines():
        render.console.print(render.escape(line))
    render.console.print(f"next: hotmess analyze --db {render.escape(result.db)}")
