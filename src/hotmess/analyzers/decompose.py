"""Per-task bias-variance decompositions of error.

Each returns a :class:`Decomposition` ``(bias, variance, error, n)``; ``bias`` is the squared
bias (bias²), named ``bias`` in output. For every decomposition here,
``error == bias + variance`` (exactly in arithmetic, up to float rounding in practice).

Where no reference is known, only variance (self-consistency) is defined: ``bias`` and
``error`` are nan and ``has_reference`` is False.

**Small-sample correction (the default).** The plug-in variance ``V`` (the paper's estimate,
Hägele et al., "The Hot Mess of AI", ICLR 2026) is low by the factor ``(n − 1)/n`` and the
plug-in bias² ``B`` high by exactly what variance loses, while the plug-in error is already
unbiased. ``correction=True`` therefore reports, for a task with ``n ≥ 2`` runs::

    variance = V · n / (n − 1)
    bias     = B − V / (n − 1)
    error    = B + V                 (unchanged, so bias + variance = error still holds)

For Brier and 0/1 checks the corrected bias is the unbiased pair-count estimate of ‖y − p‖²
and is never negative; for scores, fractional checks and embeddings it can dip below 0 by
chance, and is then set to 0 with ``variance = error`` (the identity kept, the variance never
above ``V · n/(n−1)``). Without a reference only ``variance = V · n/(n − 1)`` is defined. A task
with one run has no variance (nan). The KL decomposition's variance is not a mean squared
deviation, so the factor does not unbias it: KL stays plug-in whatever ``correction`` says (its
result reports ``correction=False``). ``correction=False`` gives the plug-in figures.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotmess.errors import AnalysisError
from hotmess.results import Result

from .common import as_codes, json_float

__all__ = [
    "Decomposition",
    "TaskDecompositions",
    "brier_by_task",
    "brier_decomposition",
    "checks_decomposition",
    "embedding_decomposition",
    "kl_decomposition",
    "mse_by_task",
    "mse_decomposition",
]

#: Laplace smoothing of probability vectors in the KL decomposition (add, then renormalise).
KL_DELTA = 1e-12


@dataclass(frozen=True)
class Decomposition(Result):
    """One task's decomposition: ``error = bias + variance`` (``bias`` is bias²)."""

    bias: float
    variance: float
    error: float
    n: int
    has_reference: bool = True
    method: str = "brier"
    correction: bool = True

    @property
    def incoherence(self) -> float:
        """``variance / error`` (nan when error is 0 or unknown)."""
        if not np.isfinite(self.error) or self.error == 0:
            return float("nan")
        return self.variance / self.error

    def to_dict(self) -> dict[str, Any]:
        return {
            "bias": json_float(self.bias),
            "variance": json_float(self.variance),
            "error": json_float(self.error),
            "n": int(self.n),
            "has_reference": bool(self.has_reference),
            "method": self.method,
            "correction": bool(self.correction),
            "incoherence": json_float(self.incoherence),
        }


@dataclass(frozen=True, eq=False)
class TaskDecompositions(Result):
    """Decompositions of many tasks as arrays (one entry per task code ``0..T-1``)."""

    bias: np.ndarray
    variance: np.ndarray
    error: np.ndarray
    n: np.ndarray
    has_reference: np.ndarray
    method: str = "brier"
    correction: bool = True

    def __len__(self) -> int:
        return len(self.n)

    def __getitem__(self, i: int) -> Decomposition:
        return Decomposition(
            bias=float(self.bias[i]),
            variance=float(self.variance[i]),
            error=float(self.error[i]),
            n=int(self.n[i]),
            has_reference=bool(self.has_reference[i]),
            method=self.method,
            correction=self.correction,
        )

    def to_dict(self) -> list[dict[str, Any]]:
        return [self[i].to_dict() for i in range(len(self))]


