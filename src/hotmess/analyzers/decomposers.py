"""The decompositions :func:`~hotmess.analyzers.analyze` runs: one small object each, by name.

``DECOMPOSERS[name](group)`` makes the decomposer of one group of runs (a :class:`GroupRuns`).
Every decomposer has the same interface:

- ``run_verdicts()``: per run 1.0 or 0.0 where the decomposition judges a run by its own target,
  nan where it cannot; the pipeline uses it for runs whose ``success`` is unknown;
- ``decompose(labels, hit, task_judged)``: the per-task :class:`~.decompose.TaskDecompositions`
  (the formulas are in :mod:`.decompose`), given the harmonised outcome cluster of each run,
  whether it is in its task's reference cluster, and which tasks have a verdict for every run;
- ``missing``: what a task lacks when it gets no bias (for the warning).

The decompositions and what they read:

- ``brier`` — outcome clusters (:func:`~.decompose.brier_by_task`); a run is correct iff its key
  equals its task's reference key.
- ``checks`` — a 0/1 matrix runs × checks per task (:func:`~.decompose.checks_decomposition`):
  explicit checks (the ``hotmess.checks`` attribute, ``{name: bool}``) win: a task where any run
  records them uses the union of the names, a check a run did not record counting as failed.
  Otherwise, a reference that is a list of expected actions gives one check per expected
  state-changing action (every action if all are read-only): "the run made this call with equal
  canonical arguments", matched as multisets (each call of the run matches at most one expected
  action; read-only calls of the run count too). A run is correct iff every check passes.
- ``kl`` — JSON probability vectors (a list, or an object label → probability) against the
  reference (a class index, a label or a distribution; :func:`~.decompose.kl_decomposition`);
  a run is correct iff its arg-max class is the reference's.
- ``mse`` — ``score`` against a numeric reference, else 1.0 (:func:`~.decompose.mse_by_task`);
  a run is correct iff its score equals the target (within 1e-9). Runs without a score are
  left out.
- ``embedding`` — the spread of ``embed`` vectors of the outcome texts
  (:func:`~.decompose.embedding_decomposition`); judged by keys as ``brier``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.vocab.attributes import CHECKS

from .actions import reference_actions
from .columns import parse_attributes
from .common import factorize
from .decompose import (
    Decomposition,
    TaskDecompositions,
    brier_by_task,
    checks_decomposition,
    embedding_decomposition,
    kl_decomposition,
    mse_by_task,
)
from .inputs import AnalysisOptions, RunArrays
from .outcome_keys import as_text

__all__ = [
    "DECOMPOSERS",
    "DECOMPOSITIONS",
    "BrierDecomposer",
    "ChecksDecomposer",
    "Decomposer",
    "EmbeddingDecomposer",
    "GroupRuns",
    "KLDecomposer",
    "MSEDecomposer",
]


@dataclass
class GroupRuns:
    """One group's complete runs as the decomposers see them: task codes ``0..n_tasks−1``, each
    task's reference (None: none) and reference key, each run's outcome key; ``warnings`` is
    the group's list, which a decomposer appends to."""

    data: RunArrays
    task: np.ndarray
    n_tasks: int
    references: list[Any]
    keys: np.ndarray
    ref_keys: list[str | None]
    opts: AnalysisOptions
    warnings: list[str]

    def members(self) -> list[np.ndarray]:
        """The run rows of each task, in table order."""
        order = np.argsort(self.task, kind="stable")
        bounds = np.searchsorted(self.task[order], np.arange(self.n_tasks + 1))
        return [order[bounds[t] : bounds[t + 1]] for t in range(self.n_tasks)]


class Decomposer:
    """The interface (module docstring); subclasses set ``name`` and implement both methods."""

    name: ClassVar[str]
    missing: ClassVar[str] = "reference or known success for every run"

    def __init__(self, group: GroupRuns) -> None:
        self.group = group

    def run_verdicts(self) -> np.ndarray:
        raise NotImplementedError

    def decompose(
        self, labels: np.ndarray, hit: np.ndarray, task_judged: np.ndarray
    ) -> TaskDecompositions:
        raise NotImplementedError

    def _per_task(
        self, decompose_task: Callable[[int, np.ndarray], Decomposition | None]
    ) -> TaskDecompositions:
        """``decompose_task(t, run rows)`` for every task (None: the task gets nothing)."""
        g = self.group
        bias = np.full(g.n_tasks, np.nan)
        variance = np.full(g.n_tasks, np.nan)
        error = np.full(g.n_tasks, np.nan)
        count = np.zeros(g.n_tasks, dtype=np.int64)
        has_ref = np.zeros(g.n_tasks, dtype=bool)
        for t, members in enumerate(g.members()):
            d = decompose_task(t, members)
            if d is None:
                continue
            bias[t], variance[t], error[t] = d.bias, d.variance, d.error
            count[t] = d.n
            has_ref[t] = d.has_reference
        bias[~has_ref] = np.nan
        error[~has_ref] = np.nan
        return TaskDecompositions(
            bias, variance, error, count, has_ref, self.name, g.opts.correction
        )


