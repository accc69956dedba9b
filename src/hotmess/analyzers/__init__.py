"""Analyzers: pure functions over numpy arrays and :class:`hotmess.tables.Table` s.

Outcome mappers (:mod:`.outcomes`), bias-variance decompositions (:mod:`.decompose`),
incoherence with bootstrap intervals (:mod:`.incoherence`), failure consistency
(:mod:`.failures`), pass^k / pass@k (:mod:`.passk`), the pipeline :func:`analyze`
(:mod:`.analysis`, which runs :mod:`.outcome_keys`, :mod:`.decomposers` and :mod:`.group` over
tables read by :mod:`.columns` and :mod:`.actions`; results in :mod:`.results`), intermediate
goals (:mod:`.goals`, :mod:`.goal_keys`, :mod:`.goal_drift`), incoherence over run length
(:mod:`.horizon`, :mod:`.horizon_fit`, :mod:`.median_split`), drift in production
(:mod:`.drift`, :mod:`.windows`, :mod:`.divergence`, :mod:`.changepoints`) and tasks inferred
from requests (:mod:`.tasks`). Nothing here touches SQLite or OpenTelemetry.
"""

from __future__ import annotations

from .analysis import CHECKS_ATTRIBUTE, DECOMPOSITIONS, OUTCOME_METHODS, analyze
from .columns import split_runs
from .decompose import (
    Decomposition,
    TaskDecompositions,
    brier_by_task,
    brier_decomposition,
    checks_decomposition,
    embedding_decomposition,
    kl_decomposition,
    mse_by_task,
    mse_decomposition,
)
from .failures import FailureConsistency, failure_consistency
from .goal_keys import goal_bearing, step_goals
from .goals import GoalCoherence, goal_coherence
from .incoherence import Incoherence, IncoherenceDifference, incoherence, incoherence_difference
from .outcomes import (
    DEFAULT_READ_ONLY,
    NONE_KEY,
    READ_ONLY_NAMES,
    READ_ONLY_PREFIXES,
    MissingDependencyError,
    action_key,
    action_keys,
    canonical_action,
    canonical_json,
    canonical_value,
    embedding_clusters,
    exact_key,
    exact_keys,
    is_read_only,
    map_outcomes,
    normalize_text,
    parse_actions,
    read_only_predicate,
    sentence_transformer_embedder,
    text_clusters,
)
from .passk import pass_at_k, pass_hat_k, pass_ratios
from .results import Analysis, ClusterExample, GroupedAnalysis, TaskResult

__all__ = [
    "CHECKS_ATTRIBUTE",
    "DECOMPOSITIONS",
    "DEFAULT_READ_ONLY",
    "NONE_KEY",
    "OUTCOME_METHODS",
    "READ_ONLY_NAMES",
    "READ_ONLY_PREFIXES",
    "Analysis",
    "ClusterExample",
    "Decomposition",
    "FailureConsistency",
    "GoalCoherence",
    "GroupedAnalysis",
    "Incoherence",
    "IncoherenceDifference",
    "MissingDependencyError",
    "TaskDecompositions",
    "TaskResult",
    "action_key",
    "action_keys",
    "analyze",
    "brier_by_task",
    "brier_decomposition",
    "canonical_action",
    "canonical_json",
    "canonical_value",
    "checks_decomposition",
    "embedding_clusters",
    "embedding_decomposition",
    "exact_key",
    "exact_keys",
    "failure_consistency",
    "goal_bearing",
    "goal_coherence",
    "incoherence",
    "incoherence_difference",
    "is_read_only",
    "kl_decomposition",
    "map_outcomes",
    "mse_by_task",
    "mse_decomposition",
    "normalize_text",
    "parse_actions",
    "pass_at_k",
    "pass_hat_k",
    "pass_ratios",
    "read_only_predicate",
    "sentence_transformer_embedder",
    "split_runs",
    "step_goals",
    "text_clusters",
]
