"""Outcome keys of the analysis pipeline: each run's key and each task's reference key.

The runs' outcomes and the tasks' references go through the same mapper (``outcome=``, see
:mod:`.outcomes`): ``exact`` keys, ``actions`` keys (:mod:`.actions`), ``text`` or
``embedding`` clusters per task (references clustered with their task's runs), or a callable.
A run that crashed without an outcome is keyed by its exception type (:func:`crash_key`), so
crashes of one kind are one cluster; with ``incomplete="fail"``, a run that never ended is
keyed ``"<incomplete>"``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .actions import reference_actions
from .inputs import AnalysisOptions, RunArrays
from .outcomes import (
    canonical_value,
    embedding_clusters,
    exact_key,
    exact_keys,
    map_outcomes,
    text_clusters,
)

__all__ = ["CRASH_PREFIX", "INCOMPLETE_KEY", "as_text", "crash_key", "outcome_keys"]

INCOMPLETE_KEY = "<incomplete>"
CRASH_PREFIX = "<crash> "


def outcome_keys(
    data: RunArrays,
    task: np.ndarray,
    references: list[Any],
    opts: AnalysisOptions,
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
            parsed = reference_actions(references[t], opts.read_only)
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
        texts = [None if o is None else as_text(o) for o in data.outcome]
        texts += [as_text(references[t]) for t in ref_tasks]
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


def as_text(value: Any) -> str:
    """Outcome text for clustering: a JSON string value unwrapped, other JSON kept as text."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if isinstance(parsed, str) else value
    return json.dumps(canonical_value(value))


def crash_key(error: Any) -> str:
    """A crashed run's outcome key: its exception type (``"ValueError: bad id"`` → ``ValueError``),
    so crashes of different kinds are different clusters and the same crash repeats as one."""
    text = "" if error is None else str(error).strip()
    kind = text.split(":", 1)[0].strip() if text else ""
    return CRASH_PREFIX + (kind or "unknown error")
