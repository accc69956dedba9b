"""The outcome clusters of each task, largest first, each with one example outcome.

A cluster's example is the outcome text of its first run in table order (for
``outcome="actions"``, that run's action key), at most ``EXAMPLE_CHARS`` characters, cut where
the task's examples differ (:func:`differing_excerpts`), so that three wrong bookings sharing a
long beginning show how they differ. A task's clusters are listed largest first, ties by key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .results import ClusterExample

__all__ = ["EXAMPLE_CHARS", "differing_excerpts", "task_clusters"]

EXAMPLE_CHARS = 200


def task_clusters(
    task: np.ndarray,
    n_tasks: int,
    label_codes: np.ndarray,
    label_uniques: list[Any],
    examples: np.ndarray,
    task_judged: np.ndarray,
    task_ref_label: np.ndarray,
) -> tuple[list[list[ClusterExample]], np.ndarray]:
    """Each task's clusters (``correct``: the label is the task's reference label; None when the
    task is not judged), and the number of clusters per task."""
    width = max(len(label_uniques), 1)
    pair = task * width + label_codes
    pairs, first, counts = np.unique(pair, return_index=True, return_counts=True)
    pair_task = pairs // width
    n_clusters = np.bincount(pair_task, minlength=n_tasks)
    label_rank = np.empty(len(label_uniques), dtype=np.int64)
    label_rank[sorted(range(len(label_uniques)), key=lambda i: str(label_uniques[i]))] = np.arange(
        len(label_uniques)
    )
    pair_label = pairs % width
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
    return clusters, n_clusters


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
    """``text`` as a string of at most ``EXAMPLE_CHARS`` characters (cut with an ellipsis)."""
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"
