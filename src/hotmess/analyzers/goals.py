"""Intermediate goals over the course of a run: goal coherence per position (and goal drift).

The goal of each step is in :mod:`.goal_keys` (explicit goals, tool calls, stated plans;
goal-bearing steps), a run's goal drift in :mod:`.goal_drift`; this module aligns the goals of
the runs of a task and measures how much they agree at each position.

Alignment (``align=``)
----------------------
- ``"index"``: position ``k`` holds goal ``k`` of every run with more than ``k`` goals;
- ``"progress"``: ten positions, progress deciles ``d = 0..9``. Goal ``k`` covers progress
  ``[k/L, (k+1)/L)`` (it starts in decile ``floor(10 k / L)``); position ``d`` holds the goal
  in force at progress ``d/10``, goal ``floor(d L / 10)``. Every run with a goal is at every
  position (a run of 3 goals holds goal 0 at deciles 0–3).

A reference list of expected goals (tau-bench's ground-truth actions) is aligned exactly as a
run is, giving the expected goal of a task at each position (none past its end under index).

Per position (:func:`goal_coherence`)
-------------------------------------
Goals are clustered per task across runs and positions (``method=``: ``"exact"`` keys;
``"text"``: :func:`~hotmess.analyzers.outcomes.text_clusters` on the goal text, i.e. the key
after its ``goal:``/``tool:``/``plan:`` prefix; ``"embedding"``:
:func:`~hotmess.analyzers.outcomes.embedding_clusters` on ``embed`` vectors of that text).
At position ``p``, for each task ``i`` with ``n`` runs there, each run is a one-hot ``f`` over
the task's goal clusters, ``p̄`` their distribution and ``y`` the one-hot expected goal
(:func:`~hotmess.analyzers.decompose.brier_by_task`)::

    variance_i = 1 − Σ_k p̄_k²            error_i = 2 (1 − p̄_y)        bias_i = ‖y − p̄‖²

    variance(p)    = mean_i variance_i            over every task with runs at p
    bias(p), error(p) = mean_i bias_i, error_i     over tasks with an expected goal at p
    incoherence(p) = Σ_i variance_i / Σ_i error_i  over tasks with an expected goal at p

(``None`` when no task has one, or ``Σ error = 0``). ``bias + variance = error`` holds per task,
and for the means when every task has an expected goal at ``p``. ``correction=True`` (the default) is
the unbiased small-sample form of :mod:`.decompose` per task and position: later positions hold
fewer runs, and the plug-in variance, low by ``(n−1)/n``, would fall with position even where
the true spread is constant (tasks with one run at ``p`` then drop out).

Runs with ``status == "incomplete"`` are left out, as in :func:`~hotmess.analyzers.analyze`.

Everything per task is in :func:`~hotmess.analyzers.goal_tasks.goal_figures` (clusters,
alignment, the sums per position, drift slopes); :func:`goal_combine` forms the figures above
from the sums over tasks. :func:`goal_coherence` is the combine of one record of all tasks; the
distributed engine (:mod:`hotmess.engine`) combines one record per task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.progress import Progress
from hotmess.results import Result
from hotmess.tables import Table

from .common import json_float
from .goal_drift import DRIFT_FROM, DRIFT_LIST_LIMIT, DriftingRun, GoalDrift, drift_summary
from .goal_keys import goal_bearing, plan_text, step_goals
from .goal_tasks import SUMS, GoalFigures, goal_figures
from .outcomes import ReadOnly

# goal keys and goal drift stay importable from here, where they were before goal_keys and
# goal_drift were split off
__all__ = [
    "ALIGNMENTS",
    "DRIFT_FROM",
    "DRIFT_LIST_LIMIT",
    "GOAL_METHODS",
    "DriftingRun",
    "GoalCoherence",
    "GoalDrift",
    "GoalPosition",
    "goal_bearing",
    "goal_coherence",
    "goal_combine",
    "no_goals_message",
    "plan_text",
    "step_goals",
]

ALIGNMENTS = ("index", "progress")
GOAL_METHODS = ("exact", "text", "embedding")
#: The variance trend uses positions holding at least this share of the runs at the fullest one.
TREND_MIN_SHARE = 0.5


@dataclass(frozen=True)
class GoalPosition(Result):
    """The spread of goals across runs at one position (``bias`` is bias²; nan: undefined).

    ``n_runs`` runs of ``n_tasks`` tasks have a goal there; ``goal_clusters`` is the number of
    distinct goal clusters summed over those tasks (a cluster belongs to one task);
    ``n_tasks_with_reference`` have an expected goal there (``bias``, ``error`` and
    ``incoherence`` are over those).
    """

    position: int
    n_runs: int
    n_tasks: int
    n_tasks_with_reference: int
    goal_clusters: int
    variance: float
    bias: float
    error: float
    incoherence: float


@dataclass(frozen=True)
class GoalCoherence(Result):
    """The result of :func:`goal_coherence`. ``to_dict()`` is JSON-safe.

    ``variance_slope`` is the least-squares slope of ``variance`` over the positions holding at
    least half as many runs as the fullest one (``trend_positions`` of them; nan with fewer
    than 2): positive when runs agree early and scatter later.
    """

    positions: tuple[GoalPosition, ...]
    goal_drift: GoalDrift
    align: str
    method: str
    n_runs: int
    n_runs_with_goals: int
    n_tasks: int
    n_goals: int
    read_only_excluded: bool
    variance_slope: float
    trend_positions: tuple[int, ...]
    warnings: tuple[str, ...] = ()

    @property
    def has_reference(self) -> bool:
        return any(p.n_tasks_with_reference for p in self.positions)

    def to_dict(self, drift_limit: int | None = DRIFT_LIST_LIMIT) -> dict[str, Any]:
        return {
            "positions": [p.to_dict() for p in self.positions],
            "goal_drift": self.goal_drift.to_dict(drift_limit),
            "align": self.align,
            "method": self.method,
            "n_runs": int(self.n_runs),
            "n_runs_with_goals": int(self.n_runs_with_goals),
            "n_tasks": int(self.n_tasks),
            "n_goals": int(self.n_goals),
            "read_only_excluded": bool(self.read_only_excluded),
            "has_reference": self.has_reference,
            "trend": {
                "variance_slope": json_float(self.variance_slope),
                "positions": list(self.trend_positions),
            },
            "warnings": list(self.warnings),
        }


def goal_coherence(
    runs: Table,
    steps: Table,
    *,
    align: str = "index",
    method: str = "exact",
    embed: Callable[[list[str]], Any] | None = None,
    reference_actions: Mapping[str, Sequence[Any]] | None = None,
    read_only: ReadOnly = None,
    drift_threshold: float = 0.1,
    drift_from: str = "first",
    instructions: Mapping[str, str | None] | None = None,
    distance_threshold: float = 0.5,
    correction: bool = True,
    progress: Progress | None = None,
) -> GoalCoherence:
    """Goal coherence per position and goal drift per run (formulas in the module docstring).

    Parameters
    ----------
    runs : the runs table; needs ``run_id`` and ``task_id``, uses ``status`` and ``reference``.
    steps : the steps table; needs ``run_id`` and ``kind``, uses ``step_index``, ``goal``,
        ``tool``, ``name``, ``input`` and ``output`` (see :func:`step_goals`).
    align : ``"index"`` (k-th goal) or ``"progress"`` (deciles of each run's goals).
    method : goal clusters per task: ``"exact"``, ``"text"`` (TF-IDF) or ``"embedding"``.
    embed : ``embed(list_of_texts) -> (n, d) array`` for ``method="embedding"``.
    reference_actions : ``{task_id: [expected goal, ...]}``, each a tool call (any form
        :func:`canonical_action` takes) or a ``str`` (an explicit goal text). Default: each
        task's ``reference`` column when it is a JSON list of actions (tau-bench's ground
        truth); tasks without one get variance only, as do tasks whose expected goals are of
        a kind their runs' goals never are (tool calls vs goal() texts; with a warning).
    read_only : tool calls that are not goals (and are dropped from reference actions too):
        None (default, every call is a goal), a predicate or a set of names; e.g.
        ``DEFAULT_READ_ONLY`` leaves out lookups.
    drift_threshold : runs whose drift slope exceeds this are listed.
    drift_from : goal drift measured from each run's ``"first"`` goal (default) or from its
        ``"instruction"`` (``method="text"`` or ``"embedding"`` only).
    instructions : ``{run_id: instruction text}`` for ``drift_from="instruction"`` (runs
        missing or ``None`` have none); default: the runs table's ``instruction`` column.
        :func:`hotmess.store.readers.read_instructions` reads them from a database.
    distance_threshold : cosine distance threshold of text / embedding clustering.
    correction : the unbiased small-sample form per task and position (default); False: plug-in.
    progress : ``progress(unit, done, total)`` (:mod:`hotmess.progress`), told the tasks
        clustered by ``method="text"`` (exact goals are compared for all tasks at once).
    """
    drift_threshold = _check_arguments(
        runs, steps, align, method, embed, drift_from, instructions, drift_threshold
    )
    figures = goal_figures(
        runs, steps, align=align, method=method, embed=embed, reference_actions=reference_actions,
        read_only=read_only, drift_from=drift_from, instructions=instructions,
        distance_threshold=distance_threshold, correction=correction, progress=progress,
    )
    return goal_combine([figures], align=align, method=method, read_only_excluded=read_only is not None,
                        drift_threshold=drift_threshold, drift_from=drift_from)


def goal_combine(
    records: Sequence[GoalFigures],
    *,
    align: str,
    method: str,
    read_only_excluded: bool,
    drift_threshold: float,
    drift_from: str = "first",
) -> GoalCoherence:
    """The :class:`GoalCoherence` of tasks whose :class:`~.goal_tasks.GoalFigures` were
    computed apart (each task in one record), ``records`` in the order of their runs (the run
    order breaks ties in the drifting list): the sums per position over every task, the means
    and ratios of them (module docstring), the variance trend and the drift of every run."""
    n_pos = max((r.sums.shape[1] for r in records), default=0)
    total = np.zeros((len(SUMS), n_pos))
    for r in records:
        total[:, : r.sums.shape[1]] += r.sums
    positions = _positions(total)
    lengths = np.concatenate([np.zeros(0, dtype=np.int64), *(r.lengths for r in records)])
    without = [r.runs_without_instruction for r in records if r.runs_without_instruction is not None]
    drift = drift_summary(
        _joined([r.run_ids for r in records]), _joined([r.run_tasks for r in records]),
        np.concatenate([np.zeros(0), *(r.slopes for r in records)]), lengths,
        threshold=float(drift_threshold), drift_from=drift_from,
        runs_without_instruction=sum(without) if drift_from == "instruction" else None,
    )
    warnings = []
    mismatched = sum(r.mismatched for r in records)
    if mismatched:
        warnings.append(
            f"{mismatched} tasks have expected goals of another kind than their runs' goals "
            "(tool calls vs goal() texts): no bias for them"
        )
    n_fitted = sum(r.n_fitted for r in records)
    if drift_from == "instruction" and n_fitted and not sum(r.n_fitted_instructed for r in records):
        warnings.append(
            f"none of the {n_fitted} runs with 3 goals or more has an "
            "instruction: no goal drift from the instruction"
        )
    slope, used = _variance_trend(positions)
    return GoalCoherence(
        positions=positions,
        goal_drift=drift,
        align=align,
        method=method,
        n_runs=len(lengths),
        n_runs_with_goals=int(np.count_nonzero(lengths)),
        n_tasks=sum(r.n_tasks for r in records),
        n_goals=sum(r.n_goals for r in records),
        read_only_excluded=read_only_excluded,
        variance_slope=slope,
        trend_positions=used,
        warnings=tuple(warnings),
    )


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    out = np.empty(sum(len(p) for p in parts), dtype=object)
    if len(out):
        out[:] = np.concatenate(parts)
    return out


def _check_arguments(
    runs: Table,
    steps: Table,
    align: str,
    method: str,
    embed: Callable[[list[str]], Any] | None,
    drift_from: str,
    instructions: Mapping[str, str | None] | None,
    drift_threshold: float,
) -> float:
    """ValueError with one sentence for a bad argument; the drift threshold as a float."""
    if not isinstance(runs, Table) or not isinstance(steps, Table):
        raise AnalysisError("runs and steps must be hotmess.tables.Table s")
    if align not in ALIGNMENTS:
        raise AnalysisError(f"align must be one of {', '.join(ALIGNMENTS)}, got {align!r}")
    if method not in GOAL_METHODS:
        raise AnalysisError(f"method must be one of {', '.join(GOAL_METHODS)}, got {method!r}")
    if method == "embedding" and embed is None:
        raise AnalysisError("method='embedding' needs embed=callable(texts) -> vectors")
    if drift_from not in DRIFT_FROM:
        raise AnalysisError(f"drift_from must be one of {', '.join(DRIFT_FROM)}, got {drift_from!r}")
    if drift_from == "instruction":
        if method == "exact":
            raise AnalysisError(
                "drift_from='instruction' needs method='text' or 'embedding': an exact goal key "
                "(a tool call, a goal() text) never equals an instruction, so every distance would be 1"
            )
        if instructions is None and "instruction" not in runs:
            raise AnalysisError(
                "drift_from='instruction' needs instructions={run_id: text} or an 'instruction' "
                "column in runs (hotmess.store.readers.read_instructions reads them)"
            )
    threshold = float(drift_threshold)
    if not np.isfinite(threshold):
        raise AnalysisError(f"drift_threshold must be finite, got {threshold}")
    for name in ("run_id", "task_id"):
        if name not in runs:
            raise AnalysisError(f"runs has no {name!r} column; columns are {', '.join(runs.columns)}")
    if len(steps) and "run_id" not in steps:
        raise AnalysisError(f"steps has no 'run_id' column; columns are {', '.join(steps.columns)}")
    return threshold


def _positions(total: np.ndarray) -> tuple[GoalPosition, ...]:
    """The figures per position from the :data:`~.goal_tasks.SUMS` over every task."""
    n_runs, n_cells, n_ref, clusters, var_all, var_all_n, var_ref, bias, err, err_n = total
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.where(var_all_n > 0, var_all / var_all_n, np.nan)
        bias_mean = np.where(err_n > 0, bias / err_n, np.nan)
        err_mean = np.where(err_n > 0, err / err_n, np.nan)
        incoherence = np.where((err_n > 0) & (err > 0), var_ref / err, np.nan)
    return tuple(
        GoalPosition(
            position=p,
            n_runs=int(n_runs[p]),
            n_tasks=int(n_cells[p]),
            n_tasks_with_reference=int(n_ref[p]),
            goal_clusters=int(clusters[p]),
            variance=float(variance[p]),
            bias=float(bias_mean[p]),
            error=float(err_mean[p]),
            incoherence=float(incoherence[p]),
        )
        for p in range(total.shape[1])
        if n_runs[p]
    )


def _variance_trend(positions: tuple[GoalPosition, ...]) -> tuple[float, tuple[int, ...]]:
    if not positions:
        return float("nan"), ()
    fullest = max(p.n_runs for p in positions)
    used = [
        p
        for p in positions
        if p.n_runs >= TREND_MIN_SHARE * fullest and np.isfinite(p.variance)
    ]
    if len(used) < 2:
        return float("nan"), tuple(p.position for p in used)
    x = np.array([p.position for p in used], dtype=np.float64)
    y = np.array([p.variance for p in used], dtype=np.float64)
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x**2).sum()), tuple(p.position for p in used)


def no_goals_message(where: str, task: str | None, skip_read_only: bool) -> str:
    """What to tell someone whose runs (in ``where``) hold no goal-bearing step."""
    return (
        f"no goal-bearing steps in {where}" + (f" for task {task!r}" if task else "")
        + ": goals come from hotmess.goal(), tool calls"
        + (" that are not read-only" if skip_read_only else "")
        + ", or LLM steps stating a plan ('plan: ...')"
    )
