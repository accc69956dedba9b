"""``hotmess.repeat``: run an agent ``n`` times on each task, record every run, analyze them.

>>> result = hotmess.repeat(agent, {"refund-7": req7, "refund-8": req8}, n=30)   # doctest: +SKIP
>>> result.verdict                                                               # doctest: +SKIP
'a hot mess: most error is variance, a different miss each time; ...'

Each call ``agent(task_input)`` is one run, recorded by the tracer (``@hotmess.trace``; a plain
function is traced for the call), with the task id and the trial number (``instance`` "0" to
"n-1") set by the harness. Trials go round the tasks (every task's trial 0, then every task's
trial 1, ...), so a budget that runs out leaves the tasks evenly sampled.

- Sync agents run in threads, async agents (coroutine functions) as asyncio tasks, at most
  ``concurrency`` at a time.
- ``timeout`` (seconds per run): a run that takes longer is recorded as failed with a
  ``TimeoutError`` (its outcome ``<crash> TimeoutError``), not lost. An async run is then
  cancelled; a sync one cannot be stopped from outside: its thread (a daemon) is left to finish
  and whatever it does afterwards no longer changes the run.
- ``budget``: ``Budget(runs=..., tokens=...)`` (or an int: runs): no new run starts once that many
  runs have started in this call, or once the runs have used that many tokens (the
  ``gen_ai.usage.*`` tokens of their LLM steps; runs in flight may go past it). The result says
  that it stopped, and why.
- Resuming: a task and trial already stored for this agent in the database (a run that ended,
  ok or failed) is not run again, so re-running after a crash or with a larger ``n`` runs only
  what is missing.
- The agent's return values and exceptions are never changed: the tracer records them as they
  are; each :class:`Trial` keeps the value returned or the exception raised.

At the end everything is written (:func:`hotmess.flush`) and, unless ``analyze=False``, the
agent's runs of these tasks and trials (those resumed from the database too) are analyzed
(:func:`hotmess.analyzers.analyze`): the result holds the analysis and its verdict.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import NoOpTracer

from hotmess.errors import AnalysisError, HotmessError
from hotmess.progress import Progress
from hotmess.results import Result
from hotmess.tracer import (
    RunRequest,
    configure,
    expire_run,
    flush,
    get_config,
    requested_run,
    trace,
    traced,
)
from hotmess.tracer.config import get_tracer
from hotmess.vocab import attributes as A

__all__ = ["Budget", "RepeatResult", "Trial", "arepeat", "repeat"]

#: Seconds an async run that timed out is given to finish cancelling.
CANCEL_GRACE = 1.0


@dataclass(frozen=True)
class Budget:
    """Stop starting runs after ``runs`` runs, or once the runs have used ``tokens`` tokens."""

    runs: int | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("runs", "tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"budget {name} must be a whole number >= 0 or None, got {value!r}")


@dataclass(frozen=True)
class Trial(Result):
    """One task and trial: ``status`` ``ok`` (returned), ``error`` (raised), ``timeout``, or
    ``stored`` (found in the database, not run again). ``value`` / ``exception`` are what the
    agent returned or raised, unchanged (not in the JSON)."""

    task_id: str
    instance: str
    status: str
    run_id: str | None = None
    error: str | None = None
    seconds: float = 0.0
    value: Any = field(default=None, repr=False, compare=False, metadata={"json": False})
    exception: BaseException | None = field(default=None, repr=False, compare=False, metadata={"json": False})


@dataclass(frozen=True)
class RepeatResult(Result):
    """What :func:`repeat` ran and what the analysis of it says.

    ``planned`` = tasks × n; ``stored`` of them were in the database already; ``ran`` were run
    (``ok`` returned, ``errors`` raised, ``timed_out``); ``not_run`` were left when the budget
    ran out (``stopped`` says so). ``tokens`` is what the runs that ran used. ``analysis`` is
    the :class:`~hotmess.analyzers.Analysis` of the agent's runs of these tasks and trials,
    ``verdict`` its reading; without them ``note`` says why.
    """

    db: str
    agent: str
    tasks: int
    n: int
    planned: int
    stored: int
    ran: int
    ok: int
    errors: int
    timed_out: int
    not_run: int
    tokens: int
    seconds: float
    stopped: str | None = None
    verdict: str | None = None
    note: str | None = None
    analysis: Any = None
    trials: tuple[Trial, ...] = field(default=(), repr=False)

    def summary(self) -> str:
        """The result in a few lines, for a terminal."""
        lines = [f"{self.agent}: {self.ran} runs of {self.tasks} tasks × {self.n} trials in {self.seconds:.1f}s "
                 f"({self.ok} returned, {self.errors} raised, {self.timed_out} timed out; {self.stored} were "
                 f"stored already)"]
        if self.stopped:
            lines.append(f"stopped: {self.stopped}; {self.not_run} runs not run")
        if self.verdict:
            a = self.analysis
            inc = a.incoherence
            lines.append(f"incoherence {inc.value:.2f} [{inc.ci_low:.2f}, {inc.ci_high:.2f}], success "
                         f"{a.success_rate:.0%}: {self.verdict}")
        elif self.note:
            lines.append(self.note)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the plan: what to call, on which tasks


@dataclass
class _Plan:
    call: Callable[[Any], Any]
    agent: str
    tasks: list[tuple[str, Any]]
    is_async: bool


def _plan(agent: Callable[[Any], Any], tasks: Any, task_id: Callable[[Any], Hashable] | None,
          agent_name: str | None) -> _Plan:
    if not callable(agent):
        raise TypeError(f"agent must be callable, got {type(agent).__name__}")
    info = traced(agent)
    if info is not None:
        call, name = agent, agent_name or info.agent
    else:
        name = agent_name or getattr(agent, "__name__", None) or type(agent).__name__
        call = trace(task_id="<repeat>", agent=name)(agent)  # the request sets the real task id
    is_async = inspect.iscoroutinefunction(agent)
    if isinstance(tasks, Mapping):
        items = [(str(k), v) for k, v in tasks.items()]
    elif isinstance(tasks, str | bytes) or not isinstance(tasks, Iterable):
        raise TypeError("tasks must be a mapping of task id to input, or an iterable of inputs")
    else:
        items = [(_task_id(x, task_id, info), x) for x in tasks]
    if not items:
        raise ValueError("no tasks to run")
    seen: set[str] = set()
    for tid, _ in items:
        if tid in seen:
            raise ValueError(f"task {tid!r} is given twice; each task once (n sets how often it runs)")
        seen.add(tid)
    return _Plan(call, name, items, is_async)


def _task_id(task: Any, task_id: Callable[[Any], Hashable] | None, info: Any) -> str:
    if task_id is not None:
        return str(task_id(task))
    if info is not None:
        found = info.task_id(task)
        if found is not None:
            return str(found)
    if isinstance(task, Mapping):
        for key in ("task_id", "id"):
            if task.get(key) is not None:
                return str(task[key])
    raise ValueError(f"cannot tell the task id of {task!r:.60}: give tasks as a mapping of id to input, "
                     "task_id=lambda task: ..., or inputs with a 'task_id' or 'id' key")


def _database(db: Any) -> str:
    """The database runs are recorded in: ``db`` (configuring the tracer for it if needed)."""
    config = get_config()
    if db is not None and Path(config.db).resolve() != Path(db).resolve():
        config = configure(db=db)
    if isinstance(get_tracer(), NoOpTracer):
        raise HotmessError(f"{config.db}: hotmess cannot record runs there (see the log); call "
                           "hotmess.configure(db=...) with a database it can write")
    return config.db


def _stored(db: str, agent: str) -> set[tuple[str, str]]:
    from hotmess.store.database import connect
    from hotmess.store.readers import read_runs

    conn = connect(db, create=True)
    try:
        runs = read_runs(conn, agent=agent, columns=["task_id", "instance", "status"])
    finally:
        conn.close()
    return {(t, i) for t, i, s in zip(runs["task_id"], runs["instance"], runs["status"], strict=True)
            if s in ("ok", "error") and i is not None}


# ---------------------------------------------------------------------------------------------
# tokens and the budget


class _TokenMeter(SpanProcessor):
    """Counts the ``gen_ai.usage.*`` tokens of ended spans per trace, for token budgets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.by_trace: dict[int, int] = {}

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        if not self.users:
            return
        attrs = span.attributes or {}
        try:
            used = int(attrs.get(A.INPUT_TOKENS, 0) or 0) + int(attrs.get(A.OUTPUT_TOKENS, 0) or 0)
        except (TypeError, ValueError):
            return
        if used:
            with self.lock:
                trace_id = span.context.trace_id
                self.by_trace[trace_id] = self.by_trace.get(trace_id, 0) + used

    def tokens(self, requests: Iterable[RunRequest]) -> int:
        with self.lock:
            return sum(self.by_trace.get(r.run.span.get_span_context().trace_id, 0) for r in requests if r.run)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_METERS: weakref.WeakKeyDictionary[Any, _TokenMeter] = weakref.WeakKeyDictionary()
