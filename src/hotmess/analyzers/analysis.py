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
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hotmess.progress import Progress
from hotmess.tables import Table

from .common import check_confidence, check_n_boot, factorize, json_float, natural_key
from .decompose import (
    TaskDecompositions,
    brier_by_task,
    checks_decomposition,
    embedding_decomposition,
    kl_decomposition,
    mse_by_task,
)
from .failures import failure_consistency
from .incoherence import (
    INTERVALS,
    Incoherence,
    IncoherenceDifference,
    incoherence,
    incoherence_difference,
)
from .outcomes import (
    DEFAULT_READ_ONLY,
    ReadOnly,
    action_piece,
    canonical_action,
    canonical_value,
    embedding_clusters,
    exact_key,
    exact_keys,
    map_outcomes,
    parse_actions,
    read_only_predicate,
    text_clusters,
)
from .passk import pass_at_k, pass_hat_k

__all__ = [
    "CHECKS_ATTRIBUTE",
    "DECOMPOSITIONS",
    "OUTCOME_METHODS",
    "Analysis",
    "ClusterExample",
    "GroupedAnalysis",
    "TaskResult",
    "analyze",
]

OUTCOME_METHODS = ("exact", "actions", "text", "embedding")
DECOMPOSITIONS = ("brier", "checks", "kl", "mse", "embedding")
#: Run attribute holding explicit checks: a JSON object ``{check name: bool}``.
CHECKS_ATTRIBUTE = "hotmess.checks"
CORRECT_KEY = "<correct>"
JUDGED_FAILED_PREFIX = "<judged failed> "
#: Below this many runs per task the warning says so. The interval still covers at 3 runs per task
#: (bench/stats_coverage.py); at 2, each task's variance rests on one pair of runs.
MIN_RUNS_WARNING = 3
#: Below this many tasks the interval covers less than it says (0.91–0.92 for 95% at 10 tasks).
MIN_TASKS_WARNING = 30
#: What ``incomplete=`` does with runs that never ended.
INCOMPLETE = ("drop", "fail")
INCOMPLETE_KEY = "<incomplete>"
CRASH_PREFIX = "<crash> "
EXAMPLE_CHARS = 200
#: With more groups than this, ``by`` compares every group with the first one, not pairwise.
MAX_PAIRWISE_GROUPS = 6


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ClusterExample:
    """One outcome cluster of a task: its key, size and one example outcome (≤ 200 chars).

    The example is the outcome text of the cluster's first run in table order (for
    ``outcome="actions"``, that run's action key), cut where the task's examples differ
    (:func:`differing_excerpts`); ``correct`` is None when the task has no
    reference. A task's clusters are listed largest first, ties by key.
    """

    key: str
    size: int
    example: str | None
    correct: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": int(self.size),
            "example": self.example,
            "correct": self.correct,
        }


@dataclass(frozen=True)
class TaskResult:
    """One task's numbers (``bias`` is bias²; nan where undefined)."""

    task_id: str
    n: int
    successes: int | None
    bias: float
    variance: float
    error: float
    outcome_clusters: int
    failures: int
    failure_consistency: float
    failure_entropy: float
    has_reference: bool
    clusters: tuple[ClusterExample, ...] = ()

    @property
    def incoherence(self) -> float:
        if not math.isfinite(self.error) or self.error == 0:
            return float("nan")
        return self.variance / self.error

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "n": int(self.n),
            "successes": None if self.successes is None else int(self.successes),
            "bias": json_float(self.bias),
            "variance": json_float(self.variance),
            "error": json_float(self.error),
            "incoherence": json_float(self.incoherence),
            "outcome_clusters": int(self.outcome_clusters),
            "failures": int(self.failures),
            "failure_consistency": json_float(self.failure_consistency),
            "failure_entropy": json_float(self.failure_entropy),
            "has_reference": bool(self.has_reference),
            "clusters": [c.to_dict() for c in self.clusters],
        }


@dataclass(frozen=True)
class Analysis:
    """The result of :func:`analyze` for one set of runs. ``to_dict()`` is JSON-safe."""

    n_tasks: int
    n_runs: int
    n_incomplete: int
    success_rate: float
    pass_hat_k: dict[int, float]
    pass_at_k: dict[int, float]
    bias: float
    variance: float
    error: float
    variance_all_tasks: float
    incoherence: Incoherence
    failure_consistency: float
    failure_entropy: float
    tasks: tuple[TaskResult, ...]
    min_runs_per_task: int | None
    median_runs_per_task: float | None
    has_reference: bool
    n_tasks_with_reference: int
    decomposition: str
    outcome: str
    correction: bool
    warnings: tuple[str, ...] = field(default_factory=tuple)
    n_single_run_tasks: int = 0
    failure_diversity: float = float("nan")
    incomplete: str = "drop"
    n_incomplete_counted: int = 0

    def task_arrays(self) -> dict[str, np.ndarray]:
        """Per-task ``variance``, ``error``, ``bias`` and ``n`` as arrays (task order)."""
        return {
            "variance": np.array([t.variance for t in self.tasks], dtype=np.float64),
            "error": np.array([t.error for t in self.tasks], dtype=np.float64),
            "bias": np.array([t.bias for t in self.tasks], dtype=np.float64),
            "n": np.array([t.n for t in self.tasks], dtype=np.int64),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_tasks": int(self.n_tasks),
            "n_runs": int(self.n_runs),
            "n_incomplete": int(self.n_incomplete),
            "success_rate": json_float(self.success_rate),
            "pass_hat_k": {str(k): json_float(v) for k, v in self.pass_hat_k.items()},
            "pass_at_k": {str(k): json_float(v) for k, v in self.pass_at_k.items()},
            "bias": json_float(self.bias),
            "variance": json_float(self.variance),
            "error": json_float(self.error),
            "variance_all_tasks": json_float(self.variance_all_tasks),
            "incoherence": self.incoherence.to_dict(),
            "failure_consistency": json_float(self.failure_consistency),
            "failure_diversity": json_float(self.failure_diversity),
            "failure_entropy": json_float(self.failure_entropy),
            "n_single_run_tasks": int(self.n_single_run_tasks),
            "incomplete": self.incomplete,
            "n_incomplete_counted": int(self.n_incomplete_counted),
            "min_runs_per_task": self.min_runs_per_task,
            "median_runs_per_task": json_float(self.median_runs_per_task),
            "has_reference": bool(self.has_reference),
            "n_tasks_with_reference": int(self.n_tasks_with_reference),
            "decomposition": self.decomposition,
            "outcome": self.outcome,
            "correction": bool(self.correction),
            "warnings": list(self.warnings),
            "tasks": [t.to_dict() for t in self.tasks],
        }


