"""The run in progress, carried in a context variable (so asyncio tasks and generators
each see their own), and the span helpers shared by the decorator and the recorders."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, Status, StatusCode

from hotmess.tracer.config import get_config, get_tracer
from hotmess.vocab import attributes as A
from hotmess.vocab.serialize import bounded_json, truncate

logger = logging.getLogger("hotmess")


@dataclass
class RunState:
    """What the recorders need to know about the run they are called in."""

    span: Span
    task_id: str
    outcome_recorded: bool = False
    success_recorded: bool = False
    goal: str | None = None
    ended: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def run_id(self) -> str:
        """The run's id as the store keeps it: its trace id in hex."""
        return format(self.span.get_span_context().trace_id, "032x")

    def claim_end(self) -> bool:
        """True the first time only: whoever gets it ends the run's root span."""
        with self._lock:
            if self.ended:
                return False
            self.ended = True
            return True


_RUN: contextvars.ContextVar[RunState | None] = contextvars.ContextVar("hotmess_run", default=None)


def current_run() -> RunState | None:
    return _RUN.get()


@dataclass
class RunRequest:
    """What a harness (``hotmess.repeat``, the pytest plugin) asks of the next run that starts in
    its context: the task id and instance to record (None: the agent's own), and, once it has
    started, the run itself (``run``), so that the harness can end it if it hangs."""

    task_id: Any = None
    instance: Any = None
    run: RunState | None = None


_REQUEST: contextvars.ContextVar[RunRequest | None] = contextvars.ContextVar("hotmess_run_request", default=None)


@contextlib.contextmanager
def requested_run(request: RunRequest) -> Iterator[RunRequest]:
    """Inside, the next run started (in this thread or task) takes ``request``'s task id and
    instance and is handed back as ``request.run``; runs after it are left alone."""
    token = _REQUEST.set(request)
    try:
        yield request
    finally:
        _REQUEST.reset(token)


def expire_run(run: RunState, exc: BaseException) -> bool:
    """End a run now as failed with ``exc`` (a harness's timeout: ``TimeoutError``), from any
    thread. Whatever the agent does afterwards no longer changes the run; False when it had
    ended already."""
    if not run.claim_end():
        return False
    mark_error(run.span, exc)
    if not run.success_recorded:
        run.span.set_attribute(A.SUCCESS, False)
    run.span.end()
    return True


_warned: set[str] = set()


def warn_outside_run(what: str) -> None:
    """Recorders outside a run do nothing, and say so once per recorder."""
    if what not in _warned:
        _warned.add(what)
        warnings.warn(
            f"hotmess.{what}() called outside a traced run; ignored "
            f"(decorate the agent's entry point with @hotmess.trace)",
            RuntimeWarning,
            stacklevel=3,
        )


def set_json(span: Span, key: str, value: Any) -> None:
    """Set ``key`` to the bounded JSON text of ``value``; a cut is noted on the span."""
    config = get_config()
    text, cut = bounded_json(value, config.max_attribute_chars, config.redactor)
    span.set_attribute(key, text)
    if cut:
        _mark_truncated(span, key)


def set_text(span: Span, key: str, value: str) -> None:
    config = get_config()
    text, cut = truncate(str(value), config.max_attribute_chars, config.redactor)
    span.set_attribute(key, text)
    if cut:
        _mark_truncated(span, key)


def _mark_truncated(span: Span, key: str) -> None:
    """Add ``key`` to the span's list of cut attributes (a span may have several)."""
    attrs = getattr(span, "attributes", None) or {}
    names = attrs.get(A.TRUNCATED, ())
    names = (names,) if isinstance(names, str) else tuple(names)
    if key not in names:
        span.set_attribute(A.TRUNCATED, (*names, key))


def warn_bad_argument(what: str, problem: str) -> None:
    """A recorder given something it cannot record as asked records what it can (the
    agent is never interrupted for it), and says so once per recorder and problem."""
    key = f"{what}: {problem}"
    if key not in _warned:
        _warned.add(key)
        warnings.warn(f"hotmess.{what}(): {problem}", RuntimeWarning, stacklevel=3)


