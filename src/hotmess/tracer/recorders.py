"""What an agent may record inside a run: steps, goals, tool calls, its outcome and score.

Outside a run each recorder does nothing and warns once.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

from opentelemetry import trace as otel_trace

from hotmess.tracer.context import (
    Activation,
    current_run,
    mark_error,
    set_json,
    set_text,
    start_step_span,
    text_of,
    warn_bad_argument,
    warn_outside_run,
)
from hotmess.vocab import attributes as A


class step:
    """A timed step of the current run, as a context manager or a decorator.

    ``kind`` is one of ``llm``, ``tool``, ``agent``, ``step``, ``retriever``, ``chain``.

    >>> with hotmess.step("plan", kind="llm") as s:   # doctest: +SKIP
    ...     s.output = llm(prompt)
    """

    def __init__(self, name: str, kind: str = "step", *, input: Any = None, goal: str | None = None,
                 attributes: dict[str, Any] | None = None):
        if kind not in A.STEP_KINDS:
            raise ValueError(f"step kind must be one of {', '.join(A.STEP_KINDS)}, not {kind!r}")
        self.name = name
        self.kind = kind
        self.input = input
        self.goal = goal
        self.attributes = attributes
        self.output: Any = None
        self._act: Activation | None = None

    def __enter__(self) -> step:
        run = current_run()
        if run is None:
            warn_outside_run("step")
            return self
        attrs = dict(self.attributes or {})
        if self.kind == "tool":
            attrs[A.TOOL_NAME] = self.name
        span = start_step_span(self.name, run, self.kind, attrs)
        if self.input is not None:
            set_json(span, A.TOOL_ARGUMENTS if self.kind == "tool" else A.INPUT, self.input)
        if self.goal is not None:
            set_text(span, A.GOAL, self.goal)
        self._act = Activation(span, run)
        self._act.enter()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        act = self._act
        if act is None:
            return
        self._act = None
        act.exit()
        if exc is not None:
            mark_error(act.span, exc)
        if self.output is not None:
            set_json(act.span, A.TOOL_RESULT if self.kind == "tool" else A.OUTPUT, self.output)
        act.span.end()

    async def __aenter__(self) -> step:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: Callable) -> Callable:
        """As a decorator: each call is a step, with the call's arguments as input and its return as output."""
        signature = inspect.signature(fn)

        def fresh(args: tuple, kwargs: dict) -> step:
            bound = signature.bind_partial(*args, **kwargs)
            return step(self.name, self.kind, input=dict(bound.arguments), goal=self.goal,
                        attributes=self.attributes)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with fresh(args, kwargs) as s:
                    s.output = await fn(*args, **kwargs)
                    return s.output

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with fresh(args, kwargs) as s:
                s.output = fn(*args, **kwargs)
                return s.output

        return wrapper


def goal(text: str) -> None:
    """Record an intermediate goal: what the agent is trying to achieve from here on.

    It is a step of kind ``goal`` in the run's order, and the goal of every step after it.
    """
    run = current_run()
    if run is None:
        warn_outside_run("goal")
        return
    text = text_of(text, "goal")
    run.goal = text
    span = start_step_span("goal", run, "goal")
    set_text(span, A.GOAL, text)
    span.end()
    # Inside an explicit step, the goal is that step's goal too.
    current = otel_trace.get_current_span()
    if current is not run.span and current.is_recording():
        set_text(current, A.GOAL, text)


def action(tool: str, args: Any = None, result: Any = None, error: Any = None) -> None:
    """Record a tool call the agent made (without an integration): name, arguments, result or error."""
    run = current_run()
    if run is None:
        warn_outside_run("action")
        return
    name = text_of(tool, "action")
    span = start_step_span(f"{A.OP_TOOL} {name}", run, "tool", {A.TOOL_NAME: name})
    if args is not None:
        set_json(span, A.TOOL_ARGUMENTS, args)
    if result is not None:
        set_json(span, A.TOOL_RESULT, result)
    if error is not None:
        if isinstance(error, BaseException):
            mark_error(span, error)
        else:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, text_of(error, "action")))
    span.end()


def outcome(value: Any, success: bool | None = None, reference: Any = None) -> None:
    """Record the run's final outcome (instead of the agent's return value), and whether it
    succeeded and what it should have been, when known."""
    run = current_run()
    if run is None:
        warn_outside_run("outcome")
        return
    set_json(run.span, A.OUTCOME, value)
    run.outcome_recorded = True
    if success is not None:
        verdict = _as_bool(success)
        if verdict is None:
            warn_bad_argument("outcome", f"success must be true or false, not a {type(success).__name__}; "
                                         "success left unrecorded")
        else:
            run.span.set_attribute(A.SUCCESS, verdict)
            run.success_recorded = True
    if reference is not None:
        set_json(run.span, A.REFERENCE, reference)


def score(value: float) -> None:
    """Record the run's scalar score (a grader's reward, a similarity)."""
    run = current_run()
    if run is None:
        warn_outside_run("score")
        return
    number = _as_number(value)
    if number is None:
        # kept as text beside the score, so what the agent passed is not lost
        warn_bad_argument("score", f"{type(value).__name__} is not a finite number; recorded as {A.SCORE}.raw")
        set_text(run.span, f"{A.SCORE}.raw", text_of(value, "score"))
        return
    run.span.set_attribute(A.SCORE, number)


def _as_bool(value: Any) -> bool | None:
    """A success verdict: bool, numpy bool, 0 or 1; None for anything else (an array, text)."""
    if isinstance(value, bool):
        return value
    if (type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")) or (
        isinstance(value, int | float) and value in (0, 1)
    ):
        return bool(value)
    return None


def _as_number(value: Any) -> float | None:
    """A finite float from a number (numpy's included); None for text, None, overflow, NaN."""
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