@dataclass(frozen=True)
class GroupedAnalysis:
    """:func:`analyze` with ``by=``: one :class:`Analysis` per group and incoherence differences."""

    by: str
    groups: dict[str, Analysis]
    differences: tuple[IncoherenceDifference, ...]
    n_incomplete: int
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "n_incomplete": int(self.n_incomplete),
            "warnings": list(self.warnings),
            "groups": {name: a.to_dict() for name, a in self.groups.items()},
            "differences": [d.to_dict() for d in self.differences],
        }


# ---------------------------------------------------------------------------- options


@dataclass(frozen=True)
class _Options:
    outcome: str | Callable[[Any], Hashable]
    decomposition: str
    correction: bool
    n_boot: int
    confidence: float
    seed: int | None
    interval: str
    read_only: Callable[[str], bool]
    distance_threshold: float
    embed: Callable[[list[str]], Any] | None
    progress: Progress | None = None

    @property
    def outcome_name(self) -> str:
        if isinstance(self.outcome, str):
            return self.outcome
        return f"callable:{getattr(self.outcome, '__name__', type(self.outcome).__name__)}"


@dataclass
class _Runs:
    """The complete runs, as arrays, plus what was derived from the steps."""

    task: np.ndarray
    outcome: np.ndarray
    success: np.ndarray
    reference: np.ndarray
    score: np.ndarray
    attributes: np.ndarray
    ending: np.ndarray  # per run: its outcome key when it crashed or never ended, else None
    error: np.ndarray
    action_key: np.ndarray | None = None  # per run, for outcome="actions"
    pieces: list[list[str]] | None = None  # per run, every call's canonical piece (checks)

    def take(self, index: np.ndarray) -> _Runs:
        return _Runs(
            self.task[index],
            self.outcome[index],
            self.success[index],
            self.reference[index],
            self.score[index],
            self.attributes[index],
            self.ending[index],
            self.error[index],
            None if self.action_key is None else self.action_key[index],
            None if self.pieces is None else [self.pieces[i] for i in index],
        )


# ---------------------------------------------------------------------------- entry point


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
    if not isinstance(runs, Table):
        raise ValueError(f"runs must be a hotmess.tables.Table, got {type(runs).__name__}")
    if steps is not None and not isinstance(steps, Table):
        raise ValueError(
            f"steps must be a hotmess.tables.Table or None, got {type(steps).__name__}"
        )
    if isinstance(outcome, str):
        if outcome not in OUTCOME_METHODS:
            raise ValueError(
                f"outcome must be one of {', '.join(OUTCOME_METHODS)} or a callable, got {outcome!r}"
            )
    elif not callable(outcome):
        raise ValueError(
            f"outcome must be a method name or a callable, got {type(outcome).__name__}"
        )
    if incomplete not in INCOMPLETE:
        raise ValueError(f"incomplete must be one of {', '.join(INCOMPLETE)}, got {incomplete!r}")
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    if decomposition not in DECOMPOSITIONS:
        raise ValueError(
            f"decomposition must be one of {', '.join(DECOMPOSITIONS)}, got {decomposition!r}"
        )
    if (outcome == "embedding" or decomposition == "embedding") and embed is None:
        raise ValueError(
            "embedding outcomes need embed=callable(texts) -> vectors, e.g. "
            "hotmess.analyzers.sentence_transformer_embedder('all-MiniLM-L6-v2')"
        )
    threshold = float(distance_threshold)
    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(
            f"distance_threshold must be a finite number >= 0, got {distance_threshold}"
        )
    for name in ("task_id", "outcome"):
        if name not in runs:
            raise ValueError(f"runs has no {name!r} column; columns are {', '.join(runs.columns)}")
    opts = _Options(
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
    )

    incomplete_mode = incomplete
    n_all = len(runs)
    status = _column(runs, "status", n_all)
    incomplete = np.fromiter((s == "incomplete" for s in status), dtype=bool, count=n_all)
    attributes_all = _column(runs, "attributes", n_all)
    group_all = None if by is None else _group_values(runs, by, attributes_all)

    errors = _column(runs, "error", n_all)
    outcomes = runs["outcome"]
    ending = np.empty(n_all, dtype=object)
    ending[:] = [
        _crash_key(e) if s == "error" and o is None else None
        for s, o, e in zip(status, outcomes, errors, strict=True)
    ]
    success_all = _float_column(runs, "success", n_all)
    counted = incomplete_mode == "fail"
    if counted:
        ending[incomplete] = INCOMPLETE_KEY
        success_all = success_all.copy()
        success_all[incomplete] = 0.0
    complete = np.arange(n_all) if counted else np.flatnonzero(~incomplete)
    data = _Runs(
        task=np.array(
            ["<none>" if t is None else str(t) for t in runs["task_id"][complete]], dtype=object
        ),
        outcome=outcomes[complete],
        success=success_all[complete],
        reference=_column(runs, "reference", n_all)[complete],
        score=_float_column(runs, "score", n_all)[complete],
        attributes=attributes_all[complete],
        ending=ending[complete],
        error=errors[complete],
    )
    need_actions = outcome == "actions"
    need_pieces = decomposition == "checks"
    if need_actions or need_pieces:
        run_ids = _column(runs, "run_id", n_all)[complete]
        keys, pieces = _collect_actions(run_ids, data.outcome, steps, opts.read_only, need_pieces)
        data.action_key = keys
        data.pieces = pieces

    if group_all is None:
        return _analyze_one(data, opts, int(incomplete.sum()), counted)

    group_complete = group_all[complete]
    names = sorted(set(group_complete.tolist()), key=natural_key)
    warnings = []
    if "<none>" in names:
        missing = int(np.sum(group_complete == "<none>"))
        warnings.append(f"{missing} runs have no {by!r}: grouped as '<none>'")
    groups: dict[str, Analysis] = {}
    for name in names:
        index = np.flatnonzero(group_complete == name)
        n_inc = int(np.sum(incomplete & (group_all == name)))
        groups[name] = _analyze_one(data.take(index), opts, n_inc, counted)
    differences = _differences(groups, opts, warnings)
    return GroupedAnalysis(by, groups, tuple(differences), int(incomplete.sum()), tuple(warnings))