def _finish(
    bias: np.ndarray,
    variance: np.ndarray,
    error: np.ndarray,
    n: np.ndarray,
    has_reference: np.ndarray,
    method: str,
    correction: bool,
) -> TaskDecompositions:
    """Apply the small-sample correction (module docstring) and blank bias/error without a reference."""
    n = np.asarray(n, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.float64).copy()
    variance = np.asarray(variance, dtype=np.float64).copy()
    error = np.asarray(error, dtype=np.float64).copy()
    has_reference = np.asarray(has_reference, dtype=bool)
    empty = n == 0
    variance[empty] = np.nan
    if correction and method != "kl":
        several = n >= 2
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(several, variance / np.maximum(n - 1, 1), np.nan)
        unbiased_bias = np.maximum(bias - shift, 0.0)
        variance = np.where(has_reference, error - unbiased_bias, variance + shift)
        variance[~several] = np.nan
        bias = np.where(several, unbiased_bias, np.nan)
    elif method == "kl":
        correction = False
    bias[~has_reference | empty] = np.nan
    error[~has_reference | empty] = np.nan
    return TaskDecompositions(bias, variance, error, n, has_reference & ~empty, method, correction)


# ---------------------------------------------------------------------------- Brier


def brier_by_task(
    tasks: Any,
    labels: Any,
    reference_hit: Any = None,
    *,
    has_reference: Any = None,
    n_tasks: int | None = None,
    correction: bool = True,
) -> TaskDecompositions:
    """Brier decomposition over outcome clusters for all tasks at once (vectorised).

    Each run is a one-hot vector ``f`` over its task's outcome clusters; ``p̄`` is the task's
    empirical cluster distribution and ``y`` the one-hot reference cluster. With ``n`` runs,
    ``c_k`` runs in cluster ``k`` and ``h`` runs in the reference cluster (``p̄_y = h / n``,
    0 when the reference cluster is not among the runs)::

        error    = E‖y − f‖²  = 2 (1 − p̄_y)
        bias     = ‖y − p̄‖²  = (1 − p̄_y)² + Σ_{k≠y} p̄_k²
        variance = E‖f − p̄‖² = 1 − Σ_k p̄_k²

    Parameters
    ----------
    tasks : task of each run: integer codes ``0..T-1`` or any labels (factorised).
    labels : outcome cluster of each run: integer codes or any hashable labels.
    reference_hit : bool per run, True iff the run is in its task's reference cluster (the hit
        runs of a task must all share one label). ``None``: no reference anywhere (variance only).
    has_reference : bool per task; default: every task has a reference iff ``reference_hit`` is
        given. A task with a reference and no hit has ``p̄_y = 0``.
    n_tasks : number of task codes (default: max code + 1).
    correction : the unbiased small-sample form (module docstring); False: plug-in.
    """
    task_codes, t_found = as_codes(tasks, "tasks")
    label_codes, n_labels = as_codes(labels, "labels")
    if len(task_codes) != len(label_codes):
        raise AnalysisError(
            f"tasks has {len(task_codes)} values but labels has {len(label_codes)}; one per run"
        )
    n_tasks = t_found if n_tasks is None else int(n_tasks)
    if n_tasks < t_found:
        raise AnalysisError(f"n_tasks={n_tasks} but task codes go up to {t_found - 1}")
    n = np.bincount(task_codes, minlength=n_tasks)
    pair = task_codes * max(n_labels, 1) + label_codes
    pairs, counts = np.unique(pair, return_counts=True)
    pair_task = pairs // max(n_labels, 1)
    sumsq = np.bincount(pair_task, weights=counts.astype(np.float64) ** 2, minlength=n_tasks)
    nf = n.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (nf**2 - sumsq) / nf**2
    if reference_hit is None:
        if has_reference is not None and np.any(has_reference):
            raise AnalysisError("has_reference is set for some tasks but reference_hit is None")
        hits = np.zeros(n_tasks)
        has_ref = np.zeros(n_tasks, dtype=bool)
    else:
        hit = np.asarray(reference_hit, dtype=bool)
        if hit.shape != task_codes.shape:
            raise AnalysisError(
                f"reference_hit has {hit.size} values, expected {len(task_codes)} (one per run)"
            )
        hit_pairs = np.unique(pair[hit])
        clusters_hit = np.bincount(hit_pairs // max(n_labels, 1), minlength=n_tasks)
        if np.any(clusters_hit > 1):
            bad = int(np.flatnonzero(clusters_hit > 1)[0])
            raise AnalysisError(
                f"reference_hit marks runs of {int(clusters_hit[bad])} different clusters in task "
                f"code {bad}; the reference is one cluster"
            )
        hits = np.bincount(task_codes, weights=hit.astype(np.float64), minlength=n_tasks)
        if has_reference is None:
            has_ref = np.ones(n_tasks, dtype=bool)
        else:
            has_ref = np.asarray(has_reference, dtype=bool)
            if has_ref.shape != (n_tasks,):
                raise AnalysisError(f"has_reference must have one value per task ({n_tasks})")
            if np.any(hits[~has_ref] > 0):
                raise AnalysisError("reference_hit is True for a run of a task without reference")
    with np.errstate(divide="ignore", invalid="ignore"):
        # integer counts: (n − h)² + Σ_{k≠y} c_k², all over n²
        bias = ((nf - hits) ** 2 + (sumsq - hits**2)) / nf**2
        error = 2.0 * (nf - hits) / nf
    return _finish(bias, variance, error, n, has_ref, "brier", correction)


def brier_decomposition(
    labels: Sequence[Hashable] | np.ndarray,
    reference: Hashable | None = None,
    *,
    correction: bool = True,
) -> Decomposition:
    """Brier decomposition of one task's runs over outcome clusters.

    ``labels`` are the runs' outcome clusters, ``reference`` the reference cluster (``None``:
    unknown, variance only; a label not among ``labels``: ``p̄_y = 0``)::

        error = 2 (1 − p̄_y),  bias = ‖y − p̄‖²,  variance = 1 − Σ_k p̄_k²

    Example: labels ``a a b c``, reference ``a``: p̄ = (1/2, 1/4, 1/4), error = 2(1 − 1/2) = 1,
    bias = (1/2)² + (1/4)² + (1/4)² = 3/8, variance = 1 − 6/16 = 5/8.
    """
    labels = list(labels)
    if not labels:
        raise AnalysisError("labels is empty: a decomposition needs at least one run")
    hit = None if reference is None else np.array([lab == reference for lab in labels])
    codes_in = np.empty(len(labels), dtype=object)
    codes_in[:] = labels
    result = brier_by_task(
        np.zeros(len(labels), dtype=np.int64), codes_in, hit, n_tasks=1, correction=correction
    )
    return result[0]


# ---------------------------------------------------------------------------- KL


def _probability_rows(probs: Any, name: str) -> np.ndarray:
    array = np.asarray(probs, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise AnalysisError(
            f"{name} must be a non-empty 2-D array (runs × classes), got {array.shape}"
        )
    if not np.isfinite(array).all() or (array < 0).any():
        raise AnalysisError(f"{name} must hold finite non-negative probabilities")
    sums = array.sum(axis=1)
    if (sums <= 0).any():
        raise AnalysisError(f"every row of {name} must have a positive sum")
    return array / sums[:, None]


def _smooth(p: np.ndarray, delta: float) -> np.ndarray:
    p = p + delta
    return p / p.sum(axis=-1, keepdims=True)


def kl_decomposition(
    probs: Any,
    reference: int | Sequence[float] | np.ndarray | None = None,
    *,
    delta: float = KL_DELTA,
    correction: bool = True,
) -> Decomposition:
    """KL decomposition of one task's probability outputs (the paper's, for classifiers).

    ``probs`` is ``n × K`` (each row a distribution ``f``; rows are normalised, then Laplace
    smoothed: add ``delta`` and renormalise). ``f̄`` is the normalised geometric mean,
    ``f̄ ∝ exp(mean_i log f_i)``. ``reference`` is a class index (one-hot ``y``), a distribution
    over the K classes, or ``None`` (variance only)::

        bias     = KL(y ‖ f̄)
        variance = E_i KL(f̄ ‖ f_i)
        error    = E_i KL(y ‖ f_i) = bias + variance

    For a one-hot ``y`` the error is the expected cross-entropy ``E[CE(y, f)]``; for a
    distribution it is ``E[CE(y, f)] − H(y)``. The identity holds because
    ``E_i KL(f̄‖f_i) = −log Σ_k exp(mean_i log f_ik)``.
    """
    f = _smooth(_probability_rows(probs, "probs"), float(delta))
    n, k = f.shape
    log_f = np.log(f)
    mean_log = log_f.mean(axis=0)
    top = mean_log.max()
    log_fbar = mean_log - (top + np.log(np.exp(mean_log - top).sum()))
    fbar = np.exp(log_fbar)
    variance = float(np.mean((fbar * (log_fbar - log_f)).sum(axis=1)))
    if reference is None:
        bias = error = float("nan")
        has_ref = False
    else:
        if np.ndim(reference) == 0:
            index = int(reference)  # type: ignore[arg-type]
            if not 0 <= index < k:
                raise AnalysisError(f"reference class {index} is out of range for {k} classes")
            y = np.zeros(k)
            y[index] = 1.0
        else:
            y = _probability_rows(np.asarray(reference, dtype=np.float64)[None, :], "reference")[0]
            if y.shape != (k,):
                raise AnalysisError(f"reference has {y.size} classes, probs has {k}")
        support = y > 0
        log_y = np.log(y[support])
        bias = float((y[support] * (log_y - log_fbar[support])).sum())
        error = float((y[support] * (log_y[None, :] - log_f[:, support])).sum(axis=1).mean())
        has_ref = True
    result = _finish(
        np.array([bias]),
        np.array([variance]),
        np.array([error]),
        np.array([n]),
        np.array([has_ref]),
        "kl",
        correction,
    )
    return result[0]


# ---------------------------------------------------------------------------- checks


def checks_decomposition(checks: Any, *, correction: bool = True) -> Decomposition:
    """Decomposition of a task's runs over T checks ("coverage error").

    ``checks`` is ``n × T``: entry ``y_it`` is 1 if run i passed check t (0/1, or a value in
    [0, 1]); the target is 1 everywhere. With ``ȳ_t`` the column means::

        error    = mean_{i,t} (1 − y_it)²
        bias     = mean_t (1 − ȳ_t)²
        variance = mean_{i,t} (y_it − ȳ_t)²

    Example: runs (1,0), (1,1): ȳ = (1, 1/2); error = (0+1+0+0)/4 = 1/4;
    bias = (0 + 1/4)/2 = 1/8; variance = (0 + 1/4 + 0 + 1/4)/4 = 1/8.
    """
    y = np.asarray(checks, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] == 0 or y.shape[1] == 0:
        raise AnalysisError(f"checks must be a non-empty 2-D array (runs × checks), got {y.shape}")
    if not np.isfinite(y).all() or (y < 0).any() or (y > 1).any():
        raise AnalysisError("checks must be 0/1 (or values in [0, 1])")
    ybar = y.mean(axis=0)
    error = float(np.mean((1.0 - y) ** 2))
    bias = float(np.mean((1.0 - ybar) ** 2))
    variance = float(np.mean((y - ybar) ** 2))
    result = _finish(
        np.array([bias]),
        np.array([variance]),
        np.array([error]),
        np.array([y.shape[0]]),
        np.array([True]),
        "checks",
        correction,
    )
    return result[0]


# ---------------------------------------------------------------------------- scalar scores


def mse_by_task(
    tasks: Any,
    scores: Any,
    targets: Any = None,
    *,
    n_tasks: int | None = None,
    correction: bool = True,
) -> TaskDecompositions:
    """MSE decomposition of scalar scores for all tasks at once (vectorised).

    Per task, scores ``s`` against target ``τ`` (``targets[task]``; nan or ``targets=None``:
    no reference)::

        error = mean (s − τ)²,  bias = (s̄ − τ)²,  variance = mean (s − s̄)²
    """
    task_codes, t_found = as_codes(tasks, "tasks")
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != task_codes.shape:
        raise AnalysisError(f"scores has {s.size} values, expected {len(task_codes)} (one per run)")
    if not np.isfinite(s).all():
        raise AnalysisError("scores must be finite (drop runs without a score first)")
    n_tasks = t_found if n_tasks is None else int(n_tasks)
    if targets is None:
        tau = np.full(n_tasks, np.nan)
    else:
        tau = np.asarray(targets, dtype=np.float64)
        if tau.shape != (n_tasks,):
            raise AnalysisError(f"targets must have one value per task ({n_tasks}), got {tau.shape}")
    n = np.bincount(task_codes, minlength=n_tasks)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.bincount(task_codes, weights=s, minlength=n_tasks) / n
        variance = (
            np.bincount(task_codes, weights=(s - mean[task_codes]) ** 2, minlength=n_tasks) / n
        )
        bias = (mean - tau) ** 2
        error = np.bincount(task_codes, weights=(s - tau[task_codes]) ** 2, minlength=n_tasks) / n
    has_ref = np.isfinite(tau)
    return _finish(bias, variance, error, n, has_ref, "mse", correction)


def mse_decomposition(
    scores: Sequence[float] | np.ndarray, target: float | None = None, *, correction: bool = True
) -> Decomposition:
    """MSE decomposition of one task's scores ``s`` against ``target`` τ (``None``: variance only)::

        error = mean (s − τ)²,  bias = (s̄ − τ)²,  variance = mean (s − s̄)²

    Example: s = (0, 1, 1), τ = 1: s̄ = 2/3; error = 1/3, bias = 1/9, variance = 2/9.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise AnalysisError(f"scores must be a non-empty 1-D array, got shape {s.shape}")
    tau = np.array([np.nan if target is None else float(target)])
    return mse_by_task(np.zeros(s.size, dtype=np.int64), s, tau, n_tasks=1, correction=correction)[
        0
    ]


# ---------------------------------------------------------------------------- embeddings


def embedding_decomposition(
    vectors: Any, reference: Any = None, *, correction: bool = True
) -> Decomposition:
    """Spread of one task's outcome embeddings ``v_i`` (``n × d``) around their mean ``v̄``::

    variance = mean_i ‖v_i − v̄‖²
    bias     = ‖v̄ − r‖²,  error = mean_i ‖v_i − r‖²   (only with a reference vector r)
    """
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] == 0:
        raise AnalysisError(f"vectors must be a non-empty 2-D array (runs × dims), got {v.shape}")
    if not np.isfinite(v).all():
        raise AnalysisError("vectors contain nan or inf")
    mean = v.mean(axis=0)
    variance = float(((v - mean) ** 2).sum(axis=1).mean())
    if reference is None:
        bias = error = float("nan")
        has_ref = False
    else:
        r = np.asarray(reference, dtype=np.float64)
        if r.shape != mean.shape:
            raise AnalysisError(f"reference has shape {r.shape}, expected {mean.shape}")
        bias = float(((mean - r) ** 2).sum())
        error = float(((v - r) ** 2).sum(axis=1).mean())
        has_ref = True
    result = _finish(
        np.array([bias]),
        np.array([variance]),
        np.array([error]),
        np.array([v.shape[0]]),
        np.array([has_ref]),
        "embedding",
        correction,
    )
    return result[0]
