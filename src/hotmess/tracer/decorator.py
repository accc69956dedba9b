"""``@hotmess.trace``: every call of the decorated agent becomes one run (one trace).

Works on functions, coroutine functions, generators and async generators. Inside a run, a
traced function is a step (a sub-agent), not a new run. The agent's own return values and
exceptions pass through unchanged; hotmess's bookkeeping never raises into the agent.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from hotmess.tracer.context import (
    Activation,
    current_run,
    end_span,
    set_json,
    start_run,
    start_step_span,
)
from hotmess.vocab import attributes as A

logger = logging.getLogger("hotmess")

F = TypeVar("F", bound=Callable[..., Any])


def _resolver(value: Any, fn: Callable, param: str) -> Callable[[inspect.BoundArguments], Any]:
    """How to find the task id (or instance) of a call: a literal, a callable, or an argument."""
    if callable(value):
        return lambda bound: value(*bound.args, **bound.kwargs)
    if value is not None:
        return lambda bound: value
    p = inspect.signature(fn).parameters.get(param)
    default = None if p is None or p.default is inspect.Parameter.empty else p.default
    return lambda bound: bound.arguments.get(param, default)


class _Traced:
    """What one decorated function needs per call."""

    def __init__(self, fn: Callable, task_id: Any, agent: str | None, instance: Any, name: str | None):
        self.fn = fn
        self.signature = inspect.signature(fn)
        if task_id is None and "task_id" not in self.signature.parameters:
            raise TypeError(
                f"@hotmess.trace on {fn.__qualname__}: give task_id= (a value or a function of the "
                f"call's arguments), or give the function a parameter named task_id"
            )
        self.task_id = _resolver(task_id, fn, "task_id")
        self.instance = _resolver(instance, fn, "instance")
        self.agent = agent or fn.__name__
        self.name = name or f"{A.OP_AGENT} {self.agent}"

    def begin(self, args: tuple, kwargs: dict) -> Activation | None:
        """Start the run (or sub-agent step) span; None if hotmess itself fails."""
        span = None
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
            parent = current_run()
            if parent is not None:
                span = start_step_span(self.name, parent, "agent", {A.AGENT_NAME: self.agent})
                set_json(span, A.INPUT, dict(bound.arguments))
                return Activation(span, parent)
            run = start_run(self.name, self.task_id(bound), self.agent, self.instance(bound))
            span = run.span
            set_json(span, A.INPUT, dict(bound.arguments))
            return Activation(span, run)
        except Exception:  # noqa: BLE001
            logger.exception("hotmess: could not start a run for %s; the agent runs untraced", self.fn.__qualname__)
            if span is not None:  # never leave a started span open (its run would stay 'incomplete')
                with contextlib.suppress(Exception):
                    span.end()
            return None

    @staticmethod
    def finish(act: Activation, result: Any = None, exc: BaseException | None = None) -> None:
        try:
            end_span(act.span, act.run, result, exc)
        except Exception:  # noqa: BLE001
            logger.exception("hotmess: could not finish a span")


def _wrap_function(t: _Traced) -> Callable:
    fn = t.fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        act = t.begin(args, kwargs)
        if act is None:
            return fn(*args, **kwargs)
        act.enter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            act.exit()
            t.finish(act, exc=exc)
            raise
        act.exit()
        t.finish(act, result)
        return result

    return wrapper


def _wrap_coroutine(t: _Traced) -> Callable:
    fn = t.fn

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        act = t.begin(args, kwargs)
        if act is None:
            return await fn(*args, **kwargs)
        act.enter()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            act.exit()
            t.finish(act, exc=exc)
            raise
        act.exit()
        t.finish(act, result)
        return result

    return wrapper


def _generator_outcome(items: list, returned: Any) -> Any:
    """A generator's outcome: what it returned, else its text if it streamed text, else its items."""
    if returned is not None:
        return returned
    if items and all(isinstance(i, str) for i in items):
        return "".join(items)
    return items


