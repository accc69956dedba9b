"""The results of :func:`~hotmess.analyzers.analyze`: per cluster, per task, per set of runs, per group.

``bias`` is bias² throughout; nan where a figure is undefined (None in ``to_dict()``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hotmess.results import Result

from .incoherence import Incoherence, IncoherenceDifference

__all__ = ["Analysis", "ClusterExample", "GroupedAnalysis", "TaskResult"]


@dataclass(frozen=True)
class ClusterExample(Result):
    """One outcome cluster of a task: its key, size and one example outcome (≤ 200 chars).

    The example is the outcome text of the cluster's first run in table order (for
    ``outcome="actions"``, that run's action key), cut where the task's examples differ
    (:func:`~.examples.differing_excerpts`); ``correct`` is None when the task has no
    reference. A task's clusters are listed largest first, ties by key.
    """

    key: str
    size: int
    example: str | None
    correct: bool | None


@dataclass(frozen=True)
class TaskResult(Result):
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

    json_properties = ('incoherence',)


@dataclass(frozen=True)
class Analysis(Result):
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


@dataclass(frozen=True)
class GroupedAnalysis(Result):
    """:func:`analyze` with ``by=``: one :class:`Analysis` per group and incoherence differences."""

    by: str
    groups: dict[str, Analysis]
    differences: tuple[IncoherenceDifference, ...]
    n_incomplete: int
    warnings: tuple[str, ...] = ()


