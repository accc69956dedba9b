"""What goes in the report, computed from the tables: every analysis of the runs, per agent
where there are several, as the plain dicts :func:`hotmess.report.build_report` lays out.

Pure over the run and step tables (the caller reads them); a section that cannot be computed
(too little data, or an analyzer failing) becomes a note on the page rather than costing the
reader the whole report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError, HotmessError
from hotmess.tables import Table

__all__ = ["STAGES", "auto_window", "included", "sections", "task_context"]

#: Progress stages of a report: reading, the analysis, per agent, horizon, goals, drift, the
#: step trees, the page, writing it.
STAGES = 9
#: Drift windows tried, shortest first, for a database's time span (at most this many windows,
#: and a typical window holding at least this many runs: the test has little power on fewer).
_WINDOWS = (("1h", 3600), ("6h", 6 * 3600), ("1d", 86400), ("1w", 7 * 86400))
_MAX_WINDOWS = 30
_MIN_RUNS_PER_WINDOW = 30
#: The over-time sections, in page order.
_OVER_TIME = ("horizon", "goals", "drift")


def sections(
    runs: Table, steps: Table, *, outcome: str = "exact", decomposition: str = "brier",
    window: str | None = None, n_boot: int = 2000, seed: int = 0,
    advance: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """The report's analyses: ``agents``, ``analysis`` (all runs), ``by_agent`` (None for one
    agent), and per agent ``horizon``, ``goals`` and ``drift`` (each a dict per agent, or a
    note saying why it is not there). ``window`` defaults to :func:`auto_window`."""
    from hotmess.analyzers import DECOMPOSITIONS, OUTCOME_METHODS, analyze, split_runs
    from hotmess.analyzers.goals import goal_coherence
    from hotmess.analyzers.horizon import horizon

    if outcome not in OUTCOME_METHODS or outcome == "embedding":
        raise HotmessError(f"outcome must be one of exact, actions, text, not {outcome!r} (embeddings: analyze())")
    if decomposition not in DECOMPOSITIONS or decomposition == "embedding":
        raise HotmessError(f"decomposition must be one of brier, checks, kl, mse, not {decomposition!r}")
    options: dict[str, Any] = dict(outcome=outcome, decomposition=decomposition, n_boot=n_boot, seed=seed)
    analysis = analyze(runs, steps, **options).to_dict()
    advance()
    series = split_runs(runs, steps, "agent")
    agents = list(series)
    by_agent = analyze(runs, steps, by="agent", **options).to_dict() if len(agents) > 1 else None
    advance()
    out: dict[str, Any] = {"agents": agents, "analysis": analysis, "by_agent": by_agent}
    out["horizon"] = _per_series("horizon", series, lambda r, s: horizon(
        r, s, length="steps", groups=None, decomposition=decomposition, outcome=outcome, n_boot=n_boot, seed=seed))
    advance()
    out["goals"] = _per_series("goals", series, lambda r, s: goal_coherence(r, s, align="index"))
    advance()
    out["drift"] = _drift(runs, steps, agents, window or auto_window(runs), outcome, seed)
    advance()
    return out


def included(report_sections: Mapping[str, Any]) -> dict[str, str]:
    """Per section of the page: ``"included"``, or the note that stands in for it."""
    return {
        "verdict": "included", "bias-variance": "included", "clusters": "included",
        **{name: report_sections[name] if isinstance(report_sections[name], str) else "included"
           for name in _OVER_TIME},
    }


def task_context(runs: Table, instructions: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per task, what an evaluator needs beside its clusters: the instruction (of its first run
    that has one) and the reference (what a right run produces), when recorded."""
    context: dict[str, dict[str, Any]] = {}
    for run_id, task_id, reference in zip(runs["run_id"], runs["task_id"], runs["reference"], strict=True):
        entry = context.setdefault(str(task_id), {"instruction": None, "reference": None})
        if entry["instruction"] is None and run_id in instructions:
            entry["instruction"] = instructions[run_id]
        if entry["reference"] is None and reference is not None:
            entry["reference"] = reference
    return context


def auto_window(runs: Table) -> str | None:
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


def _per_series(
    name: str, series: dict[str, tuple[Table, Table]], compute: Callable[[Table, Table], Any],
) -> dict[str, dict[str, Any]] | str:
    """The analyzer's dict per agent, or a note for the page when it has nothing to say."""
    out, notes = {}, []
    for agent, (runs, steps) in series.items():
        try:
            out[agent] = compute(runs, steps).to_dict()
        except AnalysisError as exc:  # not enough data for this agent
            notes.append(f"{agent}: {exc}" if len(series) > 1 else str(exc))
        except Exception as exc:  # one failing section must not cost the reader the whole report
            return f"not available: {name} failed ({type(exc).__name__}: {exc}); please report it"
    return out or "not enough data: " + "; ".join(notes)


def _drift(
    runs: Table, steps: Table, agents: list[str], window: str | None, outcome: str, seed: int,
) -> dict[str, dict[str, Any]] | str:
    """Drift per agent (every agent's flags share one false-alarm level alpha)."""
    from hotmess.analyzers.drift import drift

    if window is None:
        return ("not enough data: the runs span less than two hours, one time window "
                "(`hotmess report --window 20runs` cuts windows by run count)")
    by = "agent" if len(agents) > 1 else None
    try:
        result = drift(runs, steps, window=window, by=by, outcome=outcome, seed=seed).to_dict()
    except AnalysisError as exc:
        return f"not enough data: {exc}"
    except Exception as exc:  # as in _per_series
        return f"not available: drift failed ({type(exc).__name__}: {exc}); please report it"
    if by is None:
        return {agents[0]: result}
    return {name: {**result, **group} for name, group in result["groups"].items()}
