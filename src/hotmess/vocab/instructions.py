"""A run's instruction (the task as the agent was given it), found in what is already stored.

Every way runs get in stores the instruction somewhere; nothing new is recorded for it.
:func:`run_instruction` looks in the run's root-span attributes (``runs.attributes``), first
rule that gives a non-blank text:

1. ``hotmess.instruction`` — set by the tau-bench importer (the task's ``instruction``), or by
   any agent or collector that puts it on the root span;
2. ``hotmess.input`` — the ``@hotmess.trace`` function's arguments, or the inputs of the
   LangChain handler's root chain (JSON text): :func:`instruction_text` of its value;
3. ``gen_ai.input.messages`` on the root — its first user message;
4. OpenInference's ``llm.input_messages.N.message.role`` / ``.content`` on the root — the first
   ``user`` one;
5. ``input.value`` on the root (OpenInference) — :func:`instruction_text` of its value.

Stored inputs are JSON text; a text that is not JSON is taken as it is, unless it starts like a
JSON object or list (an input cut at ``max_attribute_chars``: nothing is read from it).

Failing those, :func:`step_instruction` of the run's first LLM step's ``input`` (its input
messages: the first user message, or a plain prompt string).

By source: tau-bench runs — rule 1; ``@hotmess.trace`` runs — rule 2 (the first user message in
the arguments, else the argument named ``instruction``, ``prompt``, ``question``, ...); the
LangChain handler — rule 2 (the first user message of the root's inputs, the text
:func:`~hotmess.integrations.langchain.default_task_id` hashes); OTLP JSON imports — rules 2–5
on the root, else the first LLM step (the importer's task-id hash also looks at later spans and
``gen_ai.user.message`` events, which are not read here).

The first user message is found by one rule, :func:`first_user_message` (a JSON value: a
message list, a chain's inputs) and :func:`attributes_user_message` (a span's attributes), for
the instruction here, for the LangChain handler's task id and for the OTLP importer's; the
task id made of it is :func:`message_task_id`, so the same prompt recorded live or imported
from a collector's file is the same task.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from hotmess.vocab import attributes as A

#: Keys whose string value is taken as the instruction (first found, nearest the top first).
INSTRUCTION_KEYS = ("instruction", "prompt", "question", "query", "input", "task", "message", "request")
#: Arguments that name the run, not what it is asked to do.
ID_KEYS = frozenset({"task_id", "instance", "trial", "run_id"})
_USER_ROLES = ("user", "human")
_MAX_DEPTH = 6


def _loads(text: Any) -> Any:
    """The JSON value of a stored text; a text that is not JSON is itself, unless it starts
    like a JSON object or list (one cut at ``max_attribute_chars``): then ``None``."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None if text.lstrip()[:1] in ("{", "[") else text


def _blank(text: Any) -> bool:
    return not isinstance(text, str) or not text.strip()


def _content_text(content: Any) -> str | None:
    """A message's text: its content string, or its text parts joined (GenAI ``parts`` with
    ``content``, OpenAI / LangChain blocks with ``text``)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("content", part.get("text"))
                if isinstance(text, str):
                    texts.append(text)
        return "".join(texts) or None
    return None


def first_user_message(value: Any, depth: int = 0) -> str | None:
    """The text of the first user message in ``value``, searched depth first in order: a
    mapping with ``role`` (or LangChain's ``type``) ``user`` / ``human`` and ``content`` or
    ``parts``, or a ``[role, text]`` pair; None if there is none."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        role = value.get("role", value.get("type"))
        if role in _USER_ROLES:
            text = _content_text(value.get("content", value.get("parts")))
            if not _blank(text):
                return text
        values = value.values()
    elif isinstance(value, list):
        if len(value) == 2 and value[0] in _USER_ROLES and isinstance(value[1], str | list):
            text = _content_text(value[1])
            if not _blank(text):
                return text
        values = value
    else:
        return None
    for item in values:
        if isinstance(item, Mapping | list):
            text = first_user_message(item, depth + 1)
            if text is not None:
                return text
    return None


def attributes_user_message(attributes: Mapping[str, Any]) -> str | None:
    """The first user message in a span's attributes: that of ``gen_ai.input.messages`` (JSON
    text or a list; :func:`first_user_message`), else the first ``user`` (or ``human``) one of
    OpenInference's flattened ``llm.input_messages.N.message.role`` / ``.content``."""
    if attributes.get(A.INPUT_MESSAGES) is not None:
        text = first_user_message(_loads(attributes[A.INPUT_MESSAGES]))
        if text is not None:
            return text
    i = 0
    while (role := attributes.get(f"llm.input_messages.{i}.message.role")) is not None:
        content = attributes.get(f"llm.input_messages.{i}.message.content")
        if role in _USER_ROLES and not _blank(content):
            return content
        i += 1
    return None


def message_task_id(text: str) -> str:
    """The task id of a run known only by its first user message: ``"msg:"`` + the first 16
    hex digits of the SHA-256 of the whitespace-stripped text in UTF-8. A lone surrogate (which
    UTF-8 cannot encode) is hashed as its ``\\udXXX`` escape, so any text has a task id.

    >>> message_task_id("  Refund order 7  ") == message_task_id("Refund order 7")
    True
    >>> message_task_id("Refund order 7")
    'msg:56aec068e3dfa51b'
    """
    return "msg:" + hashlib.sha256(text.strip().encode("utf-8", "backslashreplace")).hexdigest()[:16]


def _keyed_text(value: Any) -> str | None:
    """The string under the first of :data:`INSTRUCTION_KEYS`, level by level from the top."""
    level = [value]
    for _ in range(_MAX_DEPTH):
        deeper = []
        for mapping in level:
            for key in INSTRUCTION_KEYS:
                text = mapping.get(key)
                if not _blank(text):
                    return text
            deeper.extend(v for v in mapping.values() if isinstance(v, Mapping))
        if not deeper:
            return None
        level = deeper
    return None


def instruction_text(value: Any) -> str | None:
    """The instruction in a run's input (a JSON value: the traced function's arguments by
    name, a chain's inputs, a message list), first rule that applies:

    1. its first user message (:func:`first_user_message`);
    2. the string under ``instruction``, ``prompt``, ``question``, ``query``, ``input``,
       ``task``, ``message`` or ``request``, nearest the top first (``{"task": {"instruction":
       ...}}`` counts);
    3. the value itself when it is a string;
    4. its top-level string values, joined by newlines, leaving out ids (``task_id``,
       ``instance``, ``trial``, ``run_id``): ``agent(task_id, text)`` gives ``text``.
    """
    text = first_user_message(value)
    if text is not None:
        return text
    if isinstance(value, Mapping):
        text = _keyed_text(value)
        if text is not None:
            return text
        texts = [v for k, v in value.items() if k not in ID_KEYS and not _blank(v)]
        return "\n".join(texts) or None
    return None if _blank(value) else value


def run_instruction(attributes: Mapping[str, Any] | None) -> str | None:
    """The instruction in a run's root-span attributes (rules 1–5 of the module docstring)."""
    if not attributes:
        return None
    text = attributes.get(A.INSTRUCTION)
    if not _blank(text):
        return text
    if attributes.get(A.INPUT) is not None:
        text = instruction_text(_loads(attributes[A.INPUT]))
        if text is not None:
            return text
    text = attributes_user_message(attributes)
    if text is not None:
        return text
    return instruction_text(_loads(attributes.get("input.value")))


def stored_run_instruction(attributes: str | None) -> str | None:
    """:func:`run_instruction` of a run's stored ``attributes`` (JSON text of an object;
    anything else has none)."""
    try:
        attrs = json.loads(attributes) if attributes else None
    except ValueError:
        attrs = None
    return run_instruction(attrs if isinstance(attrs, dict) else None)


def step_instruction(step_input: Any) -> str | None:
    """The instruction in an LLM step's stored ``input``: its first user message, or the
    prompt when it is a plain string."""
    value = _loads(step_input)
    text = first_user_message(value)
    if text is not None:
        return text
    return None if _blank(value) else value
