"""``analyze`` on Dask distributed: group by task on the workers, combine on the driver.

The plan (one ``compute``):

1. ``read_parquet(DIR/runs)`` (the :data:`~hotmess.tables.RUN_COLUMNS`; with ``task``, only
   that task's rows are read);
2. when the outcome or the decomposition needs tool calls (``outcome="actions"``,
   ``decomposition="checks"``): ``read_parquet(DIR/steps)`` filtered to ``kind == "tool"``,
   shuffled by run, each run's tool steps packed into one value (``map_partitions``) and
   joined to its run (``merge`` on ``run_id``), so a task's group carries its steps;
3. ``groupby("task_id").apply(task_record)``: on the workers, each task's rows become the
   same :class:`~hotmess.tables.Table`\\ s the SQLite readers return (rows in their order), and
   :func:`~hotmess.analyzers.analysis.task_figures` computes the task's figures;
4. on the driver, :func:`~hotmess.analyzers.analysis.combine` forms the ratios of sums, the
   interval over tasks, pass^k and the warnings, exactly as the local analysis does.

What crosses the network per task is its :class:`~hotmess.analyzers.group.TaskFigures`: a few
numbers and its cluster listing (each cluster's key, size and a 200-character example).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from hotmess.analyzers.analysis import (
    analysis_options,
    combine,
    combine_groups,
    grouped_figures,
    task_figures,
)
from hotmess.analyzers.columns import NO_GROUP, check_by
from hotmess.errors import AnalysisError, HotmessError
from hotmess.progress import Progress
from hotmess.tables import ANALYSIS_STEP_COLUMNS, RUN_COLUMNS, Table

from .dask_progress import before_closing_the_cluster, computed

__all__ = [
    "TOOL_STEPS", "Source", "StepSelection", "analyze", "checked_source", "connect", "grouped_by_task", "horizon",
    "per_task_records", "reader_order", "refuse_inferred", "session", "unboxed", "with_run_ids",
]

#: The column of the runs frame that carries each run's packed tool steps.
STEPS_COLUMN = "_tool_steps"
#: The column the runs are grouped by: the task id, "<none>" for a run without one.
TASK_KEY = "_task"
#: The order of a task's runs, and of a run's steps, in the SQLite readers.
RUN_ORDER = ["start_ns", "instance", "run_id"]
STEP_ORDER = ["step_index", "start_ns"]


def _dask() -> tuple[Any, Any]:
    try:
        import dask.dataframe as dd
        import distributed
    except ImportError:  # pragma: no cover - depends on the install
        raise HotmessError("the Dask engine needs dask: pip install 'hotmess[dask]'") from None
    return dd, distributed


def connect(scheduler: str | None = None, *, n_workers: int | None = None,
            processes: bool = True) -> Any:
    """A ``distributed.Client``: to the scheduler at ``scheduler`` (``tcp://host:8786``), or to
    a new ``LocalCluster`` of ``n_workers`` single-threaded workers (default: one per core;
    ``processes=False`` keeps them in this process, as the tests do)."""
    _, distributed = _dask()
    if scheduler:
        return distributed.Client(scheduler)
    # the in-process scheduler logs each shuffle it starts and ends at WARNING level
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    cluster = distributed.LocalCluster(
        n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=processes,
        dashboard_address=":0",  # a free port: never the one another cluster holds
    )
    return distributed.Client(cluster)


def analyze(
    source: str | os.PathLike[str],
    *,
    scheduler: str | None = None,
    client: Any = None,
    task: str | None = None,
    outcome: str = "exact",
    decomposition: str = "brier",
    by: str | None = None,
    tasks: str = "recorded",
    correction: bool = True,
    interval: str = "jackknife",
    incomplete: str = "drop",
    n_boot: int = 2000,
    seed: int = 0,
    n_workers: int | None = None,
    processes: bool = True,
    progress: Progress | None = None,
) -> Any:
    """The analysis of the Parquet directory ``source`` on Dask (the module docstring), equal
    to ``hotmess.open(db).analyze(...)`` of the database it was exported from, with the same
    parameters (:func:`hotmess.analyzers.analyze`).

    ``client`` is a ``distributed.Client`` to use (it is left open); otherwise one is made by
    :func:`connect` (``scheduler`` address, or a ``LocalCluster``) and closed at the end.
    With ``by``, each task's runs are split into the groups on the workers
    (:func:`~hotmess.analyzers.analysis.grouped_figures`) and each group's tasks combined on the
    driver (:func:`~hotmess.analyzers.analysis.combine_groups`). ``tasks="inferred"`` is not
    available on the engine. ``progress(unit, done, total)`` is told the Dask graph's tasks
    finished as they finish (:mod:`.dask_progress`).
    """
    refuse_inferred(tasks)
    try:
        options = analysis_options(outcome=outcome, decomposition=decomposition, correction=correction,
                                   interval=interval, incomplete=incomplete, n_boot=n_boot, seed=seed)
    except AnalysisError as exc:
        raise HotmessError(str(exc)) from exc
    source = checked_source(source)
    per_task = (partial(task_figures, options=options) if by is None
                else partial(grouped_figures, by=by, options=options, check=False))
    records = per_task_records(source, scheduler, client, n_workers, processes, task, per_task,
                               with_steps=outcome == "actions" or decomposition == "checks", progress=progress)
    every = records if by is None else [f for part in records for f in part.figures.values()]
    if not records or sum(len(f.task_ids) + f.n_incomplete for f in every) == 0:
        raise HotmessError(f"no runs in {source}" + (f" for task {task!r}" if task else ""))
    try:
        if by is None:
            return combine(records, options)
        _check_by(by, [part.figures for part in records])
        return combine_groups(by, records, options)
    except AnalysisError as exc:
        raise HotmessError(f"{source}: {exc}") from exc


def horizon(
    source: str | os.PathLike[str],
    *,
    scheduler: str | None = None,
    client: Any = None,
    length: str = "steps",
    groups: int | None = None,
    by: str | None = None,
    outcome: str = "exact",
    decomposition: str = "brier",
    correction: bool = True,
    n_boot: int = 2000,
    seed: int = 0,
    tasks: str = "recorded",
    n_workers: int | None = None,
    processes: bool = True,
    progress: Progress | None = None,
) -> Any:
    """The horizon of the Parquet directory ``source`` on Dask, equal to
    ``hotmess.open(db).horizon(...)`` of the database it was exported from: each task's
    :func:`~hotmess.analyzers.horizon.horizon_figures` on the workers (its task figures, its
    median halves' figures, its length sums), :func:`~hotmess.analyzers.horizon.horizon_combine`
    on the driver (groups, fits, the bootstrap over tasks, the paired split). With ``by``, the
    same per group: :func:`~hotmess.analyzers.horizon.grouped_horizon_figures` on the workers,
    :func:`~hotmess.analyzers.horizon.horizon_combine_groups` on the driver. ``progress`` as in
    :func:`analyze`."""
    from hotmess.analyzers.horizon import (
        LENGTHS,
        grouped_horizon_figures,
        horizon_combine,
        horizon_combine_groups,
        horizon_figures,
    )

    refuse_inferred(tasks)
    if length not in LENGTHS:
        raise HotmessError(f"length must be one of {', '.join(LENGTHS)}, not {length!r}")
    try:
        options = analysis_options(outcome=outcome, decomposition=decomposition, correction=correction,
                                   n_boot=n_boot, seed=seed)
    except AnalysisError as exc:
        raise HotmessError(str(exc)) from exc
    source = checked_source(source)
    per_task = (partial(horizon_figures, options=options, length=length, seed=seed) if by is None
                else partial(grouped_horizon_figures, by=by, options=options, length=length, seed=seed))
    records = per_task_records(source, scheduler, client, n_workers, processes, None, per_task,
                               with_steps=outcome == "actions", progress=progress)
    every = records if by is None else [f for part in records for f in part.values()]
    if not records or sum(r.n_runs + r.n_incomplete for r in every) == 0:
        raise HotmessError(f"no runs in {source}")
    try:
        if by is None:
            return horizon_combine(records, options, length=length, groups=groups, seed=seed)
        _check_by(by, records)
        return horizon_combine_groups(by, records, options, length=length, groups=groups, seed=seed)
    except AnalysisError as exc:
        raise HotmessError(f"{source}: {exc}") from exc


def _check_by(by: str, groups_per_task: list[Any]) -> None:
    """The check the workers left out (:func:`~hotmess.analyzers.columns.group_values`): ``by``
    is a runs column or some run's attribute, over every task's runs."""
    check_by(by, list(RUN_COLUMNS), all(set(groups) <= {NO_GROUP} for groups in groups_per_task))


def refuse_inferred(tasks: str) -> None:
    """HotmessError for ``tasks="inferred"``, which no command takes on the engine."""
    if tasks != "recorded":
        raise HotmessError("--tasks inferred is not available on the engine: the inferred tasks are in the database, not the export")


def reader_order(task_id: str | None) -> tuple[int, str]:
    """The place of a task's record among the others in the SQLite readers' order
    (``ORDER BY task_id``): a run without a task first, then by id."""
    return (0, "") if task_id is None else (1, str(task_id))


class Source:
    """Where the Parquet layout is: a directory on this machine (or one every worker mounts at the
    same path), or a URL that fsspec reads, such as ``s3://bucket/prefix`` (``pip install
    'hotmess[s3]'``; credentials and endpoint from the environment, e.g. ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, as every worker sees them)."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.name = str(source)
        self.url = self.name.rstrip("/") or "/"
        try:
            import fsspec

            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except ImportError as exc:  # the URL's filesystem is not installed (s3fs, gcsfs, ...)
            raise HotmessError(f"{self.name}: {exc} (for s3:// URLs: pip install 'hotmess[s3]')") from None
        except ValueError as exc:  # an unknown protocol
            raise HotmessError(f"{self.name}: {exc}") from None

    def part(self, name: str) -> str:
        """The URL (or path) of the ``runs`` or ``steps`` part, as ``read_parquet`` takes it."""
        return f"{self.url}/{name}"

    def file_bytes(self, name: str) -> list[int]:
        """The size of each day file of the part ``name``."""
        found = self.fs.glob(f"{self.root.rstrip('/')}/{name}/day=*/*.parquet", detail=True)
        return [int(info.get("size") or 0) for info in found.values()]

    def __str__(self) -> str:
        return self.name


def checked_source(source: str | os.PathLike[str]) -> Source:
    source = Source(source)
    for part in ("runs", "steps"):
        try:
            found = source.fs.isdir(f"{source.root.rstrip('/')}/{part}")
        except Exception as exc:  # noqa: BLE001 - a store's own errors (credentials, network) named
            raise HotmessError(f"{source}: cannot read it: {type(exc).__name__}: {exc}") from None
        if not found:
            raise HotmessError(f"{source}: no {part}/ directory (write one with hotmess export parquet)")
    return source


@dataclass(frozen=True)
class StepSelection:
    """The steps a task's group carries: ``columns`` (``run_id`` first) of the steps that pass
    ``filters`` (``read_parquet``'s, in disjunctive normal form), each partition then passed
    through ``select`` (rows kept, values blanked) before the shuffle by run."""

    columns: tuple[str, ...]
    filters: list[Any] | None
    select: Callable[[Any], Any] | None = None


#: The tool steps with the columns the analyzers read (``analyze``, ``horizon``).
TOOL_STEPS = StepSelection(ANALYSIS_STEP_COLUMNS, [("kind", "==", "tool")])


@contextmanager
def session(scheduler: str | None, client: Any, n_workers: int | None, processes: bool) -> Iterator[Any]:
    """``client``, or one made by :func:`connect` and closed at the end."""
    own = client is None
    client = connect(scheduler, n_workers=n_workers, processes=processes) if own else client
    try:
        yield client
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            if cluster is not None:
                before_closing_the_cluster()
            client.close()
            if cluster is not None:
                cluster.close()


def per_task_records(source: Source, scheduler: str | None, client: Any, n_workers: int | None,
                     processes: bool, task: str | None, per_task: Callable[[Table, Table | None], Any],
                     with_steps: bool, steps: StepSelection = TOOL_STEPS, progress: Progress | None = None,
                     unit: str = "Dask tasks") -> list[Any]:
    """``per_task(runs, steps)`` of every task under ``source``, computed on the workers of
    ``client`` (or of a client made by :func:`connect` and closed at the end), the graph's
    tasks reported to ``progress`` in ``unit``."""
    with session(scheduler, client, n_workers, processes) as client:
        grouped = grouped_by_task(client, source, task, per_task, steps if with_steps else None)
        return unboxed(None if grouped is None else computed(client, grouped, progress, unit))


def unboxed(result: Any) -> list[Any]:
    """The per-task values of a computed :func:`grouped_by_task` (None: there were no runs)."""
    if result is None:
        return []
    return [box.value for box in result.tolist() if box is not None]


def grouped_by_task(client: Any, source: Source | str | os.PathLike[str], task: str | None,
                    per_task: Callable[[Table, Table | None], Any], steps: StepSelection | None) -> Any:
    """The (lazy) Dask series of ``per_task`` of every task's runs and its ``steps`` (none:
    ``per_task(runs, None)``), one boxed value per task (its ``.value``); None without runs."""
    source = source if isinstance(source, Source) else Source(source)
    dd, _ = _dask()
    filters = None if task is None else [("task_id", "==", task)]
    run_files = source.file_bytes("runs")
    if not run_files:
        return None
    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    runs = _coalesced(dd.read_parquet(source.part("runs"), columns=list(RUN_COLUMNS),
                                      filters=filters), run_files, workers)
    step_columns: list[str] = []
    if steps is not None:
        step_columns = list(steps.columns)  # run_id first
        step_files = source.file_bytes("steps")
        step_filters = steps.filters
        if task is not None and step_files:
            # Steps carry no task id: the task's run ids (one task's, few) filter them as they are
            # read, so that only its steps are shuffled, not every step under the source.
            run_ids = sorted(runs["run_id"].dropna().unique().compute().tolist())
            step_filters = with_run_ids(step_filters, run_ids)
            step_files = step_files if run_ids else []
        if step_files:
            frame = _coalesced(
                dd.read_parquet(source.part("steps"),
                                columns=list(dict.fromkeys([*step_columns, "start_ns"])),
                                filters=step_filters),
                step_files, workers)
            if steps.select is not None:
                frame = frame.map_partitions(steps.select, meta=frame._meta)
            import pandas as pd

            meta = pd.DataFrame({"run_id": pd.Series([], dtype=frame["run_id"].dtype),
                                 STEPS_COLUMN: pd.Series([], dtype=object)})
            packed = frame.shuffle("run_id").map_partitions(
                _pack_steps, step_columns[1:], meta=meta)
            runs = runs.merge(packed, on="run_id", how="left")
    # grouped by a copy of the task id (pandas leaves the grouping column out of each group);
    # a run without a task is in task "<none>", as in the local analysis
    runs = runs.assign(**{TASK_KEY: runs["task_id"].fillna("<none>")})
    return runs.groupby(TASK_KEY).apply(
        _task_record, per_task, step_columns, meta=("figures", "object"))


def with_run_ids(filters: list[Any] | None, run_ids: list[str]) -> list[Any]:
    """``read_parquet`` filters (a conjunction, or a disjunction of conjunctions) that also keep
    only the steps of ``run_ids``."""
    only = ("run_id", "in", run_ids)
    if not filters:
        return [only]
    if isinstance(filters[0], list):
        return [[*conjunction, only] for conjunction in filters]
    return [*filters, only]


#: Bytes of Parquet per partition when small files (a day each) are put together.
PARTITION_BYTES = 256 * 2**20


def _coalesced(frame: Any, file_bytes: list[int], workers: int) -> Any:
    """``frame`` in fewer partitions when its files (of ``file_bytes``) are small (one per day):
    two per worker, or one per ``PARTITION_BYTES`` of files, whichever is more. Neighbouring
    partitions are concatenated, nothing is shuffled; each partition costs the shuffle by task a
    fixed price."""
    size = sum(file_bytes)
    target = max(2 * workers, math.ceil(size / PARTITION_BYTES))
    return frame.repartition(npartitions=target) if frame.npartitions > target else frame


def _pack_steps(frame: Any, columns: list[str]) -> Any:
    """The tool steps of whole runs (a partition shuffled by run) as one row per run: its id
    and its steps, in step order, as JSON text holding one list per column but the run id
    (text, so that the next shuffle's Arrow tables carry it)."""
    import pandas as pd

    frame = frame.sort_values(["run_id", *STEP_ORDER], kind="stable", na_position="first")
    run_ids = _values(frame["run_id"], "O")
    values = [_values(frame[c], "int64" if c == "step_index" else "O") for c in columns]
    starts = [i for i in range(len(run_ids)) if i == 0 or run_ids[i] != run_ids[i - 1]]
    bounds = [*starts, len(run_ids)]
    packs = [json.dumps([v[lo:hi] for v in values]) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    return pd.DataFrame({"run_id": pd.Series([run_ids[i] for i in starts], dtype=frame["run_id"].dtype),
                         STEPS_COLUMN: pd.Series(packs, dtype=object)})


class _Boxed:
    """A task's figures as one opaque value of a pandas column (pandas would unpack a tuple)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Boxed, (self.value,))


def _task_record(frame: Any, per_task: Callable[[Table, Table | None], Any],
                 step_columns: list[str]) -> _Boxed | None:
    """On a worker: one task's rows (runs, each with its packed tool steps) → ``per_task``."""
    if len(frame) == 0:
        return None
    frame = frame.sort_values(RUN_ORDER, kind="stable", na_position="first")
    runs = Table({name: _values(frame[name], dtype) for name, dtype in RUN_COLUMNS.items()
                  if name in frame.columns}, RUN_COLUMNS)
    steps = None
    if step_columns:
        data: dict[str, list[Any]] = {c: [] for c in step_columns}
        packs = frame[STEPS_COLUMN].tolist() if STEPS_COLUMN in frame.columns else []
        for run_id, text in zip(runs["run_id"], packs, strict=False):
            if not isinstance(text, str):  # a run without tool steps (NaN from the join)
                continue
            pack = json.loads(text)
            data["run_id"].extend([run_id] * len(pack[0]))
            for name, values in zip(step_columns[1:], pack, strict=True):
                data[name].extend(values)
        steps = Table(data, {c: ("int64" if c == "step_index" else "O") for c in step_columns})
    return _Boxed(per_task(runs, steps))


def _values(series: Any, dtype: str) -> list[Any]:
    """A pandas column as the Python values of a :class:`Table` column: text with None for a
    missing value, floats with nan, integers as they are."""
    values = series.astype(object).tolist()
    if dtype == "O":
        return [None if _missing(v) else v for v in values]
    if dtype == "float64":
        return [math.nan if _missing(v) else float(v) for v in values]
    return [0 if _missing(v) else int(v) for v in values]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    try:
        import pandas

        return value is pandas.NA or value is pandas.NaT
    except ImportError:  # pragma: no cover
        return False