def _wrap_generator(t: _Traced) -> Callable:
    fn = t.fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        act = t.begin(args, kwargs)
        if act is None:
            return (yield from fn(*args, **kwargs))
        items: list = []
        act.enter()
        try:
            gen = fn(*args, **kwargs)
        finally:
            act.exit()
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            act.enter()
            try:
                item = gen.send(to_send) if to_throw is None else gen.throw(to_throw)
            except StopIteration as stop:
                act.exit()
                t.finish(act, _generator_outcome(items, stop.value))
                return stop.value
            except BaseException as exc:
                act.exit()
                t.finish(act, exc=exc)
                raise
            act.exit()
            items.append(item)
            to_send, to_throw = None, None
            try:
                to_send = yield item
            except GeneratorExit:
                act.enter()
                try:
                    gen.close()
                except BaseException as exc:
                    act.exit()
                    t.finish(act, exc=exc)
                    raise
                act.exit()
                act.span.set_attribute(A.CLOSED_EARLY, True)
                t.finish(act, _generator_outcome(items, None))
                raise
            except BaseException as exc:  # thrown in by the consumer: pass it on
                to_throw = exc

    return wrapper


def _wrap_async_generator(t: _Traced) -> Callable:
    fn = t.fn

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        act = t.begin(args, kwargs)
        if act is None:
            async for item in fn(*args, **kwargs):
                yield item
            return
        items: list = []
        act.enter()
        try:
            agen = fn(*args, **kwargs)
        finally:
            act.exit()
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            act.enter()
            try:
                item = await (agen.asend(to_send) if to_throw is None else agen.athrow(to_throw))
            except StopAsyncIteration:
                act.exit()
                t.finish(act, _generator_outcome(items, None))
                return
            except BaseException as exc:
                act.exit()
                t.finish(act, exc=exc)
                raise
            act.exit()
            items.append(item)
            to_send, to_throw = None, None
            try:
                to_send = yield item
            except GeneratorExit:
                act.enter()
                try:
                    await agen.aclose()
                except BaseException as exc:
                    act.exit()
                    t.finish(act, exc=exc)
                    raise
                act.exit()
                act.span.set_attribute(A.CLOSED_EARLY, True)
                t.finish(act, _generator_outcome(items, None))
                raise
            except BaseException as exc:  # thrown in by the consumer: pass it on
                to_throw = exc

    return wrapper


@dataclass(frozen=True)
class TraceInfo:
    """What ``@hotmess.trace`` knows of the agent it decorates, for a harness that runs it
    (``hotmess.repeat``): its name, and ``task_id(*args, **kwargs)``, the task id a call with
    those arguments records."""

    agent: str
    task_id: Callable[..., Any]


def traced(fn: Any) -> TraceInfo | None:
    """The :class:`TraceInfo` of a function decorated with ``@hotmess.trace``; None otherwise."""
    info = getattr(fn, "__hotmess_trace__", None)
    return info if isinstance(info, TraceInfo) else None


@overload
def trace(fn: F) -> F: ...


@overload
def trace(
    fn: None = None,
    *,
    task_id: Any = None,
    agent: str | None = None,
    instance: Any = None,
    name: str | None = None,
) -> Callable[[F], F]: ...


def trace(
    fn: Callable | None = None,
    *,
    task_id: Any = None,
    agent: str | None = None,
    instance: Any = None,
    name: str | None = None,
) -> Any:
    """Record every call of an agent function as one run.

    task_id: what is repeated — a literal, a function of the call's arguments
        (``lambda req: req["id"]``), or, when omitted, the call's ``task_id`` argument.
    agent: the agent's name (``gen_ai.agent.name``), default the function's name.
    instance: the trial number or label within the task, the same three ways; optional.

    The return value is the run's outcome unless :func:`hotmess.outcome` was called; an
    exception marks the run failed (recorded on the span) and is re-raised unchanged.
    """

    def decorate(f: Callable) -> Callable:
        t = _Traced(f, task_id, agent, instance, name)
        if inspect.isasyncgenfunction(f):
            wrapper = _wrap_async_generator(t)
        elif inspect.isgeneratorfunction(f):
            wrapper = _wrap_generator(t)
        elif inspect.iscoroutinefunction(f):
            wrapper = _wrap_coroutine(t)
        else:
            wrapper = _wrap_function(t)
        wrapper.__hotmess_trace__ = TraceInfo(  # type: ignore[attr-defined]
            t.agent, lambda *args, **kwargs: t.task_id(t.signature.bind_partial(*args, **kwargs)))
        return wrapper

    return decorate(fn) if fn is not None else decorate
