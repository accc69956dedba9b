"""``hotmess report``: every analysis of a database in one self-contained HTML page."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from hotmess.cli import render
from hotmess.cli.app import DbOption, JsonOption, app, db_path, load_for_analysis, open_db, progress
from hotmess.cli.tasks import TasksOption
from hotmess.errors import HotmessError
from hotmess.store.readers import read_steps
from hotmess.tables import STEP_COLUMNS, Table

#: Step columns the analyzers get (outputs, the bulk of a log, are only read for the step trees).
_ANALYSIS_STEP_COLUMNS = tuple(c for c in STEP_COLUMNS if c != "output")
#: Drift windows tried, shortest first, for a database's time span (at most this many windows,
#: and a typical window holding at least this many runs: the test has little power on fewer).
_WINDOWS = (("1h", 3600), ("6h", 6 * 3600), ("1d", 86400), ("1w", 7 * 86400))
_MAX_WINDOWS = 30
_MIN_RUNS_PER_WINDOW = 30


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
    from hotmess.analyzers import DECOMPOSITIONS, OUTCOME_METHODS, analyze, split_runs
    from hotmess.report import build_report

    if outcome not in OUTCOME_METHODS or outcome == "embedding":
        raise HotmessError(f"--outcome must be one of exact, actions, text, not {outcome!r} (embeddings: use the Python API)")
    if decomposition not in DECOMPOSITIONS or decomposition == "embedding":
        raise HotmessError(f"--decomposition must be one of brier, checks, kl, mse, not {decomposition!r}")
    with progress("building the report", 8) as advance:
        runs, _ = load_for_analysis(db, "exact", "brier", tasks=tasks)  # the runs alone; steps with more columns below
        conn = open_db(db)
        steps = read_steps(conn, columns=_ANALYSIS_STEP_COLUMNS)
        advance()
        options: dict[str, Any] = dict(outcome=outcome, decomposition=decomposition, n_boot=n_boot, seed=seed)
        analysis = analyze(runs, steps, **options).to_dict()
        advance()
        series = split_runs(runs, steps, "agent")
        agents = list(series)
        by_agent = analyze(runs, steps, by="agent", **options).to_dict() if len(agents) > 1 else None
        advance()
        over_time = {"outcome": outcome, "n_boot": n_boot, "seed": seed}
        sections: dict[str, Any] = {
            "horizon": _per_series("horizon", "horizon", series, lambda f, r, s: f(
                r, s, length="steps", groups=5, decomposition=decomposition, **over_time)),
        }
        advance()
        sections["goals"] = _per_series("goals", "goal_coherence", series, lambda f, r, s: f(r, s, align="index"))
        advance()
        sections["drift"] = _drift(runs, steps, agents, window or _auto_window(runs), outcome, seed)
        advance()
        shown = runs.take(np.arange(len(runs) if max_runs == 0 else min(max_runs, len(runs))))
        run_records = shown.to_records()
        tree_steps: dict[str, list[dict[str, Any]]] = {}
        for s in read_steps(conn, run_ids=[r["run_id"] for r in run_records]).to_records():
            tree_steps.setdefault(s["run_id"], []).append(s)
        advance()
        page = build_report({
            "database": db_path(db), "agents": agents, "analysis": analysis, "by_agent": by_agent,
            **sections, "runs": run_records, "runs_total": len(runs), "steps": tree_steps,
            "task_context": _task_context(conn, runs, tasks),
        })
        advance()
        out.write_text(page, encoding="utf-8")
        advance()
    included = {
        "verdict": "included", "bias-variance": "included", "clusters": "included",
        **{name: "not available in this version of hotmess" if value is None else value if isinstance(value, str)
           else "included" for name, value in sections.items()},
    }
    if as_json:
        render.print_json({
            "path": str(out), "bytes": len(page.encode("utf-8")), "runs": len(runs), "tasks": analysis["n_tasks"],
            "agents": agents, "sections": included,
            "step_trees": {"shown": len(run_records), "total": len(runs)},
        })
        return
    for name, state in included.items():
        if state != "included":
            render.err_console.print(f"[yellow]{name}:[/] {render.escape(state)}")
    cut = f" (step trees of the first {len(run_records)})" if len(run_records) < len(runs) else ""
    render.console.print(f"Wrote {render.escape(str(out))}: {len(runs)} runs, {analysis['n_tasks']} tasks{cut}", soft_wrap=True)


def _task_context(conn: Any, runs: Table, tasks: str) -> dict[str, dict[str, Any]]:
    """Per task, what an evaluator needs beside its clusters: the instruction (of its first run
    that has one) and the reference (what a right run produces), when recorded."""
    from hotmess.store.readers import read_instructions

    instructions = read_instructions(conn, tasks=tasks)
    context: dict[str, dict[str, Any]] = {}
    for run_id, task_id, reference in zip(runs["run_id"], runs["task_id"], runs["reference"], strict=True):
        entry = context.setdefault(str(task_id), {"instruction": None, "reference": None})
        if entry["instruction"] is None and run_id in instructions:
            entry["instruction"] = instructions[run_id]
        if entry["reference"] is None and reference is not None:
            entry["reference"] = reference
    return context


def _auto_window(runs: Table) -> str | None:
    """The shortest window that cuts the runs' time span into at most 30 windows whose median
    (non-empty) window holds at least 30 runs; the longest such window if none does; None under
    two hours."""
    start = runs["start_ns"][runs["start_ns"] > 0].astype(np.int64)
    if len(start) < 2:
        return None
    span = (int(start.max()) - int(start.min())) / 1e9
    if span < 2 * 3600:
        return None
    fitting = [(name, seconds) for name, seconds in _WINDOWS if span / seconds <= _MAX_WINDOWS]
    if not fitting:
        return f"{math.ceil(span / 86400 / _MAX_WINDOWS)}d"
    for name, seconds in fitting:
        _, counts = np.unique(start // (seconds * 10**9), return_counts=True)
        if np.median(counts) >= _MIN_RUNS_PER_WINDOW:
            return name
    return fitting[-1][0]


def _analyzer(module: str, function: str) -> Callable[..., Any] | None:
    """An over-time analyzer, imported late: a build without it still writes the rest of the report."""
    try:
        return getattr(importlib.import_module(f"hotmess.analyzers.{module}"), function)
    except (ImportError, AttributeError):
        return None


def _per_series(
    module: str, function: str, series: dict[str, tuple[Table, Table]], call: Callable[..., Any],
) -> dict[str, dict[str, Any]] | str | None:
    """The analyzer's dict per agent, or a note for the page when it has nothing to say."""
    analyzer = _analyzer(module, function)
    if analyzer is None:
        return None
    out, notes = {}, []
    for name, (runs, steps) in series.items():
        try:
            out[name] = call(analyzer, runs, steps).to_dict()
        except (HotmessError, ValueError) as exc:
            notes.append(f"{name}: {exc}" if len(series) > 1 else str(exc))
        except Exception as exc:  # one failing section must not cost the reader the whole report
            return f"not available: {module} failed ({type(exc).__name__}: {exc}); please report it"
    return out or "not enough data: " + "; ".join(notes)


def _drift(
    runs: Table, steps: Table, agents: list[str], window: str | None, outcome: str, seed: int,
) -> dict[str, dict[str, Any]] | str | None:
    """Drift per agent (every agent's flags share one false-alarm level alpha)."""
    analyzer = _analyzer("drift", "drift")
    if analyzer is None:
        return None
    if window is None:
        return ("not enough data: the runs span less than two hours, one time window "
                "(`hotmess report --window 20runs` cuts windows by run count)")
    by = "agent" if len(agents) > 1 else None
    try:
        result = analyzer(runs, steps, window=window, by=by, outcome=outcome, seed=seed).to_dict()
    except (HotmessError, ValueError) as exc:
        return f"not enough data: {exc}"
    except Exception as exc:  # as in _per_series
        return f"not available: drift failed ({type(exc).__name__}: {exc}); please report it"
    if by is None:
        return {agents[0]: result}
    return {name: {**result, **group} for name, group in result["groups"].items()}
