"""An Inspect AI sample's events → hotmess step rows (the step half of the Inspect importer).

Inspect records a sample as a flat list of events, each naming the span it happened in
(``span_id``); ``span_begin`` events give each span its parent, type and name. What becomes a step:

- a ``model`` event → an ``llm`` step named ``chat <model>``: ``model`` the model's name,
  ``input_tokens`` / ``output_tokens`` from the output's usage, ``input`` the messages the call
  added since the last assistant message (the whole prompt of the first call: system and user
  messages; after that the tool results and user turns that came since, so a long conversation
  is not stored once per call), ``output`` the reply as one assistant message, ``error`` the
  model call's error. Messages are ``{"role", "content"}`` (``content`` the text), assistant
  messages with ``"tool_calls": [{"id", "name", "arguments"}]``, tool messages with their
  ``tool_call_id`` (and ``error`` when the call failed).
- a ``tool`` event → a ``tool`` step: ``name`` and ``tool`` the function, ``input`` the
  arguments (canonical JSON), ``output`` the result, ``error`` ``"<type>: <message>"`` of the
  tool's error (a ``ToolError`` the model was shown, a timeout, a parsing error).
- a span of type ``agent`` (a ``react()`` agent, an agent run as a tool or by ``handoff()``)
  and of type ``subtask`` → an ``agent`` step named after the span (a subtask's input and
  result as its input and output); a span of any type Inspect does not define (a user's
  ``span("plan")``) → a ``chain`` step. Both nest what happened inside them (``depth``,
  ``parent_span_id``) and are not counted in the run's length, as for every importer.
- A tool's own span (type ``tool``) is its tool step: whatever happened in it (a sub-agent run
  as a tool, its model and tool calls) is nested under that step.
- Solver spans (``solvers``, ``solver``) and ``handoff`` wrappers are transparent: their
  events belong to the enclosing step. Setup (``init``) and grading (``scorers``) are not the
  agent's work: model calls of a model-graded scorer are not steps of the run.
- Logs written by older Inspect versions nest a tool's or subtask's events in its ``events``
  field; those are nested under its step the same way. Their scorers are marked by ``step``
  events, and what happens between a scorer's begin and end is left out as well.

``start_ns`` is each event's timestamp, ``end_ns`` its ``completed`` time (a span: its
``span_end``), 0 when not recorded. ``step_index`` counts steps in the order the log holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hotmess.tables import STEP_COLUMNS
from hotmess.tools import canonical_json as _canonical_json

__all__ = ["SampleSteps", "canonical_json", "datetime_ns", "json_data", "message", "message_text", "sample_steps"]

#: Span types whose events are not the agent's steps: setup and grading.
SKIPPED_SPANS = frozenset({"init", "scorers", "scorer"})
#: Span types whose events belong to the enclosing step.
TRANSPARENT_SPANS = frozenset({"solvers", "solver", "handoff", "tool"})
#: Span types that are a (sub-)agent.
AGENT_SPANS = frozenset({"agent", "subtask"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical_json(value: Any) -> str:
    """Canonical JSON of a value read from a log (anything that is not JSON data as its text)."""
    return _canonical_json(value, strict=False)


def datetime_ns(value: Any) -> int:
    """Nanoseconds since the epoch of a datetime or an ISO 8601 string; 0 for None."""
    if value is None:
        return 0
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1) * 1000


def json_data(value: Any) -> Any:
    """Inspect values (pydantic models, content parts) as plain JSON data."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    text = getattr(value, "text", None)
    if getattr(value, "type", None) == "text" and isinstance(text, str):
        return text
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {str(k): json_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_data(v) for v in value]
    return str(value)


def message_text(msg: Any) -> str | None:
    """A chat message's text (its text parts joined, as Inspect's ``.text`` gives it)."""
    content = getattr(msg, "content", None)
    if content is None or isinstance(content, str):
        return content
    text = getattr(msg, "text", None)
    return text if isinstance(text, str) else None


def message(msg: Any) -> dict[str, Any]:
    """One Inspect chat message as ``{"role", "content", ...}`` (module docstring)."""
    out: dict[str, Any] = {"role": msg.role, "content": message_text(msg)}
    calls = getattr(msg, "tool_calls", None)
    if calls:
        out["tool_calls"] = [{"id": c.id, "name": c.function, "arguments": json_data(c.arguments)} for c in calls]
    if msg.role == "tool":
        out["tool_call_id"] = getattr(msg, "tool_call_id", None)
        error = getattr(msg, "error", None)
        if error is not None:
            out["error"] = f"{error.type}: {error.message}"
    return out


