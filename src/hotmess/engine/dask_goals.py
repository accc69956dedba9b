"""``goals`` on Dask distributed: each task's goal figures on the workers, the combine on the driver.

The plan:

1. ``read_parquet(DIR/steps)`` of the steps that may carry a goal, as
   :func:`hotmess.store.readers.read_goal_steps` selects them (kind ``goal``, ``tool`` or
   ``llm``, or any step with a goal; ``input`` of tool calls only, ``output`` of LLM steps
   only; with ``drift_from="instruction"`` also the ``input`` of each run's first LLM step,
   where :func:`hotmess.store.readers.read_instructions` looks when the run's attributes
   have no instruction), shuffled by run, packed per run and joined to the runs, so that a
   task's group carries its steps (:func:`~hotmess.engine.dask_engine.grouped_by_task`) and
   its runs' instructions (:func:`~hotmess.analyzers.goal_tasks.run_instructions`);
2. with ``method="text"``, a first pass for the TF-IDF fit of the text drift, which is over
   the goal texts of every task: each task's distinct goal texts
   (:func:`~hotmess.analyzers.goal_tasks.goal_texts`) on the workers, made distinct across
   tasks by a shuffle (``drop_duplicates``), their tokens counted per partition; the driver
   adds the counts up (:class:`~hotmess.analyzers.goal_drift.TermFrequencies`, one number per
   token) and hands them to the second pass;
3. ``groupby("task_id").apply``: on the workers, each task's
   :func:`~hotmess.analyzers.goal_tasks.goal_figures` (goal clusters, alignment, the sums per
   position, each run's drift slope);
4. on the driver, :func:`~hotmess.analyzers.goals.goal_combine` in the order of the local
   readers (tasks by id, a run without one first): the means and ratios per position, the
   variance trend, the drift list and the warnings, as ``hotmess goals --db`` gives them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from typing import Any

from hotmess.analyzers.goal_drift import TermFrequencies, term_frequencies
from hotmess.analyzers.goal_tasks import GoalFigures, goal_figures, goal_texts, run_instructions
from hotmess.analyzers.goals import (
    ALIGNMENTS,
    DRIFT_FROM,
    GoalCoherence,
    goal_combine,
    no_goals_message,
)
from hotmess.analyzers.outcomes import DEFAULT_READ_ONLY
from hotmess.errors import AnalysisError, HotmessError
from hotmess.progress import Progress
from hotmess.tables import Table

from .dask_engine import (
    StepSelection,
    checked_source,
    grouped_by_task,
    reader_order,
    refuse_inferred,
    session,
    unboxed,
)
from .dask_progress import computed

__all__ = ["GOAL_STEPS", "goal_steps", "goals"]

#: The step columns of the goals (those of :func:`hotmess.store.readers.read_goal_steps`).
GOAL_STEP_COLUMNS = ("run_id", "step_index", "kind", "name", "tool", "input", "output", "goal")
#: The kinds of step that may carry a goal (and any step with a ``goal``).
GOAL_KINDS = ("goal", "tool", "llm")


def _goal_rows(frame: Any, instructed: bool = False) -> Any:
    """A partition of goal steps as the store reads them: ``input`` of tool calls only,
    ``output`` of LLM steps only (tool results and prompts are not shuffled). ``instructed``
    (drift from the instruction) keeps the ``input`` of each run's first LLM step with one in
    the partition too: the run's first of all is among those, whatever the partitions."""
    import numpy as np

    kind = frame["kind"].astype(object)
    keep_input = (kind == "tool").to_numpy(dtype=bool, copy=True)
    if instructed:
        llm = np.flatnonzero((kind == "llm").to_numpy(dtype=bool) & frame["input"].notna().to_numpy(dtype=bool))
        firsts = (frame.iloc[llm][["run_id", "step_index", "start_ns"]].assign(_row=llm)
                  .sort_values(["run_id", "step_index", "start_ns"], kind="stable")
                  .drop_duplicates("run_id")["_row"].to_numpy(dtype=np.int64))
        keep_input[firsts] = True
    return frame.assign(input=frame["input"].where(keep_input),
                        output=frame["output"].where((kind == "llm").to_numpy(dtype=bool)))


#: The goal-bearing steps of a task's group (and with ``_INSTRUCTED``, the input of each run's
#: first LLM step, where the instruction of a run without one in its attributes is).
GOAL_STEPS = StepSelection(
    GOAL_STEP_COLUMNS, [[("kind", "in", list(GOAL_KINDS))], [("goal", "is not", None)]], _goal_rows
)
_INSTRUCTED = StepSelection(GOAL_STEPS.columns, GOAL_STEPS.filters, partial(_goal_rows, instructed=True))