def _differences(
    groups: dict[str, Analysis], opts: _Options, warnings: list[str]
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


def _crash_key(error: Any) -> str:
    """A crashed run's outcome key: its exception type (``"ValueError: bad id"`` → ``ValueError``),
    so crashes of different kinds are different clusters and the same crash repeats as one."""
    text = "" if error is None else str(error).strip()
    kind = text.split(":", 1)[0].strip() if text else ""
    return CRASH_PREFIX + (kind or "unknown error")


# ---------------------------------------------------------------------------- columns


def _column(table: Table, name: str, n: int) -> np.ndarray:
    if name in table:
        return table[name]
    out = np.empty(n, dtype=object)
    out[:] = None
    return out


def _float_column(table: Table, name: str, n: int) -> np.ndarray:
    if name not in table:
        return np.full(n, np.nan)
    column = table[name]
    if column.dtype == object:
        return np.array([np.nan if v is None else float(v) for v in column], dtype=np.float64)
    return column.astype(np.float64, copy=False)


def _parse_attributes(texts: np.ndarray) -> list[dict[str, Any]]:
    cache: dict[Any, dict[str, Any]] = {}
    out = []
    for text in texts:
        if isinstance(text, Mapping):
            out.append(dict(text))
            continue
        parsed = cache.get(text)
        if parsed is None:
            parsed = {}
            if isinstance(text, str) and text:
                try:
                    value = json.loads(text)
                except ValueError:
                    value = None
                if isinstance(value, dict):
                    parsed = value
            cache[text] = parsed
        out.append(parsed)
    return out


def _lookup(attrs: Mapping[str, Any], key: str) -> Any:
    if key in attrs:
        return attrs[key]
    node: Any = attrs
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


#: ``by`` names that stand for a runs column.
BY_COLUMNS = {"task": "task_id", "agent": "agent"}


def split_runs(runs: Table, steps: Table | None, by: str) -> dict[str, tuple[Table, Table | None]]:
    """The runs, and the steps of each run, per group, for an analysis per group.

    ``by`` is a runs column (``"task"`` and ``"agent"`` name ``task_id`` and ``agent``) or a key
    of the runs' attributes; a run without a value is in the group ``"<none>"``. Groups come in
    natural order of their names ("2" before "10"), rows in their original order.
    """
    column = BY_COLUMNS.get(by, by)
    attributes = runs["attributes"] if "attributes" in runs else np.full(len(runs), None, dtype=object)
    codes, names = factorize(_group_values(runs, column, attributes).tolist())
    step_rows: list[np.ndarray] | None = None
    if steps is not None:
        code_of_run = dict(zip(runs["run_id"].tolist(), codes.tolist(), strict=True))
        step_codes = np.fromiter((code_of_run.get(r, -1) for r in steps["run_id"].tolist()), dtype=np.int64)
        order = np.argsort(step_codes, kind="stable")
        bounds = np.searchsorted(step_codes[order], np.arange(len(names) + 1))
        step_rows = [order[bounds[i]:bounds[i + 1]] for i in range(len(names))]
    out: dict[str, tuple[Table, Table | None]] = {}
    for i in sorted(range(len(names)), key=lambda i: natural_key(str(names[i]))):
        out[str(names[i])] = (
            runs.take(np.flatnonzero(codes == i)),
            None if step_rows is None else steps.take(step_rows[i]),
        )
    return out


def _group_values(runs: Table, by: str, attributes: np.ndarray) -> np.ndarray:
    if by in runs:
        values = runs[by]
    else:
        parsed = _parse_attributes(attributes)
        values = [_lookup(a, by) for a in parsed]
        if len(values) and all(v is None for v in values):
            raise ValueError(
                f"by={by!r} is neither a runs column ({', '.join(runs.columns)}) "
                "nor a key of any run's attributes"
            )
    out = np.empty(len(values), dtype=object)
    out[:] = [
        "<none>"
        if v is None or (isinstance(v, float) and v != v)
        else (v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v))
        for v in values
    ]
    return out


