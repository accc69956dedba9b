"""One set of runs through the analysis: verdicts, harmonised clusters, decomposition, aggregates.

:func:`analyze_group` is what :func:`~hotmess.analyzers.analyze` does for all runs, or for each
group under ``by=`` (the steps are in :mod:`.analysis`'s docstring):

- **verdicts** — a run is correct iff ``success == 1`` when success is known; otherwise the
  decomposer judges it (:mod:`.decomposers`: by key against the task's reference, all checks
  pass, score equals target, arg-max is the reference class) or it has no verdict. In a task where
  some runs have a verdict and others not, those without one are left out (and said so).
- **harmonised clusters** — in a task where every run has a verdict, every correct run is put in
  the reference cluster (its key, or ``"<correct>"`` without a reference) and a failed run whose
  key equals the reference's is split off as ``"<judged failed> " + key``.
- **aggregates** — incoherence ``Σ variance / Σ error`` over the tasks with two runs or more
  (:func:`~.incoherence.incoherence`), failure consistency (:mod:`.failures`), pass^k and pass@k
  (:mod:`.passk`) over the judged tasks; top-level bias, variance and error are means over the
  tasks with a reference, ``variance_all_tasks`` the mean variance over every task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .actions import task_references
from .common import factorize, natural_codes, natural_key
from .decompose import TaskDecompositions
from .decomposers import DECOMPOSERS, Decomposer, GroupRuns
from .examples import task_clusters
from .failures import FailureConsistency, failure_consistency
from .incoherence import Incoherence, incoherence
from .inputs import AnalysisOptions, RunArrays
from .outcome_keys import outcome_keys
from .passk import pass_at_k, pass_hat_k
from .results import Analysis, TaskResult

__all__ = [
    "CORRECT_KEY",
    "JUDGED_FAILED_PREFIX",
    "MIN_RUNS_WARNING",
    "MIN_TASKS_WARNING",
    "TaskFigures",
    "analyze_group",
    "combine",
    "empty_analysis",
    "merge_warnings",
    "task_figures",
]

CORRECT_KEY = "<correct>"
JUDGED_FAILED_PREFIX = "<judged failed> "
#: Below this many runs per task the warning says so. The interval still covers at 3 runs per task
#: (bench/stats_coverage.py); at 2, each task's variance rests on one pair of runs.
MIN_RUNS_WARNING = 3
#: Below this many tasks the interval covers less than it says (0.91–0.92 for 95% at 10 tasks).
MIN_TASKS_WARNING = 30


def analyze_group(
    data: RunArrays,
    opts: AnalysisOptions,
    n_incomplete: int,
    counted: bool,
    notes: tuple[str, ...] = (),
) -> Analysis:
    """The :class:`Analysis` of one set of complete runs (``notes``: warnings said so far):
    :func:`combine` of the :func:`task_figures` of all of them at once."""
    return combine([task_figures(data, opts, n_incomplete, notes)], opts, counted)


@dataclass(frozen=True, eq=False)
class TaskFigures:
    """The per-task figures of a set of whole tasks (one task, or many), in natural order of the
    task ids: everything :func:`combine` needs to form the analysis of a union of such sets.

    Per task: run count ``n``, correct runs ``successes`` (counted only where ``task_judged``),
    runs with a verdict ``n_judged`` and correct ones ``n_correct``, the decomposition ``dec``,
    failed runs ``failures`` with their ``failure_consistency``, ``failure_entropy`` and
    same-cluster pair count ``failure_pairs``, ``n_clusters`` and the ``clusters`` listing;
    plus the warnings said about these tasks and ``n_incomplete`` runs left out.
    """

    task_ids: list[str]
    n: np.ndarray
    successes: np.ndarray
    task_judged: np.ndarray
    n_judged: np.ndarray
    n_correct: np.ndarray
    dec: TaskDecompositions
    failures: np.ndarray
    failure_consistency: np.ndarray
    failure_entropy: np.ndarray
    failure_pairs: np.ndarray
    n_clusters: np.ndarray
    clusters: list
    warnings: tuple[str, ...] = ()
    n_incomplete: int = 0

    def __len__(self) -> int:
        return len(self.task_ids)


def task_figures(
    data: RunArrays,
    opts: AnalysisOptions,
    n_incomplete: int = 0,
    notes: tuple[str, ...] = (),
) -> TaskFigures:
    """The :class:`TaskFigures` of a set of complete runs of whole tasks: verdicts, harmonised
    clusters, decomposition and failure consistency of each task. Each task's figures depend
    on its own runs only, so the figures of tasks computed apart (on the workers of an engine)
    put together by :func:`combine` are those of the tasks computed together."""
    warnings: list[str] = list(notes)
    if len(data.task) == 0:
        return _no_figures(opts, n_incomplete, tuple(warnings))

    task, task_ids = natural_codes(data.task.tolist())  # tasks in natural order of their ids
    n_tasks = len(task_ids)
    n = np.bincount(task, minlength=n_tasks)
    references, conflicts = task_references(task, data.reference, n_tasks)
    if conflicts:
        warnings.append(
            f"{conflicts} tasks have runs with different references: the most common one is used"
        )
    keys, ref_keys, examples = outcome_keys(data, task, references, opts, warnings)
    group = GroupRuns(data, task, n_tasks, references, keys, ref_keys, opts, warnings)
    decomposer: Decomposer = DECOMPOSERS[opts.decomposition](group)
    correct, judged = _verdicts(data.success, decomposer.run_verdicts())

    task_judged, drop = _judged_tasks(task, n, judged, warnings)
    if drop is not None:
        return task_figures(data.take(np.flatnonzero(~drop)), opts, n_incomplete, tuple(warnings))

    labels, task_ref_label = _harmonise(keys, ref_keys, task, task_judged, correct)
    label_codes, label_uniques = factorize(labels.tolist())
    hit = task_judged[task] & correct
    dec = decomposer.decompose(label_codes, hit, task_judged)

    failed = task_judged[task] & ~correct
    fc = failure_consistency(label_codes, failed, task, n_tasks=n_tasks)
    successes = np.bincount(task, weights=hit.astype(np.float64), minlength=n_tasks).astype(
        np.int64
    )
    clusters, n_clusters = task_clusters(
        task, n_tasks, label_codes, label_uniques, examples, task_judged, task_ref_label
    )
    return TaskFigures(
        task_ids=task_ids,
        n=n,
        successes=successes,
        task_judged=task_judged,
        n_judged=np.bincount(task, minlength=n_tasks, weights=judged.astype(np.float64)).astype(
            np.int64),
        n_correct=np.bincount(task, minlength=n_tasks,
                              weights=(correct & judged).astype(np.float64)).astype(np.int64),
        dec=dec,
        failures=fc.failures,
        failure_consistency=fc.consistency,
        failure_entropy=fc.entropy,
        failure_pairs=fc.same_pairs,
        n_clusters=np.asarray(n_clusters, dtype=np.int64),
        clusters=list(clusters),
        warnings=tuple(warnings),
        n_incomplete=n_incomplete,
    )


def _no_figures(opts: AnalysisOptions, n_incomplete: int, warnings: tuple[str, ...]) -> TaskFigures:
    empty_i = np.zeros(0, dtype=np.int64)
    empty_f = np.zeros(0, dtype=np.float64)
    dec = TaskDecompositions(empty_f, empty_f, empty_f, empty_i, np.zeros(0, dtype=bool),
                             opts.decomposition, opts.correction)
    return TaskFigures([], empty_i, empty_i, np.zeros(0, dtype=bool), empty_i, empty_i, dec,
                       empty_i, empty_f, empty_f, empty_f, empty_i, [], warnings, n_incomplete)


def combine(figures: Sequence[TaskFigures], opts: AnalysisOptions, counted: bool) -> Analysis:
    """The :class:`Analysis` of the union of sets of tasks from their :class:`TaskFigures`:
    the ratios of sums (incoherence with its interval over tasks, pooled failure consistency),
    success rate, pass^k and pass@k, the means, and the warnings over all of them. The tasks
    are taken in natural order of their ids, whatever the order of ``figures``."""
    n_incomplete = sum(f.n_incomplete for f in figures)
    warnings = merge_warnings([f.warnings for f in figures])
    f = _concatenate(figures, opts)
    n_tasks = len(f.task_ids)
    if n_tasks == 0:
        return empty_analysis(opts, n_incomplete, counted)
    n, dec = f.n, f.dec
    n_judged, n_correct = int(f.n_judged.sum()), int(f.n_correct.sum())
    success_rate = float(np.float64(n_correct) / n_judged) if n_judged else float("nan")
    task_judged = f.task_judged
    if task_judged.any():
        pass_hat = pass_hat_k(n[task_judged], f.successes[task_judged])
        pass_at = pass_at_k(n[task_judged], f.successes[task_judged])
    else:
        pass_hat, pass_at = {}, {}
    m = f.failures.astype(np.float64)
    all_pairs = m * (m - 1)
    total = all_pairs.sum()
    fc = FailureConsistency(
        float(f.failure_pairs.sum() / total) if total > 0 else float("nan"),
        f.failures, f.failure_consistency, f.failure_entropy, int((m >= 2).sum()),
        f.failure_pairs,
    )
    totals = _totals(dec, n, opts)
    tasks = _task_results(f.task_ids, n, f.successes, task_judged, dec, f.n_clusters, fc,
                          f.clusters)
    _warn(warnings, n, totals, opts, DECOMPOSERS[opts.decomposition].missing)
    return Analysis(
        n_tasks=n_tasks,
        n_runs=int(n.sum()),
        n_incomplete=n_incomplete,
        success_rate=success_rate,
        pass_hat_k=pass_hat,
        pass_at_k=pass_at,
        bias=totals.bias,
        variance=totals.variance,
        error=totals.error,
        variance_all_tasks=totals.variance_all,
        incoherence=totals.incoherence,
        failure_consistency=fc.value,
        failure_entropy=_nanmean(fc.entropy),
        tasks=tasks,
        min_runs_per_task=int(n.min()),
        median_runs_per_task=float(np.median(n)),
        has_reference=totals.n_with_ref > 0,
        n_tasks_with_reference=totals.n_with_ref,
        decomposition=opts.decomposition,
        outcome=opts.outcome_name,
        correction=opts.correction,
        warnings=tuple(warnings),
        n_single_run_tasks=totals.n_single,
        failure_diversity=fc.diversity,
        incomplete="fail" if counted else "drop",
        n_incomplete_counted=n_incomplete if counted else 0,
    )


def _concatenate(figures: Sequence[TaskFigures], opts: AnalysisOptions) -> TaskFigures:
    """One :class:`TaskFigures` of all tasks, in natural order of their ids."""
    if len(figures) == 1:
        return figures[0]
    if not figures:
        return _no_figures(opts, 0, ())
    ids = [t for f in figures for t in f.task_ids]
    if len(set(ids)) != len(ids):
        raise ValueError("a task's runs are split between two sets of figures: group by task")
    order = np.array(sorted(range(len(ids)), key=lambda i: natural_key(ids[i])), dtype=np.int64)

    def cat(name: str, source=lambda f, name: getattr(f, name)) -> np.ndarray:
        return np.concatenate([np.asarray(source(f, name)) for f in figures])[order]

    def dec_cat(name: str) -> np.ndarray:
        return cat(name, lambda f, name: getattr(f.dec, name))

    dec = TaskDecompositions(dec_cat("bias"), dec_cat("variance"), dec_cat("error"), dec_cat("n"),
                             dec_cat("has_reference"), opts.decomposition, opts.correction)
    clusters = [
        _renumbered(c, local, int(place))
        for c, local, place in zip(
            [c for f in figures for c in f.clusters],
            [t for f in figures for t in range(len(f))],
            np.argsort(order), strict=True,
        )
    ]
    return TaskFigures(
        task_ids=[ids[i] for i in order],
        n=cat("n"),
        successes=cat("successes"),
        task_judged=cat("task_judged"),
        n_judged=cat("n_judged"),
        n_correct=cat("n_correct"),
        dec=dec,
        failures=cat("failures"),
        failure_consistency=cat("failure_consistency"),
        failure_entropy=cat("failure_entropy"),
        failure_pairs=cat("failure_pairs"),
        n_clusters=cat("n_clusters"),
        clusters=[clusters[i] for i in order],
    )


#: A cluster key named after its task's code (``text:<code>:<j>``, :func:`~.outcomes.text_clusters`).
_CODED_KEY = re.compile(r"^((?:<judged failed> )?(?:text|embedding):)(\d+)(:.*)$", re.DOTALL)


def _renumbered(clusters: list, local: int, place: int) -> list:
    """A task's clusters with the keys named after its code among the tasks it was computed
    with (``local``) renamed after its place among all tasks (``place``)."""
    if local == place:
        return clusters
    out = []
    for c in clusters:
        match = None if c.key is None else _CODED_KEY.match(c.key)
        if match and int(match.group(2)) == local:
            c = replace(c, key=f"{match.group(1)}{place}{match.group(3)}")
        out.append(c)
    return out


#: A count in a warning: a whole number between words ("3 tasks have", "in 2 tasks"), not the
#: digits of a figure ("target 1.0 used").
_NUMBER = re.compile(r"(?<![\w.])(\d+)(?= )")


def merge_warnings(lists: Sequence[Sequence[str]]) -> list[str]:
    """The warnings of several sets of tasks as one list: warnings that differ only in their
    counts ("2 tasks have ...", "3 tasks have ...") become one with the counts added, in order
    of first appearance (the k-th occurrence of a wording within one set merges with the k-th
    of the others). One set's warnings are returned as they are."""
    if len(lists) == 1:
        return list(lists[0])
    merged: dict[tuple[tuple[str, ...], int], list[int]] = {}
    for warnings in lists:
        seen: dict[tuple[str, ...], int] = {}
        for warning in warnings:
            parts = _NUMBER.split(warning)
            template = tuple(parts[0::2])
            key = (template, seen.get(template, 0))
            seen[template] = key[1] + 1
            counts = [int(x) for x in parts[1::2]]
            if key in merged:
                merged[key] = [a + b for a, b in zip(merged[key], counts, strict=True)]
            else:
                merged[key] = counts
    out = []
    for (template, _), counts in merged.items():
        pieces = [template[0]]
        for count, text in zip(counts, template[1:], strict=True):
            pieces += [str(count), text]
        out.append("".join(pieces))
    return out


