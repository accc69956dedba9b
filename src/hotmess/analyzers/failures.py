"""Failure consistency: do a task's failed runs fail the same way?

For task i with ``m_i`` failed runs, ``c_ik`` of them in outcome cluster k:

- consistency_i = Σ_k c_ik (c_ik − 1) / (m_i (m_i − 1)): the chance that two distinct failed
  runs, drawn without replacement, share a cluster (nan when m_i < 2);
- entropy_i = H(c_i / m_i) / log(m_i), H the Shannon entropy: 0 when all failures share one
  cluster, 1 when all are distinct (nan when m_i < 2);
- overall (pooled over tasks, each pair of failed runs of a task weighing the same):
  Σ_i Σ_k c_ik (c_ik − 1) / Σ_i m_i (m_i − 1); nan when no task has two failures.
- failure diversity = 1 − consistency (per task and pooled): 1 − Σ_k q_k² over the failure
  clusters, q_k = c_ik / m_i, with Σ q² estimated without bias by the pair count above. Success
  cannot drive it (it is read over failed runs only), which is why it is shown next to
  incoherence: under Brier, p ≤ incoherence ≤ (1 + p)/2 whatever the failures look like.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.results import Result

from .common import as_codes, json_float

__all__ = ["FailureConsistency", "failure_consistency"]


@dataclass(frozen=True, eq=False)
class FailureConsistency(Result):
    """Per-task arrays (``failures`` m_i, ``consistency``, ``entropy``) and the pooled ``value``."""

    value: float
    failures: np.ndarray
    consistency: np.ndarray
    entropy: np.ndarray
    n_tasks_with_pairs: int
    #: per task Σ_k c_ik (c_ik − 1), the numerator of the pooled value (to pool sets of tasks)
    same_pairs: np.ndarray | None = None

    @property
    def diversity(self) -> float:
        """Pooled failure diversity, 1 − ``value`` (nan when no task has two failures)."""
        return 1.0 - self.value

    @property
    def task_diversity(self) -> np.ndarray:
        """Per-task failure diversity, 1 − ``consistency`` (nan where m_i < 2)."""
        return 1.0 - self.consistency

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": json_float(self.value),
            "diversity": json_float(self.diversity),
            "n_tasks_with_pairs": int(self.n_tasks_with_pairs),
            "tasks": [
                {"failures": int(m), "consistency": json_float(c), "entropy": json_float(h)}
                for m, c, h in zip(self.failures, self.consistency, self.entropy, strict=True)
            ],
        }


def failure_consistency(
    labels: Sequence[Hashable] | np.ndarray,
    failed: Sequence[bool] | np.ndarray,
    tasks: Any = None,
    *,
    n_tasks: int | None = None,
) -> FailureConsistency:
    """Failure consistency per task and pooled (formulas in the module docstring).

    Parameters
    ----------
    labels : outcome cluster of each run (integer codes or any hashable labels).
    failed : bool per run, True for failed runs (only these are counted).
    tasks : task of each run (codes ``0..T-1`` or labels); ``None``: all runs are one task.
    n_tasks : number of task codes (default: max code + 1).

    Example: one task, failed runs in clusters a, a, a, b: m = 4,
    consistency = (3·2 + 1·0) / (4·3) = 1/2; entropy = H(3/4, 1/4) / log 4 = 0.4056.
    """
    label_codes, n_labels = as_codes(labels, "labels")
    fail = np.asarray(failed, dtype=bool)
    if fail.shape != label_codes.shape:
        raise AnalysisError(f"failed has {fail.size} values but labels has {label_codes.size}")
    if tasks is None:
        task_codes = np.zeros(label_codes.size, dtype=np.int64)
        t_found = 1
    else:
        task_codes, t_found = as_codes(tasks, "tasks")
        if task_codes.shape != label_codes.shape:
            raise AnalysisError(
                f"tasks has {task_codes.size} values but labels has {label_codes.size}"
            )
    n_tasks = t_found if n_tasks is None else int(n_tasks)
    if n_tasks < t_found:
        raise AnalysisError(f"n_tasks={n_tasks} but task codes go up to {t_found - 1}")
    t = task_codes[fail]
    width = max(n_labels, 1)
    pairs, counts = np.unique(t * width + label_codes[fail], return_counts=True)
    # Sum each task's clusters in order of size, not of label code: the label codes follow the
    # order of the runs, and float sums must not (results are invariant to run order).
    order = np.lexsort((counts, pairs // width))
    pairs, counts = pairs[order], counts[order]
    pair_task = pairs // width
    c = counts.astype(np.float64)
    m = np.bincount(t, minlength=n_tasks).astype(np.float64)
    same = np.bincount(pair_task, weights=c * (c - 1), minlength=n_tasks)
    all_pairs = m * (m - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        consistency = np.where(m >= 2, same / all_pairs, np.nan)
        p = c / m[pair_task]
        h = np.bincount(pair_task, weights=-p * np.log(p), minlength=n_tasks)
        entropy = np.where(m >= 2, h / np.log(m), np.nan)
    entropy = np.clip(entropy, 0.0, 1.0)  # rounding only; nan stays nan
    total = all_pairs.sum()
    value = float(same.sum() / total) if total > 0 else float("nan")
    return FailureConsistency(
        value, m.astype(np.int64), consistency, entropy, int((m >= 2).sum()), same
    )
