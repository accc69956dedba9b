"""LangChain and LangGraph: one callback handler turns their runs into hotmess runs and steps.

    agent.invoke(inputs, config={"callbacks": [hotmess.langchain_handler(task_id="refund-7")]})

or, for every invocation in the process, ``hotmess.instrument_langchain(task_id=...)``.

What becomes what:

- The outermost LangChain run (an agent, a graph, a chain) is a hotmess **run** when no run is
  active: a root span exactly as ``@hotmess.trace`` makes one (task id, agent, instance), its
  outcome taken from the final output (the structured response, else the last message's text,
  else the output itself), status error when it raised. Inside a function already under
  ``@hotmess.trace`` it is an ``agent`` step of that run instead, and no new run starts.
- Chains and LangGraph nodes are ``chain`` steps (a node's input, the whole graph state, is
  not copied onto it: its model step has the messages); chat models and LLMs are ``llm``
  steps (model, provider, token usage, input and output messages in the GenAI ``parts``
  form); tools ``tool`` steps (name, call id, arguments, result); retrievers ``retriever``
  steps. A legacy AgentExecutor's ``on_agent_action``/``on_agent_finish`` are events on its
  span, which becomes an ``agent`` step.
- A tool step's arguments are those of the model's tool call (``AIMessage.tool_calls`` seen in
  ``on_llm_end``, matched by call id), else the tool's own inputs; its goal is the call itself,
  ``canonical_json([tool, arguments])``, unless ``hotmess.goal()`` set one. So ``outcome="actions"``
  and goal analyses work on LangChain runs with no extra code. A call no tool ran (LangGraph
  answers an unknown tool name with an error message) is still a ``tool`` step, with its error.
- Errors (``on_*_error``, and a tool's error message when the tool handled its own error) mark
  the step with error status and the exception. A LangGraph interrupt (waiting for a human) is
  not an error: an event on the step; the interrupted invocation and its resumption are two runs.

Spans are keyed by LangChain's run ids and parented explicitly from ``parent_run_id``: never
through OpenTelemetry's ambient context, which async and threaded execution would scramble. So
one handler may be shared by any number of concurrent runs, threads or asyncio tasks. The
handler only starts and ends spans (the SQLite write happens in hotmess's background thread),
so it runs inline (``run_inline``), in sync and async code alike.

The recorders (``hotmess.outcome()``, ``hotmess.goal()``...) called inside a tool see no run
when the handler started it (callbacks cannot enter the tool's context): put the invocation
under ``@hotmess.trace`` to use them, or grade with the handler's ``reference=``/``success=``.

Task id when none is given: ``"msg:"`` + the first 16 hex digits of the SHA-256 of the first
user message's text, whitespace-stripped (:func:`hotmess.vocab.instructions.message_task_id`,
the OTLP importer's rule, so the same agent recorded live or imported from its logs groups
alike); ``"input:"`` + the same of the inputs' canonical JSON when there is no user message.
So repeats of one prompt are repeats of one task.

LangChain's values (messages, documents, model results, outputs) are turned into hotmess's
forms by :mod:`hotmess.integrations.langchain_messages`; this module holds the handler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any
from uuid import UUID

try:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage, ToolMessage
    from langchain_core.outputs import LLMResult
    from langchain_core.tracers.context import register_configure_hook
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without langchain
    raise ImportError(
        "hotmess's LangChain integration needs langchain-core: pip install 'hotmess[langchain]'"
    ) from exc

try:  # LangGraph's interrupts and parent commands travel as exceptions; they are not failures
    from langgraph.errors import GraphBubbleUp as _ControlFlow
except ImportError:  # pragma: no cover - langchain-core without langgraph

    class _ControlFlow(Exception):  # type: ignore[no-redef]
        pass


from opentelemetry.trace import Span, Status, StatusCode

from hotmess.integrations.langchain_messages import (
    call_goal,
    default_task_id,
    genai_message,
    jsonable,
    message_text,
    model_reply,
    run_outcome,
    serialized_name,
    tool_messages,
)
from hotmess.tracer.context import (
    RunState,
    current_run,
    end_span,
    mark_error,
    set_json,
    set_text,
    start_run,
    start_step_span,
)
from hotmess.vocab import attributes as A
from hotmess.vocab.serialize import to_json

logger = logging.getLogger("hotmess")

__all__ = [
    "HotmessCallbackHandler",
    "default_task_id",
    "instrument_langchain",
    "langchain_handler",
    "uninstrument_langchain",
]

class _Run:
    """One LangChain tree inside one hotmess run: the run, the model's tool calls not yet
    matched to a tool start (call id -> (tool name, arguments)), and the inputs of a run this
    handler started (for its ``success`` grader)."""

    __slots__ = ("state", "tool_calls", "inputs")

    def __init__(self, state: RunState, inputs: Any = None):
        self.state = state
        self.tool_calls: dict[str, tuple[str, Any]] = {}
        self.inputs = inputs


class _Node:
    """A LangChain run in progress: its span, and whether ending it ends a run or an agent step."""

    __slots__ = ("span", "run", "kind", "ends_run")

    def __init__(self, span: Span, run: _Run, kind: str, ends_run: bool = False):
        self.span = span
        self.run = run
        self.kind = kind
        # A model, tool or retriever called at top level with no run active gets a run made
        # for it; that run ends with it.
        self.ends_run = ends_run


class HotmessCallbackHandler(BaseCallbackHandler):
    """Records LangChain/LangGraph callbacks as hotmess runs and steps (see the module doc).

    task_id: the task this invocation repeats: a value, a function of the outermost run's
        inputs, or None (a hash of the first user message; see :func:`default_task_id`).
    agent: the agent's name (``gen_ai.agent.name``), default the outermost run's name.
    instance: the trial number or label, a value or a function of the inputs; optional.
    reference: what the run should produce (an expected answer, or a list of expected tool
        calls ``[[name, args], ...]`` for ``outcome="actions"``): a value or a function of the
        inputs; optional. With it, analyze reports bias and incoherence, not only variance.
    success: ``success(inputs, outcome) -> bool | None``, a grader called when a run this
        handler started ends; optional.
    attributes: more attributes of the run (e.g. ``{"gen_ai.request.model": "gpt-4o"}`` to
        compare models with ``hotmess analyze --by``).

    task_id, instance, reference and success apply to runs the handler starts (no run active);
    under ``@hotmess.trace`` the decorated function's run has its own.
    """

    run_inline = True  # only span starts and ends here: never worth LangChain's thread pool
    raise_error = False

    def __init__(
        self,
        task_id: Any = None,
        *,
        agent: str | None = None,
        instance: Any = None,
        reference: Any = None,
        success: Callable[[Any, Any], bool | None] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ):
        self.task_id = task_id
        self.agent = agent
        self.instance = instance
        self.reference = reference
        self.success = success
        self.attributes = dict(attributes or {})
        self.enabled = True
        self._nodes: dict[UUID, _Node] = {}

    # ---------------------------------------------------------------- opening and closing

    def _open(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        kind: str,
        name: str,
        attrs: dict[str, Any],
        inputs: Any,
        label: str | None = None,
    ) -> Span | None:
        """Start the span of a LangChain run; None when it is the root of a new run (a chain)
        or when disabled. ``label`` names the agent of a run started for this one."""
        if not self.enabled:
            return None
        attrs[A.LANGCHAIN_RUN_ID] = str(run_id)
        if parent_run_id is not None:
            attrs[A.LANGCHAIN_PARENT_RUN_ID] = str(parent_run_id)
        parent = self._nodes.get(parent_run_id) if parent_run_id is not None else None
        if parent is not None:
            span = start_step_span(name, parent.run.state, kind, attrs, parent=parent.span)
            self._nodes[run_id] = _Node(span, parent.run, kind)
            return span
        state = current_run()
        if state is not None:
            # Under @hotmess.trace: a step of that run, under whatever step is current there.
            if kind == "chain":
                kind = "agent"
                agent = self.agent or name
                attrs[A.AGENT_NAME] = agent
                attrs.update(self.attributes)
                name = f"{A.OP_AGENT} {agent}"
            span = start_step_span(name, state, kind, attrs)
            self._nodes[run_id] = _Node(span, _Run(state), kind)
            return span
        agent = self.agent or label or name
        task_id = _user_call("task_id", self.task_id, inputs)
        state = start_run(
            f"{A.OP_AGENT} {agent}",
            default_task_id(inputs) if task_id is None else task_id,
            agent,
            _user_call("instance", self.instance, inputs),
        )
        root = state.span
        for key, value in self.attributes.items():
            root.set_attribute(key, value)
        set_json(root, A.INPUT, jsonable(inputs))
        reference = _user_call("reference", self.reference, inputs)
        if reference is not None:
            set_json(root, A.REFERENCE, jsonable(reference))
        run = _Run(state, inputs if self.success is not None else None)
        if kind == "chain":
            root.set_attribute(A.LANGCHAIN_RUN_ID, str(run_id))
            self._nodes[run_id] = _Node(root, run, "agent")
            return None  # the root's input is set; callers set step inputs only
        span = start_step_span(name, state, kind, attrs, parent=root)
        self._nodes[run_id] = _Node(span, run, kind, ends_run=True)
        return span

    def _end_run(self, run: _Run, outcome: Any, error: BaseException | None) -> None:
        state = run.state
        if error is None and self.success is not None and not state.success_recorded:
            verdict = _user_call("success", self.success, run.inputs, outcome)
            if verdict is not None:
                state.span.set_attribute(A.SUCCESS, bool(verdict))
                state.success_recorded = True
        end_span(state.span, state, outcome, error)

    def _close(
        self, run_id: UUID, result: Any = None, error: BaseException | None = None
    ) -> _Node | None:
        """End a model, tool or retriever step (its output already set)."""
        node = self._nodes.pop(run_id, None)
        if node is None:
            return None
        error = _failure(node.span, error)
        if error is not None:
            mark_error(node.span, error)
        node.span.end()
        if node.ends_run:
            self._end_run(node.run, result, error)
        return node

    # ---------------------------------------------------------------- chains and agents

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or serialized_name(serialized) or "chain"
        span = self._open(run_id, parent_run_id, "chain", name, {}, inputs)
        # A LangGraph node's input is the whole graph state (every message so far, which its
        # model step records anyway): copying it onto every node step was most of the
        # handler's cost. Its output (what the node changed) is kept.
        if span is not None and (metadata or {}).get("langgraph_node") != name:
            set_json(span, A.INPUT, jsonable(inputs))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        node = self._nodes.pop(run_id, None)
        if node is None:
            return
        if node.run.tool_calls:
            self._record_refused_calls(node, outputs)
        if node.span is node.run.state.span:
            self._end_run(node.run, run_outcome(outputs), None)
        else:
            result = run_outcome(outputs) if node.kind == "agent" else jsonable(outputs)
            end_span(node.span, node.run.state, result)

    @staticmethod
    def _record_refused_calls(node: _Node, outputs: Any) -> None:
        """Tool calls the model made that no tool ran (LangGraph answers an unknown tool name
        or bad arguments with an error message): still the agent's actions, as failed steps."""
        for message in tool_messages(outputs):
            if message.status != "error":
                continue
            planned = node.run.tool_calls.pop(message.tool_call_id, None)
            if planned is None:
                continue
            tool, arguments = str(planned[0]), planned[1]
            attrs = {A.TOOL_NAME: tool, A.TOOL_CALL_ID: str(message.tool_call_id)}
            span = start_step_span(f"{A.OP_TOOL} {tool}", node.run.state, "tool", attrs, parent=node.span)
            _describe_call(span, node.run, tool, arguments)
            set_json(span, A.TOOL_RESULT, message.content)
            span.set_status(Status(StatusCode.ERROR, str(message.content)))
            span.end()

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        node = self._nodes.pop(run_id, None)
        if node is None:
            return
        failure = _failure(node.span, error)
        if failure is None and node.span is not node.run.state.span:
            node.span.end()  # interrupted: no output to record
        else:
            end_span(node.span, node.run.state, exc=failure)

    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        node = self._nodes.get(run_id)
        if node is None:
            return
        if node.span is not node.run.state.span:
            node.span.set_attribute(A.STEP_KIND, "agent")
            node.kind = "agent"
        node.span.add_event(
            "agent_action",
            {
                A.TOOL_NAME: str(getattr(action, "tool", "")),
                A.TOOL_ARGUMENTS: to_json(jsonable(getattr(action, "tool_input", None))),
            },
        )

    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        node = self._nodes.get(run_id)
        if node is not None:
            values = jsonable(getattr(finish, "return_values", None))
            node.span.add_event("agent_finish", {A.OUTPUT: to_json(values)})

    # ---------------------------------------------------------------- models

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        prompts = [[genai_message(m) for m in batch] for batch in messages]
        self._start_model(serialized, prompts, run_id, parent_run_id, metadata, kwargs, messages)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        batches = [[{"role": "user", "parts": [{"type": "text", "content": p}]}] for p in prompts]
        self._start_model(serialized, batches, run_id, parent_run_id, metadata, kwargs, prompts)

    def _start_model(
        self,
        serialized: dict[str, Any] | None,
        batches: list[list[dict]],
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
        raw_inputs: Any,
    ) -> None:
        metadata = metadata or {}
        params = kwargs.get("invocation_params") or {}
        model = (
            metadata.get("ls_model_name")
            or params.get("model")
            or params.get("model_name")
            or params.get("model_id")
        )
        attrs: dict[str, Any] = {}
        if model:
            attrs[A.REQUEST_MODEL] = str(model)
        if metadata.get("ls_provider"):
            attrs[A.PROVIDER] = str(metadata["ls_provider"])
        label = kwargs.get("name") or serialized_name(serialized) or "model"
        span = self._open(
            run_id, parent_run_id, "llm", f"{A.OP_CHAT} {model or label}", attrs, raw_inputs, label
        )
        if span is not None:
            set_json(span, A.INPUT_MESSAGES, batches[0] if len(batches) == 1 else batches)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        node = self._nodes.get(run_id)
        if node is None:
            return
        span = node.span
        reply = model_reply(response)
        node.run.tool_calls.update(reply.tool_calls)
        if reply.usage is not None:
            span.set_attribute(A.INPUT_TOKENS, reply.usage[0])
            span.set_attribute(A.OUTPUT_TOKENS, reply.usage[1])
        if reply.model:
            span.set_attribute(A.RESPONSE_MODEL, reply.model)
        outputs = reply.outputs
        set_json(span, A.OUTPUT_MESSAGES, outputs)
        self._close(run_id, result=message_text(outputs[0]) if len(outputs) == 1 else outputs)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error=error)

    # ---------------------------------------------------------------- tools

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        tool = str(kwargs.get("name") or serialized_name(serialized) or "tool")
        call_id = kwargs.get("tool_call_id")
        parent = self._nodes.get(parent_run_id) if parent_run_id is not None else None
        planned = parent.run.tool_calls.pop(call_id, None) if parent is not None and call_id else None
        if planned is not None and planned[1] is not None:
            arguments = planned[1]
        else:
            arguments = inputs if inputs is not None else input_str
        attrs: dict[str, Any] = {A.TOOL_NAME: tool}
        if call_id:
            attrs[A.TOOL_CALL_ID] = str(call_id)
        span = self._open(run_id, parent_run_id, "tool", f"{A.OP_TOOL} {tool}", attrs, arguments, tool)
        if span is None:
            return
        _describe_call(span, self._nodes[run_id].run, tool, arguments)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        node = self._nodes.get(run_id)
        if node is None:
            return
        result = output.content if isinstance(output, ToolMessage) else jsonable(output)
        set_json(node.span, A.TOOL_RESULT, result)
        if isinstance(output, ToolMessage) and output.status == "error":
            # the tool caught its own error (handle_tool_error) and told the model
            node.span.set_status(Status(StatusCode.ERROR, str(output.content)))
        self._close(run_id, result=result)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error=error)

    # ---------------------------------------------------------------- retrievers

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or serialized_name(serialized) or "retriever"
        span = self._open(run_id, parent_run_id, "retriever", str(name), {}, query)
        if span is not None:
            set_json(span, A.INPUT, query)

    def on_retriever_end(self, documents: Sequence[Document], *, run_id: UUID, **kwargs: Any) -> None:
        node = self._nodes.get(run_id)
        if node is None:
            return
        result = jsonable(list(documents))
        set_json(node.span, A.OUTPUT, result)
        self._close(run_id, result=result)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error=error)


