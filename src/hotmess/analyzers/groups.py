"""One analysis per group of runs (``by="agent"``): the groups' results side by side."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from hotmess.errors import AnalysisError
from hotmess.results import Result, jsonable
from hotmess.tables import Table

__all__ = ["GroupResults", "each_group", "per_group"]


@dataclass(frozen=True)
class GroupResults(Result):
    """An analyzer's result per group (``by``), in natural order of the group names; a group
    it cannot measure (too few runs, one length) holds ``{"note": why}`` instead.

    JSON: ``{"by": ..., "groups": {name: result or {"note": ...}}}``."""

    by: str
    groups: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "groups": jsonable(self.groups)}


def per_group(
    runs: Table, steps: Table | None, by: str, compute: Callable[[Table, Table | None], Any],
) -> GroupResults:
    """``compute(runs, steps)`` on each group's runs (:func:`~hotmess.analyzers.split_runs`);
    if no group can be measured, the first group's error is raised."""
    from hotmess.analyzers import split_runs

    return each_group(by, {name: partial(compute, group_runs, group_steps)
                           for name, (group_runs, group_steps) in split_runs(runs, steps, by).items()})


def each_group(by: str, computes: Mapping[str, Callable[[], Any]]) -> GroupResults:
    """The :class:`GroupResults` of ``computes`` (group name → its result's computation, in the
    groups' order); a group whose computation raises AnalysisError gets a note, and if no group
    can be measured, the first group's error is raised."""
    out: dict[str, Any] = {}
    errors: list[AnalysisError] = []
    for name, compute in computes.items():
        try:
            out[name] = compute()
        except AnalysisError as exc:  # an analyzer's "cannot measure this": the group gets a note
            errors.append(exc)
            out[name] = {"note": str(exc)}
    if errors and len(errors) == len(out):
        raise errors[0]
    return GroupResults(by=by, groups=out)