def goals(
    source: str | os.PathLike[str],
    *,
    scheduler: str | None = None,
    client: Any = None,
    align: str = "index",
    method: str = "exact",
    task: str | None = None,
    tasks: str = "recorded",
    skip_read_only: bool = False,
    drift_threshold: float = 0.1,
    drift_from: str = "first",
    correction: bool = True,
    embed: Any = None,
    n_workers: int | None = None,
    processes: bool = True,
    progress: Progress | None = None,
) -> GoalCoherence:
    """The goal coherence of the Parquet directory ``source`` on Dask (the module docstring),
    equal to ``hotmess.open(db).goals(...)`` of the database it was exported from, with the
    same parameters. ``client``, ``scheduler``, ``n_workers`` and ``processes`` are those of
    :func:`hotmess.engine.dask_engine.analyze`, and ``progress`` too (the text method's first pass
    in its own unit). ``method="embedding"`` and ``tasks="inferred"`` are refused with a
    HotmessError."""
    threshold = _check(align, method, tasks, drift_from, drift_threshold, embed)
    source = checked_source(source)
    read_only = DEFAULT_READ_ONLY if skip_read_only else None
    options: dict[str, Any] = {"read_only": read_only, "drift_from": drift_from}
    try:
        with session(scheduler, client, n_workers, processes) as c:
            frequencies = _frequencies(c, source, task, options, progress) if method == "text" else None
            per_task = partial(_task_goals, options={
                **options, "align": align, "method": method, "correction": correction,
                "frequencies": frequencies,
            })
            grouped = grouped_by_task(c, source, task, per_task, goal_steps(drift_from))
            found = unboxed(None if grouped is None else computed(c, grouped, progress, "Dask tasks: goals"))
    except AnalysisError as exc:
        raise HotmessError(f"{source}: {exc}") from exc
    records = sorted(found, key=_run_order)
    if not records:
        raise HotmessError(f"no runs in {source}" + (f" for task {task!r}" if task else ""))
    result = goal_combine(records, align=align, method=method, read_only_excluded=read_only is not None,
                          drift_threshold=threshold, drift_from=drift_from)
    if result.n_goals == 0:
        raise HotmessError(no_goals_message(str(source), task, skip_read_only))
    return result


def _check(align: str, method: str, tasks: str, drift_from: str, drift_threshold: float, embed: Any) -> float:
    """HotmessError with one sentence for what the engine cannot do; the threshold as a float."""
    refuse_inferred(tasks)
    if align not in ALIGNMENTS:
        raise HotmessError(f"align must be one of {', '.join(ALIGNMENTS)}, not {align!r}")
    if method == "embedding" or embed is not None:
        raise HotmessError("method='embedding' is not available on the engine (the embedding function is not "
                           "shipped to the workers): run it locally with hotmess.open(db).goals(embed=...)")
    if method not in ("exact", "text"):
        raise HotmessError(f"method must be exact or text, not {method!r}")
    if drift_from not in DRIFT_FROM:
        raise HotmessError(f"drift_from must be one of {', '.join(DRIFT_FROM)}, not {drift_from!r}")
    if drift_from == "instruction" and method == "exact":
        raise HotmessError("drift_from='instruction' needs method='text' (an exact goal key never equals "
                           "an instruction, so every distance would be 1)")
    threshold = float(drift_threshold)
    if threshold != threshold or threshold in (float("inf"), float("-inf")):
        raise HotmessError(f"drift_threshold must be finite, not {threshold}")
    return threshold


def _steps(steps: Table | None) -> Table:
    return Table({c: [] for c in GOAL_STEP_COLUMNS}) if steps is None else steps


def goal_steps(drift_from: str) -> StepSelection:
    """The steps the goals read: :data:`GOAL_STEPS`, with drift from the instruction also the
    input of each run's first LLM step."""
    return _INSTRUCTED if drift_from == "instruction" else GOAL_STEPS


def _instructions(runs: Table, steps: Table, options: Mapping[str, Any]) -> dict[str, str] | None:
    return run_instructions(runs, steps) if options["drift_from"] == "instruction" else None


def _task_goals(runs: Table, steps: Table | None, options: Mapping[str, Any]) -> GoalFigures:
    """On a worker: one task's :class:`~hotmess.analyzers.goal_tasks.GoalFigures`."""
    steps = _steps(steps)
    return goal_figures(runs, steps, instructions=_instructions(runs, steps, options), **options)


def _task_texts(runs: Table, steps: Table | None, options: Mapping[str, Any]) -> list[str]:
    """On a worker: one task's distinct goal texts for the TF-IDF fit of the text drift."""
    steps = _steps(steps)
    return goal_texts(runs, steps, instructions=_instructions(runs, steps, options), **options)


def _frequencies(client: Any, source: Any, task: str | None, options: Mapping[str, Any],
                 progress: Progress | None) -> TermFrequencies:
    """The TF-IDF fit of the text drift over every task's goal texts (the module docstring, 2)."""
    import pandas as pd

    grouped = grouped_by_task(client, source, task, partial(_task_texts, options=options),
                              goal_steps(options["drift_from"]))
    if grouped is None:
        return TermFrequencies(0, {})
    texts = grouped.map_partitions(_text_rows, meta=pd.DataFrame({"text": pd.Series([], dtype=object)}))
    counted = texts.drop_duplicates().map_partitions(_term_counts, meta=("counts", "object"))
    n_texts, df = 0, {}
    for part in computed(client, counted, progress, "Dask tasks: goal texts").tolist():
        n_texts += part.n_texts
        for token, count in part.df.items():
            df[token] = df.get(token, 0) + count
    return TermFrequencies(n_texts, df)


def _text_rows(boxes: Any) -> Any:
    """A partition of boxed per-task text lists as one row per text."""
    import pandas as pd

    texts = [t for box in boxes.tolist() if box is not None for t in box.value]
    return pd.DataFrame({"text": pd.Series(texts, dtype=object)})


def _term_counts(frame: Any) -> Any:
    """A partition of distinct texts as one value: their :class:`TermFrequencies`."""
    import pandas as pd

    return pd.Series([term_frequencies([str(t) for t in frame["text"].tolist()])], dtype=object)


def _run_order(record: GoalFigures) -> tuple[int, str]:
    """The local readers' order of tasks (:func:`~.dask_engine.reader_order`); a record without
    complete runs last."""
    if not len(record.run_tasks):
        return (2, "")
    first = str(record.run_tasks[0])
    return reader_order(None if first == "<none>" else first)