# ---------------------------------------------------------------------------- actions


def _collect_actions(
    run_ids: np.ndarray,
    outcomes: np.ndarray,
    steps: Table | None,
    is_read_only: Callable[[str], bool],
    want_pieces: bool,
) -> tuple[np.ndarray, list[list[str]] | None]:
    """Each run's action key (state-changing calls) and, if wanted, all its call pieces.

    Tool calls come from the steps table (``kind == "tool"``, by ``step_index``); a run with no
    tool step whose outcome is a JSON list of actions uses that list.
    """
    n = len(run_ids)
    pieces: list[str] = []
    piece_ro: list[bool] = []
    piece_code: dict[Any, int] = {}
    ro_cache: dict[str, bool] = {}

    def code_of(name: str, arguments: Any, cache_key: Any) -> int:
        code = piece_code.get(cache_key) if cache_key is not None else None
        if code is None:
            piece = action_piece(name, arguments)
            code = piece_code.get(piece)
            if code is None:
                code = piece_code[piece] = len(pieces)
                pieces.append(piece)
                ro = ro_cache.get(name)
                if ro is None:
                    ro = ro_cache[name] = bool(is_read_only(name))
                piece_ro.append(ro)
            if cache_key is not None:
                piece_code[cache_key] = code
        return code

    rows_list: list[np.ndarray] = []
    order_list: list[np.ndarray] = []
    codes_list: list[np.ndarray] = []
    has_steps = np.zeros(n, dtype=bool)
    if steps is not None and len(steps):
        for name in ("run_id", "kind"):
            if name not in steps:
                raise ValueError(
                    f"steps has no {name!r} column; columns are {', '.join(steps.columns)}"
                )
        tool_mask = np.asarray(steps["kind"] == "tool", dtype=bool)
        position = {rid: i for i, rid in enumerate(run_ids)}
        st_rows = np.fromiter(
            (position.get(r, -1) for r in steps["run_id"][tool_mask]),
            dtype=np.int64,
            count=int(tool_mask.sum()),
        )
        keep = st_rows >= 0
        selected = np.flatnonzero(tool_mask)[keep]
        st_rows = st_rows[keep]
        tool_names = _column(steps, "tool", len(steps))[selected]
        step_names = _column(steps, "name", len(steps))[selected]
        inputs = _column(steps, "input", len(steps))[selected]
        if "step_index" in steps:
            st_order = steps["step_index"][selected].astype(np.int64)
        else:
            st_order = np.arange(len(selected), dtype=np.int64)
        codes = np.empty(len(selected), dtype=np.int64)
        for i, (tool, alt, text) in enumerate(zip(tool_names, step_names, inputs, strict=True)):
            name = str(tool if tool is not None else alt)
            cache_key = (name, text) if isinstance(text, str) or text is None else None
            if cache_key is not None and cache_key in piece_code:
                codes[i] = piece_code[cache_key]
                continue
            _, arguments = canonical_action((name, text))
            codes[i] = code_of(name, arguments, cache_key)
        rows_list.append(st_rows)
        order_list.append(st_order)
        codes_list.append(codes)
        has_steps[st_rows] = True
    extra_rows, extra_order, extra_codes = [], [], []
    for i in np.flatnonzero(~has_steps):
        actions = parse_actions(outcomes[i])
        if not actions:
            continue
        for j, (name, arguments) in enumerate(actions):
            extra_rows.append(i)
            extra_order.append(j)
            extra_codes.append(code_of(name, arguments, None))
    rows_list.append(np.asarray(extra_rows, dtype=np.int64))
    order_list.append(np.asarray(extra_order, dtype=np.int64))
    codes_list.append(np.asarray(extra_codes, dtype=np.int64))

    rows = np.concatenate(rows_list)
    order = np.lexsort((np.concatenate(order_list), rows))
    rows = rows[order]
    codes = np.concatenate(codes_list)[order]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    piece_arr = np.empty(len(pieces), dtype=object)
    piece_arr[:] = pieces
    ro = np.asarray(piece_ro, dtype=bool)

    state = ~ro[codes] if len(codes) else np.zeros(0, dtype=bool)
    kept = piece_arr[codes[state]].tolist()
    kept_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[state], minlength=n), out=kept_offsets[1:])
    keys = np.empty(n, dtype=object)
    keys[:] = ["[" + ",".join(kept[kept_offsets[i] : kept_offsets[i + 1]]) + "]" for i in range(n)]
    all_pieces = None
    if want_pieces:
        flat = piece_arr[codes].tolist()
        all_pieces = [flat[offsets[i] : offsets[i + 1]] for i in range(n)]
    return keys, all_pieces


def _reference_actions(
    reference: Any, is_read_only: Callable[[str], bool]
) -> tuple[str, list[str]] | None:
    """(action key, expected pieces for checks) of a reference that is a list of actions."""
    actions = parse_actions(reference)
    if actions is None:
        return None
    state = [(n, a) for n, a in actions if not is_read_only(n)]
    key = "[" + ",".join(action_piece(n, a) for n, a in state) + "]"
    expected = state if state else actions  # all read-only: check them all
    return key, [action_piece(n, a) for n, a in expected]


# ---------------------------------------------------------------------------- one group


