"""LangChain's values in hotmess's forms, for the callback handler (:mod:`hotmess.integrations.langchain`).

- :func:`jsonable`: inputs and outputs with LangChain's messages in the GenAI semantic
  conventions' form (:func:`genai_message`: ``{"role", "parts"}``), documents as
  ``{"page_content", "metadata"}``, LangGraph commands as ``{"update", "goto"}``;
- :func:`model_reply`: a model call's output messages, token usage, model and tool calls;
- :func:`run_outcome`: a run's outcome from its final output (a structured response, else the
  last message's text, else the single output value);
- :func:`tool_messages`: the tool messages in a chain's output; :func:`call_goal`: a tool
  step's goal, the call as canonical JSON;
- :func:`default_task_id`: the task id of an invocation given none, from its first user message
  by the rule shared with the OTLP importer (:mod:`hotmess.vocab.instructions`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, NamedTuple

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult

from hotmess.tools import canonical_json
from hotmess.vocab.instructions import first_user_message, message_task_id
from hotmess.vocab.serialize import to_json

__all__ = [
    "call_goal",
    "default_task_id",
    "genai_message",
    "jsonable",
    "message_text",
    "ModelReply",
    "model_reply",
    "run_outcome",
    "serialized_name",
    "tool_messages",
]

# LangChain message types -> GenAI roles
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}


def default_task_id(inputs: Any) -> str:
    """The task id of an invocation given none: :func:`~hotmess.vocab.instructions.message_task_id`
    of its first user message (``"msg:"`` + 16 hex digits of the SHA-256 of the stripped text,
    the OTLP importer's rule), else ``"input:"`` + the same of the inputs' canonical JSON."""
    value = jsonable(inputs)
    text = _first_user_text(value)
    if text is not None:
        return message_task_id(text)
    try:
        text = canonical_json(value)
    except (TypeError, ValueError):
        text = to_json(value)
    return "input:" + hashlib.sha256(text.strip().encode("utf-8", "backslashreplace")).hexdigest()[:16]


def _first_user_text(value: Any) -> str | None:
    """The first user message of an invocation's inputs in their JSON form (:func:`jsonable`):
    by the shared rule, :func:`~hotmess.vocab.instructions.first_user_message` (``{"messages":
    [...]}``, a message, a ``(role, text)`` pair); else a prompt string (a model called with a
    string, or the first of an LLM's prompts), else a chain's ``input`` / ``question`` /
    ``query`` string."""
    text = first_user_message(value)
    if text is not None:
        return text
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    if isinstance(value, Mapping):
        for key in ("input", "question", "query"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


def serialized_name(serialized: Mapping[str, Any] | None) -> str | None:
    if not serialized:
        return None
    name = serialized.get("name")
    if name:
        return str(name)
    ids = serialized.get("id")
    return str(ids[-1]) if isinstance(ids, list) and ids else None


def _content_text(content: Any) -> str:
    """A message's text: its content string, or its text blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b if isinstance(b, str) else str(b.get("text", "")) if isinstance(b, Mapping) else ""
            for b in content
        )
    return str(content)


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    parts = []
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append({"type": "text", "content": block.get("text", "")})
        else:
            parts.append(jsonable(block))
    return parts


def genai_message(m: Any) -> Any:
    """A LangChain message in the GenAI semantic conventions' form: role and parts."""
    if not isinstance(m, BaseMessage):
        if isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str):
            return {"role": _ROLES.get(m[0], m[0]), "parts": _parts(m[1])}
        return jsonable(m)
    if isinstance(m, ToolMessage):
        return {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": m.tool_call_id, "response": m.content}],
        }
    out: dict[str, Any] = {"role": _ROLES.get(m.type) or getattr(m, "role", m.type), "parts": _parts(m.content)}
    for call in getattr(m, "tool_calls", None) or ():
        out["parts"].append(
            {"type": "tool_call", "id": call.get("id"), "name": call.get("name"), "arguments": call.get("args")}
        )
    return out


class ModelReply(NamedTuple):
    """What a model call returned: its output messages (GenAI form, with ``finish_reason`` when
    given), its token usage ``(input, output)`` (None when not reported), the model's name, and
    its tool calls (call id -> (tool name, arguments))."""

    outputs: list[dict[str, Any]]
    usage: tuple[int, int] | None
    model: str | None
    tool_calls: dict[str, tuple[Any, Any]]