_METERS_LOCK = threading.Lock()


def _meter() -> _TokenMeter:
    provider = get_config().provider
    with _METERS_LOCK:
        meter = _METERS.get(provider)
        if meter is None:
            meter = _METERS[provider] = _TokenMeter()
            provider.add_span_processor(meter)
        meter.users += 1
        return meter


class _Spend:
    """Runs started and tokens used so far, against the budget."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self.requests: list[RunRequest] = []
        self.meter = _meter() if budget.tokens is not None else None

    def exhausted(self) -> str | None:
        if self.budget.runs is not None and len(self.requests) >= self.budget.runs:
            return f"the run budget is spent ({self.budget.runs} runs)"
        if self.meter is not None and (used := self.meter.tokens(self.requests)) >= self.budget.tokens:
            return f"the token budget is spent ({used} of {self.budget.tokens} tokens used)"
        return None

    def close(self) -> None:
        if self.meter is not None:
            with _METERS_LOCK:
                self.meter.users -= 1
                if not self.meter.users:
                    self.meter.by_trace.clear()


# ---------------------------------------------------------------------------------------------
# running


def _timeout_error(timeout: float) -> TimeoutError:
    return TimeoutError(f"the run took longer than its {timeout:g} s timeout")


def _trial(task_id: str, trial: int, request: RunRequest, started: float, status: str,
           value: Any = None, exc: BaseException | None = None) -> Trial:
    return Trial(task_id=task_id, instance=str(trial), status=status,
                 run_id=None if request.run is None else request.run.run_id,
                 error=None if exc is None else f"{type(exc).__name__}: {exc}",
                 seconds=time.monotonic() - started, value=value, exception=exc)


class _Tally:
    def __init__(self, total: int, progress: Progress | None):
        self.lock = threading.Lock()
        self.trials: list[Trial] = []
        self.total, self.progress = total, progress
        if progress is not None:
            progress("runs", 0, total)

    def add(self, trial: Trial) -> None:
        with self.lock:
            self.trials.append(trial)
            done = len(self.trials)
        if self.progress is not None:
            self.progress("runs", done, self.total)


def _run_threads(plan: _Plan, todo: list[tuple[str, Any, int]], concurrency: int, timeout: float | None,
                 spend: _Spend, tally: _Tally) -> str | None:
    slots = threading.Semaphore(concurrency)
    supervisors: list[threading.Thread] = []

    def supervise(task_id: str, task: Any, trial: int, request: RunRequest) -> None:
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            with requested_run(request):
                try:
                    box["value"] = plan.call(task)
                except BaseException as exc:  # noqa: BLE001 - the agent's, recorded as it is
                    box["exc"] = exc
            done.set()

        started = time.monotonic()
        threading.Thread(target=work, daemon=True, name=f"hotmess-repeat {task_id}#{trial}").start()
        try:
            if done.wait(timeout):
                exc = box.get("exc")
                tally.add(_trial(task_id, trial, request, started, "ok" if exc is None else "error",
                                 box.get("value"), exc))
            else:
                exc = _timeout_error(timeout)
                if request.run is not None:
                    expire_run(request.run, exc)
                tally.add(_trial(task_id, trial, request, started, "timeout", exc=exc))
        finally:
            slots.release()

    stopped = None
    try:
        for task_id, task, trial in todo:
            slots.acquire()
            stopped = spend.exhausted()
            if stopped:
                slots.release()
                break
            request = RunRequest(task_id=task_id, instance=str(trial))
            spend.requests.append(request)
            thread = threading.Thread(target=supervise, args=(task_id, task, trial, request), daemon=True,
                                      name=f"hotmess-repeat supervisor {task_id}#{trial}")
            thread.start()
            supervisors.append(thread)
    finally:
        for thread in supervisors:
            thread.join()
    return stopped


async def _run_tasks(plan: _Plan, todo: list[tuple[str, Any, int]], concurrency: int, timeout: float | None,
                     spend: _Spend, tally: _Tally) -> str | None:
    slots = asyncio.Semaphore(concurrency)

    async def one(task_id: str, task: Any, trial: int, request: RunRequest) -> None:
        started = time.monotonic()

        def spawn() -> asyncio.Future:
            with requested_run(request):  # the agent's task copies this context
                return asyncio.ensure_future(plan.call(task))

        try:
            # from an empty context, as a thread starts: a run of its own even if repeat() was
            # called inside a traced run
            run = contextvars.Context().run(spawn)
            done, _ = await asyncio.wait({run}, timeout=timeout)
            if done:
                exc = run.exception()
                tally.add(_trial(task_id, trial, request, started, "ok" if exc is None else "error",
                                 None if exc is not None else run.result(), exc))
                return
            exc = _timeout_error(timeout)
            if request.run is not None:
                expire_run(request.run, exc)  # before cancelling: the run ends as timed out
            run.cancel()
            await asyncio.wait({run}, timeout=CANCEL_GRACE)
            if run.done() and not run.cancelled():
                run.exception()  # retrieved, so asyncio does not warn about it
            tally.add(_trial(task_id, trial, request, started, "timeout", exc=exc))
        finally:
            slots.release()

    pending: list[asyncio.Task] = []
    stopped = None
    try:
        for task_id, task, trial in todo:
            await slots.acquire()
            stopped = spend.exhausted()
            if stopped:
                slots.release()
                break
            request = RunRequest(task_id=task_id, instance=str(trial))
            spend.requests.append(request)
            pending.append(asyncio.ensure_future(one(task_id, task, trial, request)))
    finally:
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return stopped


# ---------------------------------------------------------------------------------------------
# the verbs


def _checked(n: int, concurrency: int, timeout: float | None, budget: Budget | int | dict | None) -> Budget:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if budget is None:
        return Budget()
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, int) and not isinstance(budget, bool):
        return Budget(runs=budget)
    if isinstance(budget, Mapping):
        return Budget(**budget)
    raise ValueError(f"budget must be a Budget, a number of runs or a dict, got {budget!r}")


def _prepare(agent: Any, tasks: Any, n: int, concurrency: int, timeout: Any, budget: Any, db: Any,
             task_id: Any, agent_name: Any, progress: Progress | None):
    spend_budget = _checked(n, concurrency, timeout, budget)
    plan = _plan(agent, tasks, task_id, agent_name)
    path = _database(db)
    stored = _stored(path, plan.agent)
    todo = [(tid, task, trial) for trial in range(n) for tid, task in plan.tasks if (tid, str(trial)) not in stored]
    return plan, path, n * len(plan.tasks) - len(todo), todo, _Spend(spend_budget), _Tally(len(todo), progress)


def repeat(
    agent: Callable[[Any], Any],
    tasks: Mapping[Any, Any] | Iterable[Any],
    n: int = 30,
    *,
    concurrency: int = 8,
    timeout: float | None = None,
    budget: Budget | int | dict | None = None,
    db: str | Path | None = None,
    task_id: Callable[[Any], Hashable] | None = None,
    agent_name: str | None = None,
    progress: Progress | None = None,
    analyze: bool = True,
    outcome: str | Callable[[Any], Hashable] = "exact",
) -> RepeatResult:
    """Run ``agent(task_input)`` ``n`` times on each task, record each run, analyze them.

    tasks: a mapping of task id to input, or an iterable of inputs whose task id is
        ``task_id(input)``, else the traced agent's own ``task_id=`` rule, else the input's
        ``"task_id"`` or ``"id"`` key.
    n: trials per task (``instance`` "0" .. "n-1"); concurrency: runs at a time.
    timeout: seconds per run (None: no limit); budget: :class:`Budget` (an int: runs).
    db: record into this database (``hotmess.configure(db=...)`` unless the tracer records
        there already; default: where it records now). agent_name: the agent's name (default:
        the traced agent's, else the function's name): resuming looks up this agent's runs.
    progress: ``progress("runs", done, total)`` (:mod:`hotmess.progress`).
    analyze, outcome: analyze the runs at the end (``outcome`` as in
        :func:`hotmess.analyzers.analyze`).

    The module docstring says how timeouts, budgets and resuming work. From inside a running
    event loop, ``await arepeat(...)``; ``repeat`` then runs the loop it needs in a thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arepeat(agent, tasks, n, concurrency=concurrency, timeout=timeout, budget=budget, db=db,
                                   task_id=task_id, agent_name=agent_name, progress=progress, analyze=analyze,
                                   outcome=outcome))
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = repeat(agent, tasks, n, concurrency=concurrency, timeout=timeout, budget=budget, db=db,
                                   task_id=task_id, agent_name=agent_name, progress=progress, analyze=analyze,
                                   outcome=outcome)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            box["exc"] = exc

    thread = threading.Thread(target=run, name="hotmess-repeat")
    thread.start()
    thread.join()
    if "exc" in box:
        raise box["exc"]
    return box["result"]