class _ByKey(Decomposer):
    """Judges a run by its outcome key: correct iff it equals the task's reference key."""

    def run_verdicts(self) -> np.ndarray:
        g = self.group
        ref_key = np.empty(g.n_tasks, dtype=object)
        ref_key[:] = g.ref_keys
        run_ref_key = ref_key[g.task]
        n = len(g.task)
        has_key = np.fromiter((k is not None for k in run_ref_key), dtype=bool, count=n)
        by_key = np.fromiter(
            (a == b for a, b in zip(g.keys, run_ref_key, strict=True)), dtype=bool, count=n
        )
        return np.where(has_key, by_key.astype(np.float64), np.nan)


class BrierDecomposer(_ByKey):
    name = "brier"

    def decompose(
        self, labels: np.ndarray, hit: np.ndarray, task_judged: np.ndarray
    ) -> TaskDecompositions:
        g = self.group
        return brier_by_task(
            g.task,
            labels,
            hit,
            has_reference=task_judged,
            n_tasks=g.n_tasks,
            correction=g.opts.correction,
        )


class EmbeddingDecomposer(_ByKey):
    name = "embedding"

    def decompose(
        self, labels: np.ndarray, hit: np.ndarray, task_judged: np.ndarray
    ) -> TaskDecompositions:
        g = self.group
        texts = [as_text(o) if o is not None else "" for o in g.data.outcome]
        ref_texts = {
            t: as_text(g.references[t]) for t in range(g.n_tasks) if g.references[t] is not None
        }
        codes, uniques = factorize(texts + list(ref_texts.values()))
        assert g.opts.embed is not None
        vectors = np.asarray(g.opts.embed([str(u) for u in uniques]), dtype=np.float64)
        if vectors.ndim != 2 or len(vectors) != len(uniques):
            raise AnalysisError(
                f"embed must return an array of shape ({len(uniques)}, d), got {vectors.shape}"
            )
        run_vectors = vectors[codes[: len(texts)]]
        ref_vector = dict(zip(ref_texts, vectors[codes[len(texts) :]], strict=True))
        return self._per_task(
            lambda t, members: embedding_decomposition(
                run_vectors[members], ref_vector.get(t), correction=g.opts.correction
            )
        )


class ChecksDecomposer(Decomposer):
    name = "checks"
    missing = "checks"

    def __init__(self, group: GroupRuns) -> None:
        super().__init__(group)
        self.matrices, self.run_pass = _checks_matrices(group)

    def run_verdicts(self) -> np.ndarray:
        return self.run_pass

    def decompose(
        self, labels: np.ndarray, hit: np.ndarray, task_judged: np.ndarray
    ) -> TaskDecompositions:
        correction = self.group.opts.correction

        def one(t: int, members: np.ndarray) -> Decomposition | None:
            matrix = self.matrices[t]
            return None if matrix is None else checks_decomposition(matrix, correction=correction)

        return self._per_task(one)


class KLDecomposer(Decomposer):
    name = "kl"
    missing = "reference"

    def __init__(self, group: GroupRuns) -> None:
        super().__init__(group)
        self.probs, self.refs, self.run_hit = _kl_inputs(group)

    def run_verdicts(self) -> np.ndarray:
        return self.run_hit

    def decompose(
        self, labels: np.ndarray, hit: np.ndarray, task_judged: np.ndarray
    ) -> TaskDecompositions:
        correction = self.group.opts.correction
        return self._per_task(
            lambda t, members: kl_decomposition(self.probs[t], self.refs[t], correction=correction)
        )


class MSEDecomposer(Decomposer):
    name = "mse"
    missing = "scored runs"

    def __init__(self, group: GroupRuns) -> None:
        super().__init__(group)
        self.targets = _mse_targets(group)

    def run_verdicts(self) -> np.ndarray:
        g = self.group
        score = g.data.score
        target = self.targets[g.task]
        close = np.isclose(score, target, rtol=0, atol=1e-9)
        return np.where(np.isfinite(score), close.astype(np.float64), np.nan)

    def decompose(
        self, labels: np.ndarray, hit: np.ndarray, task_judged: np.ndarray
    ) -> TaskDecompositions:
        g = self.group
        scored = np.isfinite(g.data.score)
        return mse_by_task(
            g.task[scored],
            g.data.score[scored],
            self.targets,
            n_tasks=g.n_tasks,
            correction=g.opts.correction,
        )


#: Every decomposition by name, in the order the documentation lists them.
DECOMPOSERS: dict[str, type[Decomposer]] = {
    d.name: d
    for d in (BrierDecomposer, ChecksDecomposer, KLDecomposer, MSEDecomposer, EmbeddingDecomposer)
}
DECOMPOSITIONS = tuple(DECOMPOSERS)


# ---------------------------------------------------------------------------- checks