def model_reply(response: LLMResult) -> ModelReply:
    """A chat model's or LLM's result: the first prompt's generations, the usage of their
    messages (else the provider's ``llm_output`` ``token_usage`` / ``usage``), the model named
    in their response metadata (else in ``llm_output``)."""
    outputs: list[dict[str, Any]] = []
    tool_calls: dict[str, tuple[Any, Any]] = {}
    input_tokens = output_tokens = 0
    has_usage = False
    model = None
    for generation in response.generations[0] if response.generations else ():
        message = getattr(generation, "message", None)
        if message is None:
            outputs.append({"role": "assistant", "parts": [{"type": "text", "content": generation.text}]})
            continue
        out = genai_message(message)
        finish = (message.response_metadata or {}).get("finish_reason") or (
            generation.generation_info or {}
        ).get("finish_reason")
        if finish:
            out["finish_reason"] = finish
        outputs.append(out)
        usage = getattr(message, "usage_metadata", None)
        if usage:
            has_usage = True
            input_tokens += int(usage.get("input_tokens") or 0)
            output_tokens += int(usage.get("output_tokens") or 0)
        model = model or (message.response_metadata or {}).get("model_name") or (
            message.response_metadata or {}
        ).get("model")
        for call in getattr(message, "tool_calls", None) or ():
            if call.get("id"):
                tool_calls[call["id"]] = (call.get("name"), call.get("args"))
    llm_output = response.llm_output or {}
    if not has_usage:
        usage = llm_output.get("token_usage") or llm_output.get("usage") or {}
        if isinstance(usage, Mapping) and usage:
            has_usage = True
            input_tokens = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
            output_tokens = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
    model = model or llm_output.get("model_name") or llm_output.get("model")
    return ModelReply(
        outputs, (input_tokens, output_tokens) if has_usage else None, str(model) if model else None, tool_calls,
    )


def message_text(message: Mapping[str, Any]) -> str:
    return "".join(p.get("content", "") for p in message.get("parts", ()) if p.get("type") == "text")


def jsonable(value: Any) -> Any:
    """Inputs and outputs with LangChain's messages and documents in their compact forms."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, BaseMessage):
        return genai_message(value)
    if isinstance(value, Document):
        return {"page_content": value.page_content, "metadata": value.metadata}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    update = getattr(value, "update", None)  # LangGraph's Command
    if type(value).__name__ == "Command" and update is not None:
        return {"update": jsonable(update), "goto": jsonable(getattr(value, "goto", None))}
    return value  # to_json's fallbacks handle the rest (pydantic models, dataclasses, repr)


def run_outcome(outputs: Any) -> Any:
    """A run's outcome from its final output: a structured response, else the last message's
    text (an agent's final answer), else the single output value, else the output."""
    if isinstance(outputs, Mapping):
        if outputs.get("structured_response") is not None:
            return jsonable(outputs["structured_response"])
        messages = outputs.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1], BaseMessage):
            return _content_text(messages[-1].content)
        if len(outputs) == 1:
            return jsonable(next(iter(outputs.values())))
    if isinstance(outputs, BaseMessage):
        return _content_text(outputs.content)
    return jsonable(outputs)


def tool_messages(outputs: Any) -> list[ToolMessage]:
    """The tool messages in a chain's output: a LangGraph tools node returns them in
    ``{"messages": [...]}``, a list, or commands' updates."""
    found: list[ToolMessage] = []
    stack = [outputs]
    while stack:
        value = stack.pop()
        if isinstance(value, ToolMessage):
            found.append(value)
        elif isinstance(value, Mapping):
            if "messages" in value:
                stack.append(value["messages"])
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif type(value).__name__ == "Command":
            stack.append(getattr(value, "update", None))
    return found




def call_goal(tool: str, arguments: Any) -> str:
    """The goal of a tool step: the call as canonical JSON ``[tool, arguments]``."""
    try:
        return canonical_json([tool, jsonable(arguments)])
    except (TypeError, ValueError):
        return to_json([tool, jsonable(arguments)])