def text_of(value: Any, what: str) -> str:
    """``str(value)``; a value whose ``__str__`` raises is ``<unprintable TYPE>``, not an error
    in the agent."""
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - the agent's object, any exception
        warn_bad_argument(what, f"str() of a {type(value).__name__} failed; recorded as <unprintable>")
        return f"<unprintable {type(value).__name__}>"


def mark_error(span: Span, exc: BaseException) -> None:
    """Record ``exc`` on the span (an ``exception`` event and an error status). An exception
    whose ``__str__`` raises is recorded by its type: the agent's own exception must pass
    through unchanged, never replaced by one from recording it."""
    message = text_of(exc, "trace")
    try:
        span.record_exception(exc, escaped=True)
    except Exception:  # noqa: BLE001 - the SDK formats the exception: its __str__ may raise
        span.add_event("exception", {
            "exception.type": type(exc).__qualname__, "exception.message": message, "exception.escaped": True,
        })
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}" if message else type(exc).__name__))


class Activation:
    """A span made current (OpenTelemetry context) together with its run (our context var).

    ``enter``/``exit`` may be called many times: a generator's run is active only while the
    generator runs, never across its ``yield``.
    """

    __slots__ = ("span", "run", "_ctx", "_tokens")

    def __init__(self, span: Span, run: RunState):
        self.span = span
        self.run = run
        self._ctx = trace.set_span_in_context(span)
        self._tokens: list = []

    def enter(self) -> None:
        self._tokens.append((otel_context.attach(self._ctx), _RUN.set(self.run)))

    def exit(self) -> None:
        otel_token, run_token = self._tokens.pop()
        _RUN.reset(run_token)
        otel_context.detach(otel_token)


def start_step_span(
    name: str,
    run: RunState,
    kind: str,
    attributes: dict[str, Any] | None = None,
    parent: Span | None = None,
) -> Span:
    """A child span of ``parent`` (default: the current span), as a step of ``run``.

    An explicit ``parent`` is for callers that cannot rely on the ambient context (LangChain
    callbacks of async or threaded runs arrive in whatever task or thread ran the step).
    """
    attrs: dict[str, Any] = {A.STEP_KIND: kind}
    op = A.OPERATION_FOR_KIND.get(kind)
    if op is not None:
        attrs[A.OPERATION] = op
    if run.goal is not None and kind != "goal":
        attrs[A.GOAL] = run.goal
    if attributes:
        attrs.update(attributes)
    ctx = None if parent is None else trace.set_span_in_context(parent)
    return get_tracer().start_span(name, context=ctx, attributes=attrs)


def start_run(name: str, task_id: Any, agent: str, instance: Any = None) -> RunState:
    """A new run: its root span, in a trace of its own.

    An enclosing span (a web request, say) is linked, not a parent, so the run stays one trace.
    A harness's :class:`RunRequest` in force sets the task id and instance, and gets the run.
    """
    request = _REQUEST.get()
    if request is not None and request.run is not None:
        request = None  # the request was for the first run only
    if request is not None:
        task_id = task_id if request.task_id is None else request.task_id
        instance = instance if request.instance is None else request.instance
    attrs: dict[str, Any] = {
        A.RUN: True,
        A.OPERATION: A.OP_AGENT,
        A.AGENT_NAME: agent,
        A.TASK_ID: str(task_id),
    }
    if instance is not None:
        attrs[A.INSTANCE] = str(instance)
    outer = trace.get_current_span().get_span_context()
    links = [Link(outer)] if outer.is_valid else None
    span = get_tracer().start_span(name, context=otel_context.Context(), attributes=attrs, links=links)
    state = RunState(span=span, task_id=str(task_id))
    if request is not None:
        request.run = state
    return state


def end_span(span: Span, run: RunState, result: Any = None, exc: BaseException | None = None) -> None:
    """End a run's root or agent step: an error marks it (and a run root failed, unless the
    agent said otherwise); a run root's result is its outcome unless one was recorded."""
    is_root = span is run.span
    if is_root and not run.claim_end():
        return  # ended already (a harness's timeout): the agent's late return changes nothing
    if exc is not None:
        mark_error(span, exc)
        if is_root and not run.success_recorded:
            span.set_attribute(A.SUCCESS, False)
    elif is_root:
        if not run.outcome_recorded:
            set_json(span, A.OUTCOME, result)
    else:
        set_json(span, A.OUTPUT, result)
    span.end()
