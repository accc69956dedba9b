"""The analysis pipeline: run/step tables in, one :class:`Analysis` (per group) out.

``analyze(runs, steps)`` does, per task:

1. drops runs with ``status == "incomplete"`` (counted in ``n_incomplete``);
2. maps each run's outcome to a key (``outcome=``: exact, actions, text, embedding or a callable);
3. judges each run: **correct iff ``success == 1``** when success is known; otherwise iff its key
   equals the key of the task's reference (mapped through the same mapper). ``checks``, ``mse``
   and ``kl`` judge a run without a known success by their own target (all checks pass; score
   equals the target; arg-max class equals the reference's);
4. harmonises outcome clusters with the verdicts (see below) and decomposes error into bias and
   variance (``decomposition=``: brier, checks, kl, mse, embedding);
5. aggregates: incoherence ``Σ variance / Σ error`` with a bootstrap CI, failure consistency,
   pass^k and pass@k.

**Harmonisation of clusters with verdicts.** When every run of a task has a verdict, the task's
reference cluster is defined by the verdicts: every correct run is put in the reference cluster
(a run judged successful produced the reference outcome, whatever its raw key), and a run judged
failed whose key happens to equal the reference's key is split off into its own cluster
``"<judged failed> " + key``. So ``p̄_y`` is exactly the task's success rate and the Brier error
is ``2 (1 − success rate)``. If success is known for a task but it has no reference, the correct
runs form the reference cluster ``"<correct>"``. A task where some run has no verdict (no
success, no reference) gets variance only, over the raw keys.

**Top-level bias, variance and error** are means over the tasks with a reference (so the
identity ``error = bias + variance`` holds for them too); ``variance_all_tasks`` is the mean
variance over every task. When no task has a reference, ``variance`` is the mean over all tasks
and bias, error and incoherence are None.

This module checks the arguments, reads the tables into arrays and splits them by ``by=``;
the steps live in :mod:`.outcome_keys` (2), :mod:`.group` (3–5, one set of runs),
:mod:`.decomposers` (4) and :mod:`.examples` (each task's clusters); the results are in
:mod:`.results`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.progress import Progress
from hotmess.tables import RUN_COLUMNS, Table
from hotmess.vocab.attributes import CHECKS

from .actions import collect_actions
from .columns import NO_GROUP, column, float_column, group_values
from .common import check_confidence, check_n_boot, natural_key
from .decomposers import DECOMPOSITIONS
from .group import TaskFigures
from .group import combine as combine_figures
from .group import task_figures as group_figures
from .incoherence import INTERVALS, IncoherenceDifference, incoherence_difference
from .inputs import AnalysisOptions, RunArrays
from .outcome_keys import INCOMPLETE_KEY, crash_key
from .outcomes import DEFAULT_READ_ONLY, ReadOnly, read_only_predicate
from .results import Analysis, GroupedAnalysis

__all__ = [
    "CHECKS_ATTRIBUTE",
    "DECOMPOSITIONS",
    "INCOMPLETE",
    "OUTCOME_METHODS",
    "TaskFigures",
    "analysis_options",
    "analyze",
    "GroupFigures",
    "combine",
    "combine_groups",
    "grouped_figures",
    "task_figures",
]

OUTCOME_METHODS = ("exact", "actions", "text", "embedding")
#: Run attribute holding explicit checks: a JSON object ``{check name: bool}``
#: (:data:`hotmess.vocab.attributes.CHECKS`).
CHECKS_ATTRIBUTE = CHECKS
#: What ``incomplete=`` does with runs that never ended.
INCOMPLETE = ("drop", "fail")
#: With more groups than this, ``by`` compares every group with the first one, not pairwise.
MAX_PAIRWISE_GROUPS = 6


def analyze(
    runs: Table,
    steps: Table | None = None,
    *,
    outcome: str | Callable[[Any], Hashable] = "exact",
    decomposition: str = "brier",
    by: str | None = None,
    correction: bool = True,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    interval: str = "jackknife",
    incomplete: str = "drop",
    read_only: ReadOnly = DEFAULT_READ_ONLY,
    distance_threshold: float = 0.5,
    embed: Callable[[list[str]], Any] | None = None,
    progress: Progress | None = None,
) -> Analysis | GroupedAnalysis:
    """Analyze runs: bias, variance, incoherence, failure consistency, pass^k — per task and overall.

    Parameters
    ----------
    runs : the runs table (:data:`hotmess.tables.RUN_COLUMNS`; needs ``task_id`` and
        ``outcome``, uses ``status``, ``success``, ``reference``, ``score``, ``attributes``).
    steps : the steps table, for ``outcome="actions"`` and for checks built from reference
        actions (tool steps: ``kind == "tool"``, ordered by ``step_index``, tool name in
        ``tool``, arguments JSON in ``input``).
    outcome : how outcomes become keys: ``"exact"`` (normalised text / canonical JSON),
        ``"actions"`` (state-changing tool calls), ``"text"`` (TF-IDF clusters per task),
        ``"embedding"`` (clusters of ``embed`` vectors per task) or a callable
        ``fn(outcome_text) -> hashable``.
    decomposition : ``"brier"`` (outcome clusters), ``"checks"`` (0/1 checks per run, from the
        ``hotmess.checks`` attribute or the reference's expected actions), ``"kl"`` (JSON
        probability vectors), ``"mse"`` (``score`` against a numeric reference, else 1.0),
        ``"embedding"`` (spread of ``embed`` vectors).
    by : a runs column (e.g. ``"agent"``) or a key of the ``attributes`` JSON (e.g.
        ``"gen_ai.request.model"``): analyze each group and compare their incoherence.
    correction : the unbiased small-sample form (default): variance·n/(n−1),
        bias² − variance/(n−1), error unchanged (:mod:`.decompose`); False: the plug-in figures.
        Either way a task with one run is left out of incoherence (it shows no variance), and
        ``n_single_run_tasks`` says how many were.
    n_boot, confidence, seed, interval : the incoherence interval over tasks
        (:func:`~hotmess.analyzers.incoherence`: ``"jackknife"`` by default, or ``"bootstrap"``
        with ``n_boot`` resamples; ``n_boot=0``: no interval). Comparisons under ``by`` are
        paired over the tasks both groups share.
    incomplete : runs that never ended (status ``incomplete``): ``"drop"`` (default: a live
        database holds runs still in flight, which are not failures) leaves them out and counts
        them; ``"fail"`` counts each as a failed run in an outcome cluster of its own
        (``<incomplete>``), for databases where a run that did not end died.
    read_only : which tool calls do not change state (predicate, set of names or None).
    distance_threshold : cosine distance threshold of the text/embedding clustering.
    embed : ``embed(list_of_texts) -> (n, d) array``, for ``outcome="embedding"`` or
        ``decomposition="embedding"`` (see ``sentence_transformer_embedder``).
    progress : ``progress(unit, done, total)`` (:mod:`hotmess.progress`), told the tasks
        clustered by ``outcome="text"`` (the other mappers work on all tasks at once).
    """
    opts = _options(
        runs, steps, outcome=outcome, decomposition=decomposition, correction=correction,
        n_boot=n_boot, confidence=confidence, seed=seed, interval=interval, incomplete=incomplete,
        read_only=read_only, distance_threshold=distance_threshold, embed=embed, progress=progress,
    )
    if by is None:
        return combine([task_figures(runs, steps, opts)], opts)
    return combine_groups(by, [grouped_figures(runs, steps, by, opts)], opts)


@dataclass(frozen=True, eq=False)
class GroupFigures:
    """The figures of a set of whole tasks split by a runs column or attribute ``by``: per
    group, the task figures of its runs and how many runs count in its analysis (the complete
    ones; all with ``incomplete="fail"``); and the counted runs with no value of ``by``."""

    figures: dict[str, TaskFigures]
    counted: dict[str, int]
    missing: int


def grouped_figures(runs: Table, steps: Table | None, by: str, options: AnalysisOptions, *,
                    check: bool = True) -> GroupFigures:
    """The :class:`GroupFigures` of the runs of whole tasks (one task's, or many): each
    group's runs through :func:`task_figures`, as ``analyze(by=...)`` does. ``check=False``
    leaves the check that some run has ``by`` to :func:`combine_groups`'s caller
    (:func:`~hotmess.analyzers.columns.group_values`)."""
    group_all = group_values(runs, by, column(runs, "attributes"), check=check)
    incomplete_runs = np.fromiter((s == "incomplete" for s in column(runs, "status")), dtype=bool,
                                  count=len(runs))
    counts = np.ones(len(runs), dtype=bool) if options.incomplete == "fail" else ~incomplete_runs
    figures: dict[str, TaskFigures] = {}
    counted: dict[str, int] = {}
    for name in sorted(set(group_all.tolist()), key=natural_key):
        rows = np.flatnonzero(group_all == name)
        figures[name] = task_figures(runs.take(rows), steps, options)
        counted[name] = int(counts[rows].sum())
    return GroupFigures(figures, counted, int(np.sum((group_all == NO_GROUP) & counts)))


def combine_groups(by: str, parts: Sequence[GroupFigures], options: AnalysisOptions) -> GroupedAnalysis:
    """The :class:`GroupedAnalysis` of the tasks of several :func:`grouped_figures` (each task
    in one of them): each group's analysis by :func:`combine`, and the groups compared."""
    names = sorted({n for p in parts for n, c in p.counted.items() if c}, key=natural_key)
    warnings = []
    if NO_GROUP in names:
        missing = sum(p.missing for p in parts)
        warnings.append(f"{missing} runs have no {by!r}: grouped as '<none>'")
    groups = {name: combine([p.figures[name] for p in parts if name in p.figures], options) for name in names}
    differences = _differences(groups, options, warnings)
    n_incomplete = sum(f.n_incomplete for p in parts for f in p.figures.values())
    return GroupedAnalysis(by, groups, tuple(differences), n_incomplete, tuple(warnings))


def analysis_options(
    runs: Table | None = None,
    steps: Table | None = None,
    *,
    outcome: str | Callable[[Any], Hashable] = "exact",
    decomposition: str = "brier",
    correction: bool = True,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | None = 0,
    interval: str = "jackknife",
    incomplete: str = "drop",
    read_only: ReadOnly = DEFAULT_READ_ONLY,
    distance_threshold: float = 0.5,
    embed: Callable[[list[str]], Any] | None = None,
    progress: Progress | None = None,
) -> AnalysisOptions:
    """The checked options of :func:`analyze` (its parameters, without ``by``), for
    :func:`task_figures` and :func:`combine`; ``runs`` defaults to an empty runs table (the
    options of an analysis whose runs are elsewhere: on the workers of an engine)."""
    return _options(
        Table.empty(RUN_COLUMNS) if runs is None else runs, steps, outcome=outcome,
        decomposition=decomposition, correction=correction, n_boot=n_boot, confidence=confidence,
        seed=seed, interval=interval, incomplete=incomplete, read_only=read_only,
        distance_threshold=distance_threshold, embed=embed, progress=progress,
    )


def task_figures(runs: Table, steps: Table | None, options: AnalysisOptions) -> TaskFigures:
    """The per-task figures (:class:`~.group.TaskFigures`) of the runs of whole tasks — one
    task's runs or many tasks' — and their tool steps (for ``outcome="actions"`` and
    ``decomposition="checks"``): every formula that needs a task's runs is applied here.

    The figures of any partition of the tasks, put together by :func:`combine`, are the
    analysis of all of them: ``analyze(runs, steps)`` is
    ``combine([task_figures(runs, steps, options)], options)``, and an engine computes
    ``task_figures`` of each task where the task's rows are and combines on the driver."""
    data, incomplete_runs, _ = _prepare(runs, steps, options)
    return group_figures(data, options, int(incomplete_runs.sum()))


def combine(figures: Sequence[TaskFigures], options: AnalysisOptions) -> Analysis:
    """The :class:`Analysis` of the tasks of several :func:`task_figures` (each task in one of
    them): incoherence ``Σ variance / Σ error`` with its interval over tasks, pooled failure
    consistency, success rate, pass^k, the means and the warnings."""
    return combine_figures(figures, options, options.incomplete == "fail")


def _prepare(
    runs: Table, steps: Table | None, opts: AnalysisOptions
) -> tuple[RunArrays, np.ndarray, np.ndarray]:
    """The runs analyzed (:func:`_run_arrays`), which of all runs never ended, and the rows
    of the runs analyzed (all with ``incomplete="fail"``)."""
    n_all = len(runs)
    status = column(runs, "status")
    incomplete_runs = np.fromiter((s == "incomplete" for s in status), dtype=bool, count=n_all)
    counted = opts.incomplete == "fail"
    complete = np.arange(n_all) if counted else np.flatnonzero(~incomplete_runs)
    data = _run_arrays(runs, steps, status, incomplete_runs, complete, counted, opts)
    return data, incomplete_runs, complete


def _options(
    runs: Table,
    steps: Table | None,
    *,
    outcome: str | Callable[[Any], Hashable],
    decomposition: str,
    correction: bool,
    n_boot: int,
    confidence: float,
    seed: int | None,
    interval: str,
    incomplete: str,
    read_only: ReadOnly,
    distance_threshold: float,
    embed: Callable[[list[str]], Any] | None,
    progress: Progress | None,
) -> AnalysisOptions:
    """The arguments of :func:`analyze`, checked (ValueError with one sentence otherwise)."""
    if not isinstance(runs, Table):
        raise AnalysisError(f"runs must be a hotmess.tables.Table, got {type(runs).__name__}")
    if steps is not None and not isinstance(steps, Table):
        raise AnalysisError(
            f"steps must be a hotmess.tables.Table or None, got {type(steps).__name__}"
        )
    if isinstance(outcome, str):
        if outcome not in OUTCOME_METHODS:
            raise AnalysisError(
                f"outcome must be one of {', '.join(OUTCOME_METHODS)} or a callable, got {outcome!r}"
            )
    elif not callable(outcome):
        raise AnalysisError(
            f"outcome must be a method name or a callable, got {type(outcome).__name__}"
        )
    if incomplete not in INCOMPLETE:
        raise AnalysisError(f"incomplete must be one of {', '.join(INCOMPLETE)}, got {incomplete!r}")
    if interval not in INTERVALS:
        raise AnalysisError(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    if decomposition not in DECOMPOSITIONS:
        raise AnalysisError(
            f"decomposition must be one of {', '.join(DECOMPOSITIONS)}, got {decomposition!r}"
        )
    if (outcome == "embedding" or decomposition == "embedding") and embed is None:
        raise AnalysisError(
            "embedding outcomes need embed=callable(texts) -> vectors, e.g. "
            "hotmess.analyzers.sentence_transformer_embedder('all-MiniLM-L6-v2')"
        )
    threshold = float(distance_threshold)
    if not math.isfinite(threshold) or threshold < 0:
        raise AnalysisError(
            f"distance_threshold must be a finite number >= 0, got {distance_threshold}"
        )
    for name in ("task_id", "outcome"):
        if name not in runs:
            raise AnalysisError(f"runs has no {name!r} column; columns are {', '.join(runs.columns)}")
    return AnalysisOptions(
        outcome=outcome,
        decomposition=decomposition,
        correction=bool(correction),
        n_boot=check_n_boot(n_boot),
        confidence=check_confidence(confidence),
        seed=seed,
        interval=interval,
        read_only=read_only_predicate(read_only),
        distance_threshold=threshold,
        embed=embed,
        progress=progress,
        incomplete=incomplete,
    )


def _run_arrays(
    runs: Table,
    steps: Table | None,
    status: np.ndarray,
    incomplete_runs: np.ndarray,
    complete: np.ndarray,
    counted: bool,
    opts: AnalysisOptions,
) -> RunArrays:
    """The rows ``complete`` of the runs as arrays: a crash keyed by its exception type, with
    ``counted`` (``incomplete="fail"``) a run that never ended as a failed ``<incomplete>`` run,
    and the runs' tool calls when the outcome or the decomposition needs them."""
    n_all = len(runs)
    errors = column(runs, "error")
    outcomes = runs["outcome"]
    ending = np.empty(n_all, dtype=object)
    ending[:] = [
        crash_key(e) if s == "error" and o is None else None
        for s, o, e in zip(status, outcomes, errors, strict=True)
    ]
    success_all = float_column(runs, "success")
    if counted:
        ending[incomplete_runs] = INCOMPLETE_KEY
        success_all = success_all.copy()
        success_all[incomplete_runs] = 0.0
    task = np.array(["<none>" if t is None else str(t) for t in runs["task_id"][complete]], dtype=object)
    data = RunArrays(
        task=task,
        outcome=outcomes[complete],
        success=_crash_verdicts(task, success_all[complete], ending[complete],
                                column(runs, "reference")[complete]),
        reference=column(runs, "reference")[complete],
        score=float_column(runs, "score")[complete],
        attributes=column(runs, "attributes")[complete],
        ending=ending[complete],
        error=errors[complete],
    )
    need_actions = opts.outcome == "actions"
    need_pieces = opts.decomposition == "checks"
    if need_actions or need_pieces:
        run_ids = column(runs, "run_id")[complete]
        keys, pieces = collect_actions(run_ids, data.outcome, steps, opts.read_only, need_pieces)
        data.action_key = keys
        data.pieces = pieces
    return data


def _crash_verdicts(task: np.ndarray, success: np.ndarray, ending: np.ndarray,
                    reference: np.ndarray) -> np.ndarray:
    """Success with a crash's failure kept only where it is not the task's only verdict.

    The tracer records a crashed run as failed. In a task whose runs that ended normally have
    no verdict (no success recorded, no reference), that failure would be the only verdict left,
    and the task would read as failing every time; there the crash is an outcome like the others
    (its own cluster) and the task, having no verdicts, measures variance only."""
    crashed = np.fromiter((e is not None for e in ending), dtype=bool, count=len(ending))
    if not crashed.any():
        return success
    judged = (np.isfinite(success) & ~crashed) | np.fromiter(
        (r is not None for r in reference), dtype=bool, count=len(reference))
    out = success
    for name in set(task[crashed].tolist()):
        rows = task == name
        if not judged[rows].any() and (~crashed[rows]).any():
            if out is success:
                out = success.copy()
            out[rows & crashed] = np.nan
    return out


def _differences(
    groups: dict[str, Analysis], opts: AnalysisOptions, warnings: list[str]
) -> list[IncoherenceDifference]:
    """Each pair of groups compared; paired over the tasks they share when they share two or more
    (each task's own difficulty then cancels out of the difference)."""
    names = list(groups)
    if len(names) <= MAX_PAIRWISE_GROUPS:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    else:
        pairs = [(names[0], b) for b in names[1:]]
    usable = {name: _incoherence_tasks(groups[name]) for name in names}
    out = []
    for a, b in pairs:
        tasks_a, tasks_b = usable[a], usable[b]
        shared = [t for t in tasks_a if t in tasks_b]
        paired = len(shared) >= 2
        if paired:
            if len(shared) < max(len(tasks_a), len(tasks_b)):
                warnings.append(
                    f"{a} vs {b}: compared on the {len(shared)} tasks both have "
                    f"({len(tasks_a)} and {len(tasks_b)} in all), paired task by task"
                )
            side_a = tuple(np.array([tasks_a[t][i] for t in shared]) for i in (0, 1))
            side_b = tuple(np.array([tasks_b[t][i] for t in shared]) for i in (0, 1))
        else:
            side_a = tuple(np.array([pair[i] for pair in tasks_a.values()]) for i in (0, 1))
            side_b = tuple(np.array([pair[i] for pair in tasks_b.values()]) for i in (0, 1))
        out.append(
            incoherence_difference(
                side_a,
                side_b,
                paired=paired,
                n_boot=opts.n_boot,
                confidence=opts.confidence,
                seed=opts.seed,
                method=opts.decomposition,
                labels=(a, b),
                interval=opts.interval,
            )
        )
    return out


def _incoherence_tasks(analysis: Analysis) -> dict[str, tuple[float, float]]:
    """task id → (variance, error) of the tasks that count in the group's incoherence."""
    return {
        t.task_id: (t.variance, t.error)
        for t in analysis.tasks
        if t.n >= 2 and math.isfinite(t.variance) and math.isfinite(t.error)
    }
