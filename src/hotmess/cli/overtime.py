"""``hotmess horizon`` and ``hotmess drift``: incoherence against run length, behaviour over time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from hotmess.cli import render, render_overtime
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

_OUTCOMES_HELP = "How outcomes are compared: exact, actions, text."


def _check_outcome(outcome: str) -> None:
    allowed = ("exact", "actions", "text")
    if outcome not in allowed:
        raise HotmessError(f"--outcome must be one of {', '.join(allowed)}, not {outcome!r}")


def _show(result: object, as_json: bool, print_terminal: Callable[[dict[str, Any], str], None], db: Path | None) -> None:
    if as_json:
        render.print_json(to_json(result))
        return
    print_terminal(to_json(result), db_path(db))


@app.command("horizon")
def horizon_command(
    db: DbOption = None,
    length: Annotated[str, typer.Option("--length", help="Run length: steps, tool_calls or tokens (input + output).")] = "steps",
    groups: Annotated[int | None, typer.Option("--groups", help="Tasks are cut into this many equal-size groups by mean run length (default: up to 5, two tasks or more each).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="One curve per group: agent (or another runs column / run attribute).")] = None,
    outcome: Annotated[str, typer.Option("--outcome", help=_OUTCOMES_HELP)] = "exact",
    correction: Annotated[bool, typer.Option("--correction/--plug-in", help="The unbiased small-sample form (default), or the plug-in figures.")] = True,
    n_boot: Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples for the intervals.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    tasks: TasksOption = "recorded",
    as_json: JsonOption = False,
    engine: EngineOption = None,
    source: SourceOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Incoherence against run length: per length group, a log-log power-law fit, and each
    task's longer-than-median runs against its shorter ones (with --by, per agent or other group)."""
    from hotmess.analyzers.horizon import LENGTHS

    if length not in LENGTHS:
        raise HotmessError(f"--length must be one of {', '.join(LENGTHS)}, not {length!r}")
    if groups is not None and groups < 1:
        raise HotmessError(f"--groups must be at least 1, not {groups}")
    _check_outcome(outcome)
    check_engine_options(engine, source, scheduler)
    if engine is not None:
        result = on_engine("horizon", engine, source, scheduler, length=length, groups=groups, by=by,
                           outcome=outcome, correction=correction, n_boot=n_boot, seed=seed, tasks=tasks)
        _show(result, as_json, render_overtime.print_horizon, source)
        return

    import hotmess

    with stages("horizon") as progress, hotmess.open(db_path(db)) as store:
        result = store.horizon(length=length, groups=groups, by=by, outcome=outcome, correction=correction,
                               n_boot=n_boot, seed=seed, tasks=tasks, progress=progress)
    _show(result, as_json, render_overtime.print_horizon if by is None else render_overtime.print_horizon_groups, db)


@app.command("drift")
def drift_command(
    db: DbOption = None,
    window: Annotated[str, typer.Option("--window", help="Window: a time span (1d, 6h, 30m, 2w; UTC-aligned) or a run count (500runs).")] = "1d",
    by: Annotated[str | None, typer.Option("--by", help="Windows per group: task, agent (or another runs column / run attribute).")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="False-alarm level of every flag together (behaviour and task-mix change points): when nothing changed, the chance of any flag is at most alpha. Between 1e-6 and 0.5.")] = 0.05,
    baseline: Annotated[int, typer.Option("--baseline", help="Index of the baseline window (0 = first, -1 = last).")] = 0,
    n_perm: Annotated[int, typer.Option("--n-perm", min=0, help="Most permutations per test (a change-point scan's raised to 2·scans/alpha if lower; a test stops early once 20 shuffles reach the observed statistic).")] = 1000,
    outcome: Annotated[str, typer.Option("--outcome", help=_OUTCOMES_HELP)] = "exact",
    seed: Annotated[int, typer.Option("--seed", help="Permutation seed.")] = 0,
    tasks: TasksOption = "recorded",
    as_json: JsonOption = False,
    engine: EngineOption = None,
    source: SourceOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Behaviour per window of runs (success, incoherence, outcome clusters), and when it changed.
    Change points: a scan over the whole series comparing each task's outcomes (clusters and
    success) before and after every split, calibrated by shuffling outcomes within tasks, with
    binary segmentation for several changes; each is located with an interval and says what
    changed. A shift in the mix of tasks is reported apart, never as a behaviour change. Every
    flag shares one false-alarm level --alpha. Each window's Jensen-Shannon divergence from the
    one before and from the baseline, with its permutation p-value, is descriptive."""
    from hotmess.analyzers.drift import parse_window

    check_engine_options(engine, source, scheduler)
    try:
        parse_window(window)
    except ValueError as exc:
        raise HotmessError(f"--window: {exc}") from exc
    if not 1e-6 <= alpha <= 0.5:
        raise HotmessError(f"--alpha must be between 1e-6 and 0.5 (a false-alarm level), not {alpha}")
    _check_outcome(outcome)
    if engine is not None:
        result = on_engine("drift", engine, source, scheduler, window=window, by=by, baseline=baseline, alpha=alpha,
                           n_perm=n_perm, outcome=outcome, seed=seed, tasks=tasks)
        _show(result, as_json, render_overtime.print_drift, source)
        return
    import hotmess

    with stages("drift") as progress, hotmess.open(db_path(db)) as store:
        result = store.drift(window=window, by=by, baseline=baseline, alpha=alpha, n_perm=n_perm, outcome=outcome,
                             seed=seed, tasks=tasks, progress=progress)
    _show(result, as_json, render_overtime.print_drift, db)
