"""What third-party instrumentors put where: the final answer, tool arguments and results,
model messages, the agent's name and the task id, read as a user would read them.

hotmess's own spans say all of this in ``hotmess.*`` and GenAI attributes. Spans from other
instrumentors say it in their own ways, and the raw values are framework serialisations full of
per-run ids, which would make every run its own cluster. The rules, in the order tried:

**Tool arguments** (a tool step's ``input``): the named-argument object the model sent.

1. ``gen_ai.tool.call.arguments``; OpenLLMetry's wrapper ``{"input_str", "inputs", "tags",
   "metadata", "kwargs"}`` gives its ``inputs`` (else ``input_str`` read as a Python or JSON
   literal), never the metadata (checkpoint namespaces, run ids);
2. ``hotmess.input``;
3. OpenInference's ``input.value``: a JSON object as it is. A bare value (a single-argument
   tool: ``42``) gets its parameter's name from the model's tool call with the same tool-call id
   (:func:`name_tool_arguments`, over the whole trace), else from the tool's parameter schema
   (``tool.parameters`` with one property).

**Tool results** (``output``) are the tool message's content, not its LangChain serialisation;
a tool message with ``status: "error"`` (LangChain's handled tool errors) is the step's error.

**Model messages** (an LLM step's ``input`` / ``output``): ``hotmess.input`` / ``hotmess.output``,
else ``gen_ai.input.messages`` / ``gen_ai.output.messages`` as they are; else OpenInference's flattened
``llm.input_messages.N.message.{role, content, tool_calls.M.tool_call.*}`` rebuilt as a list of
``{"role", "content", "tool_calls": [{"id", "name", "arguments"}]}``; else the older GenAI
event form (``gen_ai.user.message`` and its siblings in, ``gen_ai.choice`` out) rebuilt the same
way; else ``input.value`` / ``output.value``.

**Final answer** of a message list (:func:`final_answer`): the text of the last assistant
message (its ``content``, or its ``text`` parts joined); a last message with only tool calls
gives the calls (``[{"name", "arguments"}]``). A LangGraph / LangChain state
(``{"messages": [...]}``, LangChain's ``{"lc": 1, "kwargs": ...}`` serialisations, ``generations``)
gives its last AI message the same way.

**Run outcome** of a trace not recorded by hotmess (:func:`run_outcome`): the final answer of
the root's ``gen_ai.output.messages``, else of its ``llm.output_messages``, else of its
``output.value`` (parsed when JSON); else, unless the run crashed (its root's status is an
error), the final answer of the last model call to end. A crashed run without an answer on its
root has no outcome: its ``error`` is ``ExceptionType: message`` and analyzers key it by the
exception type, so crashes of different kinds are different clusters.

**Agent**: ``gen_ai.agent.name`` (root first, then any span), else OpenInference's
``metadata.lc_agent_name``, else an OpenInference root's name (the graph's, unless it is a
framework default such as ``LangGraph`` or ``AgentExecutor``), else the resource's ``service.name``.

**Task id** (:func:`lookup`): the named attribute, where a dotted name also reaches into a JSON
object attribute (``metadata.task_id`` is ``task_id`` inside OpenInference's ``metadata``).
With the default name, ``task_id`` in OpenInference's ``metadata`` and OpenLLMetry's
``traceloop.association.properties.task_id`` are recognised too. A session or conversation
(``session.id``, ``gen_ai.conversation.id``) is not a task: one conversation is one run.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from typing import Any

from hotmess.vocab import attributes as A

__all__ = [
    "METADATA_TASK_KEYS",
    "agent_name",
    "final_answer",
    "lookup",
    "messages",
    "name_tool_arguments",
    "run_outcome",
    "tool_arguments",
    "tool_result",
]

#: Where instrumentors keep run metadata a user set (``config={"metadata": {...}}``).
METADATA_TASK_KEYS = ("metadata.task_id", "traceloop.association.properties.task_id")
#: Names LangChain and LangGraph give a root when the user named nothing: no agent's name.
_FRAMEWORK_NAMES = frozenset({
    "LangGraph", "AgentExecutor", "RunnableSequence", "RunnableLambda", "RunnableParallel",
    "RunnableWithMessageHistory", "CompiledStateGraph", "Pregel", "ChatPromptTemplate",
})
_WRAPPER_KEYS = {"input_str", "inputs", "tags", "metadata", "kwargs", "callbacks", "run_id"}


def parse(value: Any) -> Any:
    """A JSON text as its value; anything else (or text that is not JSON) as it is."""
    if isinstance(value, str) and value[:1] in "{[\"" and value:
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def lookup(attrs: dict[str, Any], path: str) -> Any:
    """``attrs[path]``, else the dotted path read into JSON-object attributes: ``metadata.task_id``
    is ``task_id`` inside the ``metadata`` attribute (longest attribute name first)."""
    if path in attrs:
        return attrs[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head not in attrs:
            continue
        node = parse(attrs[head])
        for key in parts[cut:]:
            if not isinstance(node, dict) or key not in node:
                node = None
                break
            node = node[key]
        if node is not None:
            return node
    return None


# ------------------------------------------------------------------------------ tools


def _unwrap_arguments(value: Any) -> Any:
    """OpenLLMetry's ``{"input_str", "inputs", "metadata", ...}`` → the named arguments."""
    if not isinstance(value, dict) or "input_str" not in value or not set(value) <= _WRAPPER_KEYS:
        return value
    if isinstance(value.get("inputs"), dict):
        return value["inputs"]
    text = value["input_str"]
    if isinstance(text, str):
        for read in (json.loads, ast.literal_eval):
            try:
                return read(text)
            except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
                continue
    return text


