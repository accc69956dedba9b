"""A scripted LangChain ``create_agent`` agent run under a third-party instrumentor, its spans
written as the OpenTelemetry Collector's file exporter writes them.

    python tests/instrumented_agent.py openinference|openllmetry OUT.jsonl TRUTH.json

Run as its own process: an instrumentor patches LangChain for the whole interpreter, so each
one gets a fresh one. Three tasks (orders 1, 2, 3) × ten runs, each run's ending chosen by its
trial from :data:`ENDINGS`; ``TRUTH.json`` says, per run (by its request text), what really
happened: the final answer (or the exception that crashed it), the tool calls with their
arguments, and whether a tool error was handled.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from langchain import agents
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import StructuredTool, ToolException, tool

ORDERS = (1, 2, 3)
TRIALS = 10
#: the ending of each trial
ENDINGS = ("success", "success", "wrong tool", "wrong arguments", "no tool", "handled error",
           "crash value", "success", "wrong arguments", "crash timeout")


def plan(order: int, trial: int) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls the model makes, in order, for a run's ending."""
    ending = ENDINGS[trial]
    lookup = ("lookup_order", {"order_id": str(order)})
    if ending == "success":
        return [lookup, ("refund", {"order_id": str(order), "amount": 10.0 * order})]
    if ending == "wrong tool":
        return [lookup, ("cancel_order", {"order_id": str(order)})]
    if ending == "wrong arguments":
        return [lookup, ("refund", {"order_id": str(order), "amount": 5.0 * order})]
    if ending == "no tool":
        return []
    if ending == "handled error":
        return [lookup, ("careful_cancel", {"order_id": str(order)})]
    return [lookup, ("flaky_refund", {"order_id": str(order), "mode": ending.split()[1]})]


def final_answer(order: int, trial: int) -> str | None:
    ending = ENDINGS[trial]
    return {
        "success": f"Refunded {10.0 * order:.2f} on order {order}.",
        "wrong arguments": f"Issued a partial credit of {5.0 * order:.2f} for purchase {order}.",
        "wrong tool": f"Cancelled order {order}.",
        "no tool": "I cannot help with refunds.",
        "handled error": f"Order {order} has shipped, so it cannot be cancelled.",
    }.get(ending)


def parse_request(messages: list[BaseMessage]) -> tuple[int, int]:
    text = next(m.content for m in messages if m.type == "human")
    order, trial = re.fullmatch(r"please refund order (\d+) \(ticket (\d+)\)", text).groups()
    return int(order), int(trial)


class ScriptedChatModel(FakeMessagesListChatModel):
    """Answers by the conversation's turn: the planned tool calls one per turn, then the answer."""

    responses: list[BaseMessage] = []
    model_name: str = "scripted-1"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        order, trial = parse_request(messages)
        turn = sum(1 for m in messages if m.type == "ai")
        calls = plan(order, trial)
        usage = {"input_tokens": 20 + 10 * turn, "output_tokens": 5 + turn, "total_tokens": 25 + 11 * turn}
        meta = {"usage_metadata": usage, "response_metadata": {"model_name": self.model_name}}
        if turn < len(calls):
            name, args = calls[turn]
            call = {"name": name, "args": args, "id": f"call-{turn}"}  # the same ids in every run
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content="", tool_calls=[call], **meta))])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=final_answer(order, trial), **meta))])


@tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    return json.dumps({"order_id": order_id, "status": "delivered"})


@tool
def refund(order_id: str, amount: float) -> str:
    """Refund an amount on an order."""
    return f"refunded {amount:.2f} on order {order_id}"


@tool
def cancel_order(order_id: str) -> str:
    """Cancel an order."""
    return f"cancelled order {order_id}"


@tool
def flaky_refund(order_id: str, mode: str) -> str:
    """Refund through the old payments service."""
    if mode == "timeout":
        raise TimeoutError(f"payments service timed out on order {order_id}")
    raise ValueError(f"order {order_id} has no payment on file")


def _careful_cancel(order_id: str) -> str:
    raise ToolException(f"order {order_id} has shipped")


careful_cancel = StructuredTool.from_function(
    _careful_cancel, name="careful_cancel", handle_tool_error=True,
    description="Cancel an order, telling the model when it cannot.",
)


def request_text(order: int, trial: int) -> str:
    return f"please refund order {order} (ticket {trial})"


def truth(order: int, trial: int) -> dict[str, Any]:
    ending = ENDINGS[trial]
    crash = {"crash value": "ValueError", "crash timeout": "TimeoutError"}.get(ending)
    return {
        "task": f"order-{order}", "trial": trial, "ending": ending, "answer": final_answer(order, trial),
        "crash": crash, "tools": [[name, args] for name, args in plan(order, trial)],
        "handled_error": ending == "handled error",
    }


def run_all(instrumentor: str, out: Path, truth_path: Path) -> None:
    from google.protobuf import json_format
    from opentelemetry.exporter.otlp.proto.common import trace_encoder
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-service"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    if instrumentor == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor
    elif instrumentor == "openllmetry":
        from opentelemetry.instrumentation.langchain import (
            LangchainInstrumentor as LangChainInstrumentor,
        )
    else:
        raise SystemExit(f"unknown instrumentor {instrumentor!r}")
    LangChainInstrumentor().instrument(tracer_provider=provider)
    agent = agents.create_agent(
        ScriptedChatModel(), tools=[lookup_order, refund, cancel_order, flaky_refund, careful_cancel],
        name="refund-bot",
    )
    record = {}
    for order in ORDERS:
        for trial in range(TRIALS):
            text = request_text(order, trial)
            record[text] = truth(order, trial)
            with contextlib.suppress(ValueError, TimeoutError):
                agent.invoke({"messages": [("user", text)]}, config={"metadata": {"task_id": f"order-{order}"}})
    provider.force_flush()
    spans = memory.get_finished_spans()
    with open(out, "w") as f:  # the collector's file exporter: one request per line, hex ids
        for i in range(0, len(spans), 7):
            request = json_format.MessageToDict(trace_encoder.encode_spans(spans[i : i + 7]))
            f.write(json.dumps(_hex_ids(request)) + "\n")
    truth_path.write_text(json.dumps(record, indent=1))


def _hex_ids(node: Any) -> Any:
    import base64

    if isinstance(node, dict):
        return {k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and v else _hex_ids(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


if __name__ == "__main__":
    run_all(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