# -------------------------------------------------------------------- one-line set-ups


def langchain_handler(
    task_id: Any = None,
    *,
    agent: str | None = None,
    instance: Any = None,
    reference: Any = None,
    success: Callable[[Any, Any], bool | None] | None = None,
    **attributes: Any,
) -> HotmessCallbackHandler:
    """A callback handler recording LangChain/LangGraph invocations as hotmess runs.

    >>> agent.invoke(x, config={"callbacks": [hotmess.langchain_handler(task_id="t1")]})  # doctest: +SKIP

    task_id, instance, reference: a value or a function of the invocation's inputs; task_id
    defaults to a hash of the first user message (:func:`default_task_id`). agent: default the
    outermost run's name. success: ``success(inputs, outcome) -> bool``. ``attributes`` are
    set on the run. One handler may serve many concurrent runs (see
    :class:`HotmessCallbackHandler`).
    """
    return HotmessCallbackHandler(
        task_id, agent=agent, instance=instance, reference=reference, success=success,
        attributes=attributes,
    )


_hook_lock = threading.Lock()
_instrumented: HotmessCallbackHandler | None = None


def instrument_langchain(
    task_id: Any = None,
    *,
    agent: str | None = None,
    instance: Any = None,
    reference: Any = None,
    success: Callable[[Any, Any], bool | None] | None = None,
    **attributes: Any,
) -> HotmessCallbackHandler:
    """Record every LangChain/LangGraph invocation in this process, with no ``callbacks=``.

    Uses langchain-core's ``register_configure_hook`` (no monkeypatching). An invocation that
    already has a hotmess handler in its callbacks keeps that one. Calling it again changes the
    settings; :func:`uninstrument_langchain` stops recording.
    """
    global _instrumented
    with _hook_lock:
        if _instrumented is None:
            _instrumented = HotmessCallbackHandler()
            # A context variable's default is seen by every thread and task, not only by the
            # context that called this.
            register_configure_hook(
                ContextVar("hotmess_langchain_handler", default=_instrumented),
                inheritable=True,
                handle_class=HotmessCallbackHandler,
            )
        handler = _instrumented
        handler.task_id, handler.agent, handler.instance = task_id, agent, instance
        handler.reference, handler.success = reference, success
        handler.attributes = dict(attributes)
        handler.enabled = True
    return handler