def _new_messages(messages: list[Any]) -> list[Any]:
    """The messages after the last assistant message (all of them when there is none)."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "assistant":
            return messages[i + 1 :]
    return messages


@dataclass
class _Span:
    type: str | None
    name: str
    parent: str | None
    step: int | None = None  # index of the step this span is, or belongs to as a tool's span


@dataclass
class SampleSteps:
    """The step rows of one sample, and its counts for the run row."""

    rows: list[dict[str, Any]]

    def counts(self) -> dict[str, int]:
        kinds = [s["kind"] for s in self.rows]
        return {
            "n_steps": sum(1 for k in kinds if k in ("llm", "tool")),
            "n_tool_calls": kinds.count("tool"),
            "n_llm_calls": kinds.count("llm"),
            "n_errors": sum(1 for s in self.rows if s["error"] is not None),
            "input_tokens": sum(s["input_tokens"] for s in self.rows),
            "output_tokens": sum(s["output_tokens"] for s in self.rows),
        }


class _Builder:
    def __init__(self, run_id: str, text: Callable[[str | None], str | None]):
        self.run_id = run_id
        self.text = text
        self.rows: list[dict[str, Any]] = []
        self.spans: dict[str, _Span] = {}
        self.skipped: dict[str, bool] = {}
        self.unclaimed: dict[tuple[str | None, str], list[str]] = {}
        self.scoring = 0  # inside an older log's scorer step events

    # -- spans

    def is_skipped(self, span_id: str | None) -> bool:
        trail = []
        found = False
        while span_id is not None and span_id in self.spans:
            if span_id in self.skipped:
                found = self.skipped[span_id]
                break
            trail.append(span_id)
            span = self.spans[span_id]
            if span.type in SKIPPED_SPANS:
                found = True
                break
            span_id = span.parent
        for s in trail:
            self.skipped[s] = found
        return found

    def owner(self, span_id: str | None) -> int | None:
        """The step that events in ``span_id`` belong to (None: the run itself)."""
        while span_id is not None and span_id in self.spans:
            span = self.spans[span_id]
            if span.step is not None:
                return span.step
            span_id = span.parent
        return None

    # -- rows

    def add(self, parent: int | None, kind: str, name: str, **values: Any) -> int:
        index = len(self.rows)
        row = dict.fromkeys(STEP_COLUMNS)
        row.update(
            run_id=self.run_id, span_id=f"{self.run_id}-{index}",
            parent_span_id=None if parent is None else self.rows[parent]["span_id"],
            step_index=index, depth=1 if parent is None else self.rows[parent]["depth"] + 1,
            kind=kind, name=name, start_ns=0, end_ns=0, input_tokens=0, output_tokens=0,
        )
        row.update(values)
        for column in ("name", "tool", "input", "output", "error", "model"):
            row[column] = self.text(row[column])
        self.rows.append(row)
        return index

    def walk(self, events: Iterable[Any], parent: int | None = None) -> None:
        for ev in events:
            kind = getattr(ev, "event", None)
            if kind == "span_begin":
                self.spans[ev.id] = _Span(ev.type, ev.name, ev.parent_id)
                if self.is_skipped(ev.id):
                    continue
                if ev.type == "tool":  # claimed by its tool event (a handoff's sits in a wrapper)
                    above = self.spans.get(ev.parent_id)
                    key = above.parent if above is not None and above.type == "handoff" else ev.parent_id
                    self.unclaimed.setdefault((key, ev.name), []).append(ev.id)
                elif ev.type in AGENT_SPANS or ev.type not in TRANSPARENT_SPANS:
                    self.spans[ev.id].step = self.add(
                        self._parent(ev.parent_id, parent), "agent" if ev.type in AGENT_SPANS else "chain",
                        ev.name, start_ns=datetime_ns(ev.timestamp))
            elif kind == "step":  # older logs: solvers and scorers as step begin/end events
                if ev.type in SKIPPED_SPANS:
                    self.scoring += 1 if ev.action == "begin" else -1
            elif kind == "span_end":
                span = self.spans.get(ev.id)
                if span is not None and span.step is not None and span.type != "tool":
                    self.rows[span.step]["end_ns"] = datetime_ns(ev.timestamp)
            elif self.scoring > 0 or self.is_skipped(getattr(ev, "span_id", None)):
                continue
            elif kind == "model":
                self.model(ev, self._parent(ev.span_id, parent))
            elif kind == "tool":
                self.tool(ev, self._parent(ev.span_id, parent))
            elif kind == "subtask":
                self.subtask(ev, parent)

    def _parent(self, span_id: str | None, default: int | None) -> int | None:
        owner = self.owner(span_id)
        return default if owner is None else owner

    def model(self, ev: Any, parent: int | None) -> None:
        output = ev.output
        usage = getattr(output, "usage", None)
        reply = [message(output.message)] if output is not None and output.choices else None
        self.add(
            parent, "llm", f"chat {ev.model}", model=ev.model,
            input=canonical_json([message(m) for m in _new_messages(list(ev.input))]),
            output=None if reply is None else canonical_json(reply),
            error=ev.error, start_ns=datetime_ns(ev.timestamp), end_ns=datetime_ns(ev.completed),
            input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        )

    def tool(self, ev: Any, parent: int | None) -> None:
        error = None if ev.error is None else f"{ev.error.type}: {ev.error.message}"
        index = self.add(
            parent, "tool", ev.function, tool=ev.function, input=canonical_json(json_data(ev.arguments)),
            output=canonical_json(json_data(ev.result)), error=error,
            start_ns=datetime_ns(ev.timestamp), end_ns=datetime_ns(ev.completed),
        )
        # its own span: the latest one opened for this function under the same parent
        spans = self.unclaimed.get((ev.span_id, ev.function))
        if spans:
            self.spans[spans.pop()].step = index
        if getattr(ev, "events", None):
            self.walk(ev.events, index)

    def subtask(self, ev: Any, parent: int | None) -> None:
        span = self.spans.get(ev.span_id)
        if span is not None and span.type == "subtask" and span.step is not None:
            index = span.step
        else:  # an older log: no span, the subtask's events inside the event
            index = self.add(self._parent(ev.span_id, parent), "agent", ev.name,
                             start_ns=datetime_ns(ev.timestamp), end_ns=datetime_ns(ev.completed))
        row = self.rows[index]
        row["input"] = self.text(canonical_json(json_data(ev.input)))
        row["output"] = self.text(canonical_json(json_data(ev.result)))
        if getattr(ev, "events", None):
            self.walk(ev.events, index)


def sample_steps(run_id: str, events: Iterable[Any], text: Callable[[str | None], str | None]) -> SampleSteps:
    """The step rows of one sample's events (module docstring); ``text`` scrubs each text
    column (redaction, the size cap)."""
    builder = _Builder(run_id, text)
    builder.walk(events)
    return SampleSteps(builder.rows)
