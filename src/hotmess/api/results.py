"""What the API's imports, exports, run lookups and reports return (analyses return the
analyzers' own results)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hotmess.results import Result

__all__ = ["ExportReport", "ImportReport", "ReportResult", "RunDetail", "RunsOverTime"]


@dataclass(frozen=True)
class ImportReport(Result):
    """What an import stored (:class:`~hotmess.store.writer.ImportResult`: runs in the files,
    new, already stored, steps) and what it read (``batch``: the parser's batch, with what was
    skipped and why). Its JSON is the stored counts with the importer's details."""

    result: Any
    batch: Any = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), **self.extra}


@dataclass(frozen=True)
class ExportReport(Result):
    """What an export wrote: where, how many runs and steps, the days and the files."""

    out: str
    runs: int
    steps: int
    days: list[str]
    files: int


@dataclass(frozen=True)
class RunDetail(Result):
    """One run's row and its step rows in order; in JSON the steps are a forest (each step
    with its ``children``)."""

    run: dict[str, Any]
    steps: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        from hotmess.tables import step_forest

        return {"run": self.run, "steps": step_forest(self.steps)}


@dataclass(frozen=True)
class ReportResult(Result):
    """The report written: where, its size, what it covers and which sections it holds
    (``"included"``, or why not)."""

    path: str
    bytes: int
    runs: int
    tasks: int
    agents: list[str]
    sections: dict[str, str]
    step_trees: dict[str, int]


@dataclass(frozen=True)
class RunsOverTime(Result):
    """Runs started per ``unit`` (hour, day or week, UTC) by status (``hotmess activity``):
    ``buckets`` in time order, each ``{"start": ISO time, "ok": n, "error": n, "incomplete": n}``.
    Every bucket from the first to the last is listed, unless a few stray timestamps lie so far
    apart that only the buckets with runs are."""

    unit: str
    buckets: tuple[dict[str, Any], ...]