def _checks_matrices(g: GroupRuns) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Per task a runs × checks 0/1 matrix (None: no checks); per run 1.0 if all pass (nan: no
    checks). The rules are in the module docstring."""
    attrs = parse_attributes(g.data.attributes)
    explicit = [_explicit_checks(a.get(CHECKS)) for a in attrs]
    matrices: list[np.ndarray | None] = [None] * g.n_tasks
    run_pass = np.full(len(g.task), np.nan)
    no_checks = 0
    for t, members in enumerate(g.members()):
        recorded = [explicit[i] for i in members]
        matrix = None
        if any(r is not None for r in recorded):
            names = sorted({name for r in recorded if r for name in r})
            if names:
                matrix = np.array(
                    [[float((r or {}).get(name, 0.0)) for name in names] for r in recorded]
                )
        elif g.references[t] is not None:
            parsed = reference_actions(g.references[t], g.opts.read_only)
            if parsed is not None and parsed[1]:
                expected = parsed[1]
                assert g.data.pieces is not None
                matrix = np.array(
                    [_match_expected(expected, g.data.pieces[i]) for i in members], dtype=np.float64
                )
        if matrix is None:
            no_checks += 1
            continue
        matrices[t] = matrix
        run_pass[members] = np.all(matrix == 1.0, axis=1).astype(np.float64)
    if no_checks:
        g.warnings.append(
            f"{no_checks} tasks have no checks (no {CHECKS!r} attribute and no reference "
            "list of actions): they get no checks decomposition"
        )
    return matrices, run_pass


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
            raise AnalysisError(f"check {name!r} has value {passed!r}; checks are booleans")
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


# ---------------------------------------------------------------------------- mse


def _mse_targets(g: GroupRuns) -> np.ndarray:
    """Each task's target score: its reference when that is a number, else 1.0 (with warnings)."""
    targets = np.ones(g.n_tasks)
    not_numbers = 0
    for t, ref in enumerate(g.references):
        if ref is None:
            continue
        value = _number(ref)
        if value is None:
            not_numbers += 1
        else:
            targets[t] = value
    if not_numbers:
        g.warnings.append(
            f"{not_numbers} tasks have a reference that is not a number: target 1.0 used"
        )
    missing = int(np.sum(~np.isfinite(g.data.score)))
    if missing:
        g.warnings.append(f"{missing} runs have no score: left out of the mse decomposition")
    return targets


def _number(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# ---------------------------------------------------------------------------- kl


def _kl_inputs(g: GroupRuns) -> tuple[list[np.ndarray], list[Any], np.ndarray]:
    """Per task the n × K probability matrix and the reference (index, distribution or None);
    per run 1.0 when its arg-max class is the reference's (nan: no reference)."""
    probs: list[np.ndarray] = []
    refs: list[Any] = []
    run_hit = np.full(len(g.task), np.nan)
    for t, members in enumerate(g.members()):
        parsed = [_probability(g.data.outcome[i], int(i)) for i in members]
        matrix, ref = _kl_task(t, parsed, g.references[t])
        probs.append(matrix)
        refs.append(ref)
        if ref is not None:
            target = ref if isinstance(ref, int) else int(np.argmax(ref))
            run_hit[members] = (np.argmax(matrix, axis=1) == target).astype(np.float64)
    return probs, refs, run_hit


def _kl_task(
    t: int, parsed: list[list[float] | dict[str, float]], reference: Any
) -> tuple[np.ndarray, Any]:
    """One task's probability matrix and reference, over the labels of its runs and reference."""
    kinds = {type(p) for p in parsed}
    if len(kinds) > 1:
        raise AnalysisError(
            f"task {t}: mixes probability lists and label→probability objects in its outcomes"
        )
    ref_value = _reference_value(reference)
    if dict in kinds:
        labels = sorted({label for p in parsed for label in p})
        if isinstance(ref_value, dict):
            labels = sorted(set(labels) | set(ref_value))
        elif isinstance(ref_value, (str, int)) and str(ref_value) not in labels:
            labels = sorted(set(labels) | {str(ref_value)})
        matrix = np.array([[p.get(label, 0.0) for label in labels] for p in parsed])
        if ref_value is None:
            return matrix, None
        if isinstance(ref_value, dict):
            return matrix, np.array([float(ref_value.get(label, 0.0)) for label in labels])
        if isinstance(ref_value, (str, int)):
            return matrix, labels.index(str(ref_value))
        raise AnalysisError(f"task {t}: reference {reference!r:.80} is not a label or distribution")
    lengths = {len(p) for p in parsed}
    if len(lengths) > 1:
        raise AnalysisError(f"task {t}: probability vectors of different lengths {sorted(lengths)}")
    matrix = np.array(parsed, dtype=np.float64)
    if ref_value is None:
        return matrix, None
    if isinstance(ref_value, list):
        return matrix, np.asarray(ref_value, dtype=np.float64)
    if isinstance(ref_value, int) or (isinstance(ref_value, str) and ref_value.isdigit()):
        return matrix, int(ref_value)
    raise AnalysisError(
        f"task {t}: reference {reference!r:.80} must be a class index or a "
        "probability list when outcomes are probability lists"
    )


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
    raise AnalysisError(
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