def tool_arguments(attrs: dict[str, Any]) -> Any:
    """A tool step's arguments, unwrapped (module docstring, rule order)."""
    raw = attrs.get(A.TOOL_ARGUMENTS)
    if raw is not None:
        if isinstance(raw, str) and raw.startswith('{"input_str"'):
            parsed = parse(raw)
            unwrapped = _unwrap_arguments(parsed)
            return raw if unwrapped is parsed else unwrapped
        return raw
    if attrs.get(A.INPUT) is not None:
        return attrs[A.INPUT]
    value = attrs.get("input.value")
    if value is not None:
        parsed = parse(value)
        if isinstance(parsed, dict):
            return parsed
        name = _single_parameter(attrs.get("tool.parameters"))
        return {name: _scalar(value)} if name else value
    return None


def _scalar(value: Any) -> Any:
    """OpenInference writes a single argument as its text: ``42`` for ``"42"`` or ``42``; a JSON
    literal is read as one (a string is kept as the text)."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return value
        return parsed if isinstance(parsed, (int, float, bool)) or parsed is None else value
    return value


def _single_parameter(schema: Any) -> str | None:
    schema = parse(schema)
    if isinstance(schema, dict):
        props = schema.get("properties", schema.get("parameters", {}).get("properties")
                           if isinstance(schema.get("parameters"), dict) else None)
        if isinstance(props, dict) and len(props) == 1:
            return next(iter(props))
    return None


def _tool_message(value: Any) -> dict[str, Any] | None:
    """The tool message inside a result: OpenInference's ``{"type": "tool", "data": {...}}``,
    LangChain's ``{"lc": 1, "kwargs": {...}}``, OpenLLMetry's ``{"output": <either>}``."""
    node = parse(value)
    if isinstance(node, dict) and "output" in node and set(node) <= {"output", "kwargs"}:
        node = parse(node["output"])
    if not isinstance(node, dict):
        return None
    if node.get("lc") == 1 and isinstance(node.get("kwargs"), dict):
        kind = (node.get("id") or [""])[-1]
        node = node["kwargs"]
        if kind == "ToolMessage" or node.get("type") == "tool":
            return node if "content" in node else None
        return None
    if node.get("type") == "tool" and isinstance(node.get("data"), dict):
        return node["data"] if "content" in node["data"] else None
    if node.get("type") == "tool" and "content" in node and "tool_call_id" in node:  # a ToolMessage's dump
        return node
    return None


def tool_result(attrs: dict[str, Any]) -> tuple[Any, str | None]:
    """(a tool step's result, its handled error): the tool message's content, and that content
    as the error when the message's status is ``error``."""
    raw = attrs.get(A.TOOL_RESULT)
    if raw is None:
        raw = attrs.get(A.OUTPUT)
    if raw is None:
        raw = attrs.get("output.value")
    # most results are no tool message: a substring test spares parsing them
    if isinstance(raw, str) and '"tool"' not in raw and "ToolMessage" not in raw:
        return raw, None
    message = _tool_message(raw) if isinstance(raw, (str, dict)) else None
    if message is None:
        return raw, None
    content = message.get("content")
    error = None
    if message.get("status") == "error":
        error = f"tool error: {content if isinstance(content, str) else json.dumps(content)}"
    return content, error


def tool_call_id(attrs: dict[str, Any]) -> str | None:
    """The id of the model's tool call that a tool step answers, where the instrumentor kept it."""
    value = attrs.get(A.TOOL_CALL_ID)
    if value:
        return str(value)
    message = _tool_message(attrs.get("output.value") or attrs.get(A.TOOL_RESULT))
    if message and message.get("tool_call_id"):
        return str(message["tool_call_id"])
    wrapper = parse(attrs.get(A.TOOL_ARGUMENTS))
    if isinstance(wrapper, dict) and isinstance(wrapper.get("kwargs"), dict):
        found = wrapper["kwargs"].get("tool_call_id")
        return str(found) if found else None
    return None


# ------------------------------------------------------------------------------ messages


def _flattened(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    """OpenInference's ``{prefix}.N.message.*`` attributes as a message list."""
    if f"{prefix}.0.message.role" not in attrs:
        return None
    out = []
    i = 0
    while (role := attrs.get(f"{prefix}.{i}.message.role")) is not None:
        base = f"{prefix}.{i}.message"
        message: dict[str, Any] = {"role": role}
        content = attrs.get(f"{base}.content")
        if content is not None:
            message["content"] = content
        calls = []
        j = 0
        while (name := attrs.get(f"{base}.tool_calls.{j}.tool_call.function.name")) is not None:
            call = {"name": name, "arguments": parse(attrs.get(f"{base}.tool_calls.{j}.tool_call.function.arguments"))}
            call_id = attrs.get(f"{base}.tool_calls.{j}.tool_call.id")
            if call_id is not None:
                call["id"] = call_id
            calls.append(call)
            j += 1
        if calls:
            message["tool_calls"] = calls
        for key in ("tool_call_id", "name"):
            if attrs.get(f"{base}.{key}") is not None:
                message[key] = attrs[f"{base}.{key}"]
        out.append(message)
        i += 1
    return out


#: The older GenAI conventions' message events, and the role each one carries.
_INPUT_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                 "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def _event_messages(events: Iterable[dict[str, Any]], direction: str) -> list[dict[str, Any]] | None:
    """Messages from the older GenAI event form: ``gen_ai.{system,user,assistant,tool}.message``
    events in, ``gen_ai.choice`` events out (``content``, or a ``message`` object)."""
    out = []
    for event in events:
        name, attrs = event.get("name"), event.get("attributes") or {}
        if direction == "input" and name in _INPUT_EVENTS:
            role = _INPUT_EVENTS[name]
        elif direction == "output" and name == "gen_ai.choice":
            role = "assistant"
        else:
            continue
        message = parse(attrs.get("message"))
        message = dict(message) if isinstance(message, dict) else {}
        message.setdefault("role", role)
        if attrs.get("content") is not None:
            message.setdefault("content", attrs["content"])
        if attrs.get("tool_calls") is not None:
            message.setdefault("tool_calls", parse(attrs["tool_calls"]))
        out.append(message)
    return out or None


def messages(attrs: dict[str, Any], direction: str, events: Iterable[dict[str, Any]] = ()) -> Any:
    """An LLM step's ``input`` or ``output`` (``direction``): its messages (module docstring)."""
    own = A.INPUT if direction == "input" else A.OUTPUT
    genai = A.INPUT_MESSAGES if direction == "input" else A.OUTPUT_MESSAGES
    for key in (own, genai):
        if attrs.get(key) is not None:
            return attrs[key]
    found = _flattened(attrs, f"llm.{direction}_messages") or _event_messages(events, direction)
    if found is not None:
        return found
    return attrs.get(f"{direction}.value")


def _calls_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's tool calls as ``[{"name", "arguments"}]`` (GenAI parts, OpenInference's and
    LangChain's lists)."""
    calls = []
    for part in message.get("parts") or []:
        if isinstance(part, dict) and part.get("type") == "tool_call":
            calls.append({"name": part.get("name"), "arguments": parse(part.get("arguments"))})
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict):
            function = call.get("function") if isinstance(call.get("function"), dict) else {}
            args = call.get("arguments", call.get("args", function.get("arguments")))
            calls.append({"name": call.get("name", function.get("name")), "arguments": parse(args)})
    return calls


def _text_of(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if isinstance(content, str):
        return content or None
    parts = message.get("parts", content)
    if isinstance(parts, list):
        texts = [p.get("content", p.get("text")) for p in parts
                 if isinstance(p, dict) and p.get("type", "text") == "text"]
        return "".join(t for t in texts if isinstance(t, str)) or None
    return None


def _as_message(node: Any) -> dict[str, Any] | None:
    """One message in any of the shapes: GenAI, OpenInference, LangChain's serialisation
    (``{"lc": 1, "kwargs": {...}}``) or its dump (``{"type": "ai", "data": {...}}``)."""
    if not isinstance(node, dict):
        return None
    if node.get("lc") == 1 and isinstance(node.get("kwargs"), dict):
        kind = (node.get("id") or [""])[-1]
        inner = dict(node["kwargs"])
        inner.setdefault("type", {"AIMessage": "ai", "AIMessageChunk": "ai"}.get(kind, inner.get("type")))
        node = inner
    elif isinstance(node.get("data"), dict) and "type" in node:
        node = {**node["data"], "type": node["type"]}
    role = node.get("role") or {"ai": "assistant", "human": "user", "tool": "tool", "system": "system"}.get(
        node.get("type"))
    return {**node, "role": role} if role else None


def _message_list(value: Any) -> list[dict[str, Any]] | None:
    """The message list inside a value: a list of messages, ``{"messages": [...]}`` (a LangGraph
    state, possibly under ``outputs`` / ``update``), or LangChain ``generations``."""
    node = parse(value)
    for _ in range(4):  # unwrap {"outputs": ...}, [{"update": ...}], {"messages": ...}
        if isinstance(node, list) and len(node) == 1 and isinstance(node[0], dict) and "update" in node[0]:
            node = node[0]["update"]
        elif isinstance(node, dict) and "outputs" in node and len(node) <= 2:
            node = node["outputs"]
        elif isinstance(node, dict) and "generations" in node:
            gens = node["generations"]
            while isinstance(gens, list) and gens and isinstance(gens[-1], list):
                gens = gens[-1]
            node = [g.get("message") or {"role": "assistant", "content": g.get("text")}
                    for g in gens if isinstance(g, dict)] if isinstance(gens, list) else None
        elif isinstance(node, dict) and "messages" in node:
            node = node["messages"]
        else:
            break
    if not isinstance(node, list):
        return None
    out = [m for m in (_as_message(n) for n in node) if m is not None]
    return out or None


def final_answer(value: Any) -> Any:
    """The final answer in ``value`` (module docstring); None when it holds no message list."""
    found = _message_list(value)
    if not found:
        return None
    for message in reversed(found):
        if message["role"] != "assistant":
            continue
        text = _text_of(message)
        if text is not None:
            return text
        calls = _calls_of(message)
        if calls:
            return calls
        break
    return None


def run_outcome(root: dict[str, Any], crashed: bool, last_llm_outputs: Iterable[Any]) -> Any:
    """The outcome of a run recorded by another instrumentor (module docstring)."""
    for key in (A.OUTPUT_MESSAGES,):
        if root.get(key) is not None:
            answer = final_answer(root[key])
            return root[key] if answer is None else answer
    flat = _flattened(root, "llm.output_messages")
    if flat:
        answer = final_answer(flat)
        if answer is not None:
            return answer
    if root.get("output.value") is not None:
        answer = final_answer(root["output.value"])
        return root["output.value"] if answer is None else answer
    if crashed:  # the last model call of a crashed run is no answer (often a tool-call request)
        return None
    for output in last_llm_outputs:
        answer = final_answer(output)
        return output if answer is None else answer
    return None


def agent_name(root: dict[str, Any] | None, others: Iterable[dict[str, Any]], root_name: str | None) -> str | None:
    """The agent's name (module docstring), before the ``service.name`` fallback."""
    spans = [root, *others] if root is not None else list(others)
    for attrs in spans:
        if attrs and attrs.get(A.AGENT_NAME):
            return str(attrs[A.AGENT_NAME])
    for attrs in spans:
        name = attrs and lookup(attrs, "metadata.lc_agent_name")
        if name:
            return str(name)
    if root is not None and root_name and "openinference.span.kind" in root and root_name not in _FRAMEWORK_NAMES:
        return root_name
    return None


def name_tool_arguments(steps: list[dict[str, Any]], tool_call_ids: list[str | None]) -> None:
    """Give named arguments to tool steps whose input is a bare value, from the model's tool call
    with the same id (OpenInference's single-argument tools). ``tool_call_ids[i]`` is step i's."""
    calls: dict[str, Any] = {}
    for step in steps:
        if step["kind"] != "llm" or not isinstance(step.get("output"), str):
            continue
        for message in _message_list(step["output"]) or []:
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and call.get("id") is not None and isinstance(call.get("arguments"), dict):
                    calls[str(call["id"])] = call["arguments"]
    if not calls:
        return
    for step, call_id in zip(steps, tool_call_ids, strict=True):
        if step["kind"] != "tool" or call_id not in calls:
            continue
        current = parse(step["input"])
        if not isinstance(current, dict):
            step["input"] = json.dumps(calls[call_id], sort_keys=True, ensure_ascii=False)