def uninstrument_langchain() -> None:
    """Stop what :func:`instrument_langchain` started (runs in progress finish recording)."""
    with _hook_lock:
        if _instrumented is not None:
            _instrumented.enabled = False


# -------------------------------------------------------------------- conversions


def _user_call(what: str, value: Any, *args: Any) -> Any:
    """``value(*args)`` if it is callable, else ``value``. A user function that raises is
    logged and counts as None: the run is still recorded (and the agent never sees it)."""
    if not callable(value):
        return value
    try:
        return value(*args)
    except Exception:  # noqa: BLE001 - the handler must never break the agent or lose the run
        logger.exception("hotmess: the LangChain handler's %s function raised; ignored", what)
        return None


def _failure(span: Span, error: BaseException | None) -> BaseException | None:
    """``error``, unless it is LangGraph control flow (an interrupt waiting for a human, a
    command to the parent graph): that is an event on the span, not a failed step."""
    if isinstance(error, _ControlFlow):
        span.add_event(type(error).__name__, {"message": str(error)})
        return None
    return error


def _describe_call(span: Span, run: _Run, tool: str, arguments: Any) -> None:
    """A tool step's arguments, and its goal: the call itself, unless hotmess.goal() set one."""
    set_json(span, A.TOOL_ARGUMENTS, arguments)
    if run.state.goal is None:
        set_text(span, A.GOAL, call_goal(tool, arguments))
