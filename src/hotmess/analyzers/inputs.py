"""What the analysis pipeline works on: its checked options and the runs as arrays."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hotmess.progress import Progress

__all__ = ["AnalysisOptions", "RunArrays"]


@dataclass(frozen=True)
class AnalysisOptions:
    """The checked options of one :func:`~hotmess.analyzers.analyze` call."""

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
    incomplete: str = "drop"  # "drop" or "fail": what is done with runs that never ended

    @property
    def outcome_name(self) -> str:
        if isinstance(self.outcome, str):
            return self.outcome
        return f"callable:{getattr(self.outcome, '__name__', type(self.outcome).__name__)}"


@dataclass
class RunArrays:
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

    def take(self, index: np.ndarray) -> RunArrays:
        return RunArrays(
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