async def arepeat(
    agent: Callable[[Any], Any],
    tasks: Mapping[Any, Any] | Iterable[Any],
    n: int = 30,
    *,
    concurrency: int = 8,
    timeout: float | None = None,
    budget: Budget | int | dict | None = None,
    db: str | Path | None = None,
    task_id: Callable[[Any], Hashable] | None = None,
    agent_name: str | None = None,
    progress: Progress | None = None,
    analyze: bool = True,
    outcome: str | Callable[[Any], Hashable] = "exact",
) -> RepeatResult:
    """:func:`repeat` for callers inside an event loop (same parameters and result)."""
    started = time.monotonic()
    plan, path, stored, todo, spend, tally = _prepare(agent, tasks, n, concurrency, timeout, budget, db, task_id,
                                                      agent_name, progress)
    try:
        if plan.is_async:
            stopped = await _run_tasks(plan, todo, concurrency, timeout, spend, tally)
        else:
            stopped = await asyncio.to_thread(_run_threads, plan, todo, concurrency, timeout, spend, tally)
    finally:
        spend.close()
        await asyncio.to_thread(flush)
    return await asyncio.to_thread(_result, plan, path, n, stored, todo, tally, stopped, started, analyze, outcome)


def _result(plan: _Plan, path: str, n: int, stored: int, todo: list, tally: _Tally, stopped: str | None,
            started: float, analyze: bool, outcome: Any) -> RepeatResult:
    order = {(tid, str(trial)): i for i, (tid, _, trial) in enumerate(todo)}
    trials = sorted(tally.trials, key=lambda t: order[(t.task_id, t.instance)])
    statuses = [t.status for t in trials]
    analysis, verdict, note, tokens = _analysis(path, plan, n, trials, analyze, outcome)
    return RepeatResult(
        db=path, agent=plan.agent, tasks=len(plan.tasks), n=n, planned=n * len(plan.tasks), stored=stored,
        ran=len(trials), ok=statuses.count("ok"), errors=statuses.count("error"),
        timed_out=statuses.count("timeout"), not_run=len(todo) - len(trials), tokens=tokens,
        seconds=time.monotonic() - started, stopped=stopped, verdict=verdict, note=note, analysis=analysis,
        trials=tuple(trials),
    )