def empty_analysis(opts: AnalysisOptions, n_incomplete: int, counted: bool = False) -> Analysis:
    """The analysis of no complete runs."""
    nan = float("nan")
    reason = "no complete runs"
    return Analysis(
        n_tasks=0,
        n_runs=0,
        n_incomplete=n_incomplete,
        success_rate=nan,
        pass_hat_k={},
        pass_at_k={},
        bias=nan,
        variance=nan,
        error=nan,
        variance_all_tasks=nan,
        incoherence=Incoherence(
            nan, nan, nan, opts.decomposition, 0, opts.confidence, opts.n_boot, 0, reason=reason,
            interval=opts.interval,
        ),
        failure_consistency=nan,
        failure_entropy=nan,
        tasks=(),
        min_runs_per_task=None,
        median_runs_per_task=None,
        has_reference=False,
        n_tasks_with_reference=0,
        decomposition=opts.decomposition,
        outcome=opts.outcome_name,
        correction=opts.correction,
        warnings=(f"{reason} ({n_incomplete} incomplete runs excluded)",),
        incomplete="fail" if counted else "drop",
    )


def _verdicts(success: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(correct, judged) per run: known success first, else the decomposer's own verdict."""
    known = np.isfinite(success)
    unknown = ~known & np.isfinite(own)
    correct = (known & (success == 1.0)) | (unknown & (own == 1.0))
    return correct, known | unknown


def _judged_tasks(
    task: np.ndarray, n: np.ndarray, judged: np.ndarray, warnings: list[str]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Which tasks have a verdict for every run, and the runs to leave out (None: none), those
    without a verdict in a task where other runs have one."""
    judged_runs = np.bincount(task, weights=judged.astype(np.float64), minlength=len(n))
    task_judged = judged_runs == n
    mixed = ~task_judged & (judged_runs > 0)
    if not np.any(mixed):
        return task_judged, None
    # A run without a verdict says nothing about success: leave it out, keep the task.
    drop = mixed[task] & ~judged
    warnings.append(
        f"{int(drop.sum())} runs in {int(mixed.sum())} tasks have no verdict (success or "
        "reference) while the other runs of their task do: they are left out, the tasks kept"
    )
    return task_judged, drop


def _harmonise(
    keys: np.ndarray,
    ref_keys: list[str | None],
    task: np.ndarray,
    task_judged: np.ndarray,
    correct: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each run's cluster label with the verdicts (module docstring), and each task's reference
    label (None for a task without a verdict for every run)."""
    labels = keys.copy()
    task_ref_label = np.empty(len(ref_keys), dtype=object)
    task_ref_label[:] = [
        (rk if rk is not None else CORRECT_KEY) if ok else None
        for rk, ok in zip(ref_keys, task_judged.tolist(), strict=True)
    ]
    run_ref_label = task_ref_label[task]
    in_judged = task_judged[task]
    labels[in_judged & correct] = run_ref_label[in_judged & correct]
    clash = in_judged & ~correct & (labels == run_ref_label)
    labels[clash] = [JUDGED_FAILED_PREFIX + str(k) for k in labels[clash]]
    return labels, task_ref_label


@dataclass(frozen=True)
class _Totals:
    incoherence: Incoherence
    n_single: int
    n_with_ref: int
    bias: float
    variance: float
    error: float
    variance_all: float


def _totals(dec: TaskDecompositions, n: np.ndarray, opts: AnalysisOptions) -> _Totals:
    """Incoherence over the tasks with two runs or more, and the means of bias, variance, error."""
    several = n >= 2  # one run shows no variance: such a task says nothing about coherence
    inc = incoherence(
        np.where(several, dec.variance, np.nan),
        np.where(several, dec.error, np.nan),
        n_boot=opts.n_boot,
        confidence=opts.confidence,
        seed=opts.seed,
        method=opts.decomposition,
        interval=opts.interval,
    )
    with_ref = dec.has_reference & np.isfinite(dec.error) & several
    n_with_ref = int(with_ref.sum())
    variance_all = _nanmean(dec.variance[several])
    if n_with_ref:
        bias = _nanmean(dec.bias[with_ref])
        variance = _nanmean(dec.variance[with_ref])
        error = _nanmean(dec.error[with_ref])
    else:
        bias = error = float("nan")
        variance = variance_all
    return _Totals(inc, int(np.sum(~several)), n_with_ref, bias, variance, error, variance_all)


def _task_results(
    task_ids: list[str],
    n: np.ndarray,
    successes: np.ndarray,
    task_judged: np.ndarray,
    dec: TaskDecompositions,
    n_clusters: np.ndarray,
    fc: FailureConsistency,
    clusters: list,
) -> tuple[TaskResult, ...]:
    return tuple(
        TaskResult(
            task_id=task_ids[t],
            n=int(n[t]),
            successes=int(successes[t]) if task_judged[t] else None,
            bias=float(dec.bias[t]),
            variance=float(dec.variance[t]),
            error=float(dec.error[t]),
            outcome_clusters=int(n_clusters[t]),
            failures=int(fc.failures[t]),
            failure_consistency=float(fc.consistency[t]),
            failure_entropy=float(fc.entropy[t]),
            has_reference=bool(dec.has_reference[t]),
            clusters=tuple(clusters[t]),
        )
        for t in range(len(task_ids))
    )


def _warn(
    warnings: list[str], n: np.ndarray, totals: _Totals, opts: AnalysisOptions, missing: str
) -> None:
    """What the figures rest on: single-run tasks, few runs or tasks, tasks without a reference."""
    n_tasks = len(n)
    min_runs, median_runs = int(n.min()), float(np.median(n))
    if totals.n_single:
        warnings.append(
            f"{totals.n_single} of {n_tasks} tasks have a single run: they are left out of "
            "incoherence (one run shows no variance). Run each task several times, or group runs "
            "into tasks: --task-attr names the attribute that holds the task id"
        )
    if 2 <= min_runs < MIN_RUNS_WARNING:
        warnings.append(
            f"few runs per task: minimum {min_runs}, median {median_runs:g}; each task's "
            "variance rests on a single pair of runs"
            + ("" if opts.correction else ", and plug-in variance is low by a factor (n−1)/n")
        )
    elif not opts.correction and min_runs < 10:
        warnings.append(
            f"plug-in figures with few runs per task (minimum {min_runs}): variance is low by "
            "a factor (n−1)/n and bias² high by as much; drop --plug-in for the unbiased form"
        )
    inc, n_with_ref = totals.incoherence, totals.n_with_ref
    n_counted = int(inc.n_tasks)
    if 2 <= n_counted < MIN_TASKS_WARNING and opts.n_boot:
        warnings.append(
            f"only {n_counted} tasks in incoherence: its interval is over tasks, and below "
            f"{MIN_TASKS_WARNING} tasks it covers less than it says (about 91% for a 95% "
            "interval at 10 tasks)"
        )
    if n_with_ref == 0:
        warnings.append(
            "no reference or success is known for any task: only variance (self-consistency) "
            "is reported; bias, error and incoherence need a reference"
        )
    elif n_with_ref < n_tasks:
        warnings.append(
            f"{n_tasks - n_with_ref} of {n_tasks} tasks have no {missing}: "
            "they are left out of bias, error and incoherence"
        )
    if inc.reason and n_with_ref:
        warnings.append(inc.reason)


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")