def _task_references(
    task_codes: np.ndarray, references: np.ndarray, n_tasks: int
) -> tuple[list[Any], int]:
    """The most common non-None reference of each task (ties: smallest text); conflicts count."""
    counters: dict[int, Counter] = {}
    for t, ref in zip(task_codes.tolist(), references, strict=True):
        if ref is None or (isinstance(ref, float) and ref != ref):
            continue
        counters.setdefault(t, Counter())[ref if isinstance(ref, str) else json.dumps(ref)] += 1
    out: list[Any] = [None] * n_tasks
    conflicts = 0
    for t, counter in counters.items():
        best = max(counter.items(), key=lambda kv: (kv[1], _neg(kv[0])))
        out[t] = best[0]
        conflicts += len(counter) > 1
    return out, conflicts


def _neg(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)


def _analyze_one(
    data: _Runs, opts: _Options, n_incomplete: int, counted: bool, notes: tuple[str, ...] = ()
) -> Analysis:
    n_runs = len(data.task)
    warnings: list[str] = list(notes)
    if n_runs == 0:
        return _empty(opts, n_incomplete, counted)

    # tasks, in natural order of their ids
    codes, uniques = factorize(data.task.tolist())
    order = sorted(range(len(uniques)), key=lambda i: natural_key(uniques[i]))
    remap = np.empty(len(uniques), dtype=np.int64)
    remap[order] = np.arange(len(uniques))
    task = remap[codes]
    task_ids = [str(uniques[i]) for i in order]
    n_tasks = len(task_ids)
    n = np.bincount(task, minlength=n_tasks)

    references, conflicts = _task_references(task, data.reference, n_tasks)
    if conflicts:
        warnings.append(
            f"{conflicts} tasks have runs with different references: the most common one is used"
        )
    keys, ref_keys, examples = _outcome_keys(data, task, references, opts, warnings)

    # verdicts
    known = np.isfinite(data.success)
    correct = known & (data.success == 1.0)
    judged = known.copy()
    ref_key_arr = np.empty(n_tasks, dtype=object)
    ref_key_arr[:] = ref_keys
    run_ref_key = ref_key_arr[task]
    dec_extra: dict[str, Any] = {}
    if opts.decomposition in ("brier", "embedding"):
        has_key = np.fromiter((k is not None for k in run_ref_key), dtype=bool, count=n_runs)
        by_key = np.fromiter(
            (a == b for a, b in zip(keys, run_ref_key, strict=True)), dtype=bool, count=n_runs
        )
        unknown = ~known & has_key
        correct = correct | (unknown & by_key)
        judged = judged | unknown
    elif opts.decomposition == "checks":
        dec_extra = _checks_matrices(data, task, n_tasks, references, opts, warnings)
        run_pass = dec_extra["run_pass"]
        unknown = ~known & np.isfinite(run_pass)
        correct = correct | (unknown & (run_pass == 1.0))
        judged = judged | unknown
    elif opts.decomposition == "mse":
        dec_extra = _mse_targets(data, references, n_tasks, warnings)
        target = dec_extra["targets"][task]
        unknown = ~known & np.isfinite(data.score)
        correct = correct | (unknown & np.isclose(data.score, target, rtol=0, atol=1e-9))
        judged = judged | unknown
    elif opts.decomposition == "kl":
        dec_extra = _kl_inputs(data, task, n_tasks, references)
        run_hit = dec_extra["run_hit"]
        unknown = ~known & np.isfinite(run_hit)
        correct = correct | (unknown & (run_hit == 1.0))
        judged = judged | unknown

    judged_runs = np.bincount(task, weights=judged.astype(np.float64), minlength=n_tasks)
    task_judged = judged_runs == n
    mixed = ~task_judged & (judged_runs > 0)
    if np.any(mixed):
        # A run without a verdict says nothing about success: leave it out, keep the task.
        drop = mixed[task] & ~judged
        warnings.append(
            f"{int(drop.sum())} runs in {int(mixed.sum())} tasks have no verdict (success or "
            "reference) while the other runs of their task do: they are left out, the tasks kept"
        )
        return _analyze_one(
            data.take(np.flatnonzero(~drop)), opts, n_incomplete, counted, tuple(warnings)
        )

    # harmonised outcome clusters
    labels = keys.copy()
    task_ref_label = np.empty(n_tasks, dtype=object)
    task_ref_label[:] = [
        (rk if rk is not None else CORRECT_KEY) if ok else None
        for rk, ok in zip(ref_keys, task_judged.tolist(), strict=True)
    ]
    run_ref_label = task_ref_label[task]
    in_judged = task_judged[task]
    labels[in_judged & correct] = run_ref_label[in_judged & correct]
    clash = in_judged & ~correct & (labels == run_ref_label)
    labels[clash] = [JUDGED_FAILED_PREFIX + str(k) for k in labels[clash]]
    label_codes, label_uniques = factorize(labels.tolist())
    hit = in_judged & correct

    # decomposition
    dec = _decompose(
        data, task, n_tasks, label_codes, hit, task_judged, references, opts, dec_extra
    )

    # failures, successes, pass^k
    failed = in_judged & ~correct
    fc = failure_consistency(label_codes, failed, task, n_tasks=n_tasks)
    successes = np.bincount(task, weights=hit.astype(np.float64), minlength=n_tasks).astype(
        np.int64
    )
    if task_judged.any():
        pass_hat = pass_hat_k(n[task_judged], successes[task_judged])
        pass_at = pass_at_k(n[task_judged], successes[task_judged])
    else:
        pass_hat, pass_at = {}, {}
    success_rate = float(correct[judged].mean()) if judged.any() else float("nan")

    several = n >= 2  # one run shows no variance: such a task says nothing about coherence
    n_single = int(np.sum(~several))
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

    # clusters and examples per task
    pair = task * max(len(label_uniques), 1) + label_codes
    pairs, first, counts = np.unique(pair, return_index=True, return_counts=True)
    pair_task = pairs // max(len(label_uniques), 1)
    n_clusters = np.bincount(pair_task, minlength=n_tasks)
    label_rank = np.empty(len(label_uniques), dtype=np.int64)
    label_rank[sorted(range(len(label_uniques)), key=lambda i: str(label_uniques[i]))] = np.arange(
        len(label_uniques)
    )
    pair_label = pairs % max(len(label_uniques), 1)
    listing = np.lexsort((label_rank[pair_label], -counts, pair_task))  # big first, then by key
    clusters: list[list[ClusterExample]] = [[] for _ in range(n_tasks)]
    full_examples: list[list[Any]] = [[] for _ in range(n_tasks)]
    for j in listing.tolist():
        t = int(pair_task[j])
        label = label_uniques[int(label_codes[first[j]])]
        is_correct = None if not task_judged[t] else bool(label == task_ref_label[t])
        full_examples[t].append(examples[first[j]])
        clusters[t].append(
            ClusterExample(
                key=_truncate(str(label)),
                size=int(counts[j]),
                example=None,
                correct=is_correct,
            )
        )
    for t in range(n_tasks):
        excerpts = differing_excerpts(full_examples[t])
        clusters[t] = [replace(c, example=e) for c, e in zip(clusters[t], excerpts, strict=True)]

    tasks = tuple(
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
        for t in range(n_tasks)
    )

    min_runs = int(n.min())
    median_runs = float(np.median(n))
    if n_single:
        warnings.append(
            f"{n_single} of {n_tasks} tasks have a single run: they are left out of incoherence "
            "(one run shows no variance). Run each task several times, or group runs into tasks: "
            "--task-attr names the attribute that holds the task id"
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
        missing_what = {
            "checks": "checks",
            "mse": "scored runs",
            "kl": "reference",
        }.get(opts.decomposition, "reference or known success for every run")
        warnings.append(
            f"{n_tasks - n_with_ref} of {n_tasks} tasks have no {missing_what}: "
            "they are left out of bias, error and incoherence"
        )
    if inc.reason and n_with_ref:
        warnings.append(inc.reason)

    return Analysis(
        n_tasks=n_tasks,
        n_runs=n_runs,
        n_incomplete=n_incomplete,
        success_rate=success_rate,
        pass_hat_k=pass_hat,
        pass_at_k=pass_at,
        bias=bias,
        variance=variance,
        error=error,
        variance_all_tasks=variance_all,
        incoherence=inc,
        failure_consistency=fc.value,
        failure_entropy=_nanmean(fc.entropy),
        tasks=tasks,
        min_runs_per_task=min_runs,
        median_runs_per_task=median_runs,
        has_reference=n_with_ref > 0,
        n_tasks_with_reference=n_with_ref,
        decomposition=opts.decomposition,
        outcome=opts.outcome_name,
        correction=opts.correction,
        warnings=tuple(warnings),
        n_single_run_tasks=n_single,
        failure_diversity=fc.diversity,
        incomplete="fail" if counted else "drop",
        n_incomplete_counted=n_incomplete if counted else 0,
    )


def _empty(opts: _Options, n_incomplete: int, counted: bool = False) -> Analysis:
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


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def differing_excerpts(texts: Sequence[Any], width: int = EXAMPLE_CHARS, context: int = 40) -> list[str | None]:
    """Each text cut to ``width`` characters around where the texts differ: when they share a
    long beginning (three wrong bookings that differ in how the payment was split), each
    excerpt starts ``context`` characters before the first difference, after an ellipsis."""
    strings = [None if t is None else str(t) for t in texts]
    present = [x for x in strings if x is not None]
    start = 0
    if len(set(present)) > 1:
        shared = len(os.path.commonprefix(present))
        if shared > context + 20 and any(len(x) > width for x in present):
            start = shared - context
    out: list[str | None] = []
    for x in strings:
        if x is None:
            out.append(None)
            continue
        piece = ("…" + x[start:]) if start else x
        out.append(piece if len(piece) <= width else piece[: width - 1] + "…")
    return out


def _truncate(text: Any) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


# ---------------------------------------------------------------------------- outcome keys


def _outcome_keys(
    data: _Runs,
    task: np.ndarray,
    references: list[Any],
    opts: _Options,
    warnings: list[str],
) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """Run keys, each task's reference key (None: no reference), and example texts per run."""
    method = opts.outcome
    n_tasks = len(references)
    ref_tasks = [t for t in range(n_tasks) if references[t] is not None]
    ref_keys: list[str | None] = [None] * n_tasks
    examples = data.outcome
    if method == "exact":
        keys = exact_keys(data.outcome)
        for t in ref_tasks:
            ref_keys[t] = exact_key(references[t])
    elif method == "actions":
        assert data.action_key is not None
        keys = data.action_key
        examples = keys
        not_actions = 0
        for t in ref_tasks:
            parsed = _reference_actions(references[t], opts.read_only)
            if parsed is None:
                not_actions += 1
            else:
                ref_keys[t] = parsed[0]
        if not_actions:
            warnings.append(
                f"{not_actions} tasks have a reference that is not a JSON list of actions: "
                "it is ignored by the actions mapper"
            )
    elif method in ("text", "embedding"):
        texts = [None if o is None else _as_text(o) for o in data.outcome]
        texts += [_as_text(references[t]) for t in ref_tasks]
        groups = task.tolist() + ref_tasks
        if method == "text":
            all_keys = text_clusters(texts, groups, opts.distance_threshold, progress=opts.progress)
        else:
            all_keys = embedding_clusters(
                texts, groups, embed=opts.embed, distance_threshold=opts.distance_threshold
            )
        keys = all_keys[: len(task)]
        for t, key in zip(ref_tasks, all_keys[len(task) :], strict=True):
            ref_keys[t] = key
    else:
        assert callable(method)
        keys = map_outcomes(data.outcome, method)
        if ref_tasks:
            mapped = map_outcomes([references[t] for t in ref_tasks], method)
            for t, key in zip(ref_tasks, mapped, strict=True):
                ref_keys[t] = key
    ended_otherwise = np.fromiter((e is not None for e in data.ending), dtype=bool, count=len(task))
    if ended_otherwise.any():
        keys = np.asarray(keys, dtype=object).copy()
        keys[ended_otherwise] = data.ending[ended_otherwise]
        examples = np.asarray(examples, dtype=object).copy()
        examples[ended_otherwise] = [
            str(e) if e is not None else k
            for e, k in zip(data.error[ended_otherwise], data.ending[ended_otherwise], strict=True)
        ]
    return keys, ref_keys, examples


def _as_text(value: Any) -> str:
    """Outcome text for clustering: a JSON string value unwrapped, other JSON kept as text."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if isinstance(parsed, str) else value
    return json.dumps(canonical_value(value))


# ---------------------------------------------------------------------------- decompositions


def _decompose(
    data: _Runs,
    task: np.ndarray,
    n_tasks: int,
    label_codes: np.ndarray,
    hit: np.ndarray,
    task_judged: np.ndarray,
    references: list[Any],
    opts: _Options,
    extra: dict[str, Any],
) -> TaskDecompositions:
    method = opts.decomposition
    if method == "brier":
        return brier_by_task(
            task,
            label_codes,
            hit,
            has_reference=task_judged,
            n_tasks=n_tasks,
            correction=opts.correction,
        )
    if method == "mse":
        scored = np.isfinite(data.score)
        return mse_by_task(
            task[scored],
            data.score[scored],
            extra["targets"],
            n_tasks=n_tasks,
            correction=opts.correction,
        )
    bias = np.full(n_tasks, np.nan)
    variance = np.full(n_tasks, np.nan)
    error = np.full(n_tasks, np.nan)
    count = np.zeros(n_tasks, dtype=np.int64)
    has_ref = np.zeros(n_tasks, dtype=bool)
    order = np.argsort(task, kind="stable")
    bounds = np.searchsorted(task[order], np.arange(n_tasks + 1))
    if method == "embedding":
        texts = [_as_text(o) if o is not None else "" for o in data.outcome]
        ref_texts = {
            t: _as_text(references[t]) for t in range(n_tasks) if references[t] is not None
        }
        codes, uniques = factorize(texts + list(ref_texts.values()))
        assert opts.embed is not None
        vectors = np.asarray(opts.embed([str(u) for u in uniques]), dtype=np.float64)
        if vectors.ndim != 2 or len(vectors) != len(uniques):
            raise ValueError(
                f"embed must return an array of shape ({len(uniques)}, d), got {vectors.shape}"
            )
        run_vectors = vectors[codes[: len(texts)]]
        ref_vector = dict(zip(ref_texts, vectors[codes[len(texts) :]], strict=True))
    for t in range(n_tasks):
        members = order[bounds[t] : bounds[t + 1]]
        if method == "checks":
            matrix = extra["matrices"][t]
            if matrix is None:
                continue
            d = checks_decomposition(matrix, correction=opts.correction)
        elif method == "kl":
            probs, ref = extra["probs"][t], extra["refs"][t]
            d = kl_decomposition(probs, ref, correction=opts.correction)
        else:
            d = embedding_decomposition(
                run_vectors[members], ref_vector.get(t), correction=opts.correction
            )
        bias[t], variance[t], error[t] = d.bias, d.variance, d.error
        count[t] = d.n
        has_ref[t] = d.has_reference
    bias[~has_ref] = np.nan
    error[~has_ref] = np.nan
    return TaskDecompositions(bias, variance, error, count, has_ref, method, opts.correction)


def _checks_matrices(
    data: _Runs,
    task: np.ndarray,
    n_tasks: int,
    references: list[Any],
    opts: _Options,
    warnings: list[str],
) -> dict[str, Any]:
    """Per task a runs × checks 0/1 matrix (None: no checks); per run 1.0 if all pass.

    Explicit checks (the ``hotmess.checks`` attribute, ``{name: bool}``) win: a task where any
    run records them uses the union of the names, a check a run did not record counting as
    failed. Otherwise, a reference that is a list of expected actions gives one check per expected
    state-changing action (every action if all are read-only): "the run made this call with equal
    canonical arguments", matched as multisets (each call of the run matches at most one
    expected action; read-only calls of the run count too).
    """
    attrs = _parse_attributes(data.attributes)
    explicit = [_explicit_checks(a.get(CHECKS_ATTRIBUTE)) for a in attrs]
    order = np.argsort(task, kind="stable")
    bounds = np.searchsorted(task[order], np.arange(n_tasks + 1))
    matrices: list[np.ndarray | None] = [None] * n_tasks
    run_pass = np.full(len(task), np.nan)
    no_checks = 0
    for t in range(n_tasks):
        members = order[bounds[t] : bounds[t + 1]]
        recorded = [explicit[i] for i in members]
        matrix = None
        if any(r is not None for r in recorded):
            names = sorted({name for r in recorded if r for name in r})
            if names:
                matrix = np.array(
                    [[float((r or {}).get(name, 0.0)) for name in names] for r in recorded]
                )
        elif references[t] is not None:
            parsed = _reference_actions(references[t], opts.read_only)
            if parsed is not None and parsed[1]:
                expected = parsed[1]
                assert data.pieces is not None
                matrix = np.array(
                    [_match_expected(expected, data.pieces[i]) for i in members], dtype=np.float64
                )
        if matrix is None:
            no_checks += 1
            continue
        matrices[t] = matrix
        run_pass[members] = np.all(matrix == 1.0, axis=1).astype(np.float64)
    if no_checks:
        warnings.append(
            f"{no_checks} tasks have no checks (no {CHECKS_ATTRIBUTE!r} attribute and no reference "
            "list of actions): they get no checks decomposition"
        )
    return {"matrices": matrices, "run_pass": run_pass}


def _explicit_checks(value: Any) -> dict[str, float] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, Mapping):
        return None
    out = {}
    for name, passed in value.items():
        v = float(passed) if isinstance(passed, (bool, int, float)) else float(bool(passed))
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"check {name!r} has value {passed!r}; checks are booleans")
        out[str(name)] = v
    return out


def _match_expected(expected: list[str], made: list[str]) -> list[float]:
    available = Counter(made)
    row = []
    for piece in expected:
        if available[piece] > 0:
            available[piece] -= 1
            row.append(1.0)
        else:
            row.append(0.0)
    return row


def _mse_targets(
    data: _Runs, references: list[Any], n_tasks: int, warnings: list[str]
) -> dict[str, Any]:
    targets = np.ones(n_tasks)
    not_numbers = 0
    for t, ref in enumerate(references):
        if ref is None:
            continue
        value = _number(ref)
        if value is None:
            not_numbers += 1
        else:
            targets[t] = value
    if not_numbers:
        warnings.append(
            f"{not_numbers} tasks have a reference that is not a number: target 1.0 used"
        )
    missing = int(np.sum(~np.isfinite(data.score)))
    if missing:
        warnings.append(f"{missing} runs have no score: left out of the mse decomposition")
    return {"targets": targets}


def _number(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _kl_inputs(
    data: _Runs, task: np.ndarray, n_tasks: int, references: list[Any]
) -> dict[str, Any]:
    """Per task the n × K probability matrix and the reference (index, distribution or None)."""
    order = np.argsort(task, kind="stable")
    bounds = np.searchsorted(task[order], np.arange(n_tasks + 1))
    probs: list[np.ndarray] = []
    refs: list[Any] = []
    run_hit = np.full(len(task), np.nan)
    for t in range(n_tasks):
        members = order[bounds[t] : bounds[t + 1]]
        parsed = [_probability(data.outcome[i], int(i)) for i in members]
        kinds = {type(p) for p in parsed}
        if len(kinds) > 1:
            raise ValueError(
                f"task {t}: mixes probability lists and label→probability objects in its outcomes"
            )
        ref_value = _reference_value(references[t])
        if dict in kinds:
            labels = sorted({label for p in parsed for label in p})
            if isinstance(ref_value, dict):
                labels = sorted(set(labels) | set(ref_value))
            elif isinstance(ref_value, (str, int)) and str(ref_value) not in labels:
                labels = sorted(set(labels) | {str(ref_value)})
            matrix = np.array([[p.get(label, 0.0) for label in labels] for p in parsed])
            if ref_value is None:
                ref = None
            elif isinstance(ref_value, dict):
                ref = np.array([float(ref_value.get(label, 0.0)) for label in labels])
            elif isinstance(ref_value, (str, int)):
                ref = labels.index(str(ref_value))
            else:
                raise ValueError(
                    f"task {t}: reference {references[t]!r:.80} is not a label or distribution"
                )
        else:
            lengths = {len(p) for p in parsed}
            if len(lengths) > 1:
                raise ValueError(
                    f"task {t}: probability vectors of different lengths {sorted(lengths)}"
                )
            matrix = np.array(parsed, dtype=np.float64)
            if ref_value is None:
                ref = None
            elif isinstance(ref_value, list):
                ref = np.asarray(ref_value, dtype=np.float64)
            elif isinstance(ref_value, int) or (isinstance(ref_value, str) and ref_value.isdigit()):
                ref = int(ref_value)
            else:
                raise ValueError(
                    f"task {t}: reference {references[t]!r:.80} must be a class index or a "
                    "probability list when outcomes are probability lists"
                )
        probs.append(matrix)
        refs.append(ref)
        if ref is not None:
            target = ref if isinstance(ref, int) else int(np.argmax(ref))
            run_hit[members] = (np.argmax(matrix, axis=1) == target).astype(np.float64)
    return {"probs": probs, "refs": refs, "run_hit": run_hit}


def _probability(text: Any, row: int) -> list[float] | dict[str, float]:
    value = text
    if isinstance(text, str):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
    if isinstance(value, list) and value and all(_is_number(v) for v in value):
        return [float(v) for v in value]
    if isinstance(value, dict) and value and all(_is_number(v) for v in value.values()):
        return {str(k): float(v) for k, v in value.items()}
    raise ValueError(
        f"run {row}: outcome {text!r:.80} is not a JSON probability vector (a list of numbers or "
        "an object label → probability), which decomposition='kl' needs"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _reference_value(reference: Any) -> Any:
    if reference is None:
        return None
    value = reference
    if isinstance(reference, str):
        try:
            value = json.loads(reference)
        except ValueError:
            return reference  # a bare label
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