def _analysis(path: str, plan: _Plan, n: int, trials: list[Trial], analyze: bool, outcome: Any):
    """The analysis of the agent's runs of these tasks and trials, its verdict or why there is
    none, and the tokens the runs of this call used."""
    import numpy as np

    from hotmess.analyzers import analyze as analyze_runs
    from hotmess.store.database import connect
    from hotmess.store.readers import read_runs, read_steps
    from hotmess.verdict import verdict

    conn = connect(path, create=False)
    try:
        runs = read_runs(conn, agent=plan.agent)
        mine = {t.run_id for t in trials}
        tokens = int(sum(int(i) + int(o) for r, i, o in zip(runs["run_id"], runs["input_tokens"],
                                                            runs["output_tokens"], strict=True) if r in mine))
        if not analyze:
            return None, None, None, tokens
        wanted = {(tid, str(k)) for tid, _ in plan.tasks for k in range(n)}
        keep = np.fromiter(((t, i) in wanted for t, i in zip(runs["task_id"], runs["instance"], strict=True)),
                           dtype=bool, count=len(runs))
        runs = runs.take(np.flatnonzero(keep))
        if len(runs) == 0:
            return None, None, "nothing to analyze: no run of these tasks was recorded", tokens
        steps = read_steps(conn, run_ids=list(runs["run_id"])) if outcome == "actions" else None
    finally:
        conn.close()
    try:
        result = analyze_runs(runs, steps, outcome=outcome)
    except (AnalysisError, ValueError) as exc:
        return None, None, f"no analysis: {exc}", tokens
    return result, verdict(result.to_dict()).text, None, tokens
