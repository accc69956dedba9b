"""One OTLP trace's spans → a hotmess run and its steps (the mapping of ``import otlp``).

**One trace is one run**, ``run_id`` = the trace id, so a trace recorded live by hotmess and
the same trace imported from a collector file are one run. :func:`trace_rows` maps the spans
of one trace, whatever files they came from (:mod:`hotmess.integrations.otlp_json` groups
them, and maps a trace stored before again with its new spans to merge them):

- The root: the span carrying ``hotmess.run``; else the span without a parent. With several
  such spans the earliest to start is the root and the others are steps at depth 1, as are
  spans whose parent is missing. When every span has a parent and some parents are missing,
  the root has not arrived (it was still running when the file was written; it comes in a
  later file): the run is ``incomplete`` (no end, outcome or success; the task id from the
  attribute or the first user message if the spans there are have one, else ``""``) and every
  span is a step, until an import brings the root (see
  :func:`hotmess.integrations.otlp_json.insert_otlp`). Except for an agent called from another
  service (its caller's spans went to that service's collector): a span whose parent is
  missing and that is an agent invocation (``invoke_agent``, or OpenInference ``AGENT``) is
  the root. A trace whose only orphans are other kinds of span
  (a tool call, an LLM call) waits for its root.
- Every other span of the trace is a step: ``step_index`` in start order (a parent before a
  child that starts in the same nanosecond), ``depth`` 1 under the root and one more per level,
  exactly as the live exporter numbers them. Rows come from :mod:`hotmess.store.rows` (the
  live exporter's mapping): the step kind from ``hotmess.step.kind``, else
  ``gen_ai.operation.name`` (chat → llm, execute_tool → tool, invoke_agent → agent), else
  ``openinference.span.kind`` (LLM, TOOL, AGENT, CHAIN, RETRIEVER/EMBEDDING/RERANKER); tool
  names, arguments, results, messages, ``input.value`` / ``output.value``, token counts and
  models from the GenAI and OpenInference attributes.
- The run: :func:`hotmess.store.rows.run_row` of the root, ``source`` ``"otlp"``. For a trace
  that hotmess recorded (its root has ``hotmess.run``) that is all, so it round-trips exactly.
  For other traces the outcome (the agent's final answer; none for a crash), the agent, the
  task id and the tool arguments are read by the rules of :mod:`hotmess.vocab.conventions`;
  ``success`` is ``hotmess.success`` when present, else unknown. ``--agent`` overrides the
  agent of every run.
- Task id: the attribute named by ``task_attr`` (default ``hotmess.task.id``; a dotted name
  reaches into a JSON attribute) on the root, else on the resource, else on any span in start
  order; with the default, also ``metadata.task_id`` and OpenLLMetry's association property.
  Failing that, :func:`~hotmess.vocab.instructions.message_task_id` of the first user message
  (``"msg:"`` + 16 hex digits of its sha256, the LangChain handler's rule): the first ``user``
  message of ``gen_ai.input.messages`` or of OpenInference's ``llm.input_messages.N.message.*``
  on the spans in start order (root first;
  :func:`~hotmess.vocab.instructions.attributes_user_message`), else of a
  ``gen_ai.user.message`` event, else the root's ``input.value``. So repeats of one prompt
  group into one task. With no user message either, ``"span:"`` + the root span's name.
- Traces without a single ``hotmess.*``, ``gen_ai.*``, ``llm.*`` or ``openinference.*``
  attribute (HTTP or database spans of the same service), and traces that only built an agent
  (``create_agent``) without running it, are not agent runs (:func:`is_agent_trace`): the
  importer counts them and imports them only into a run stored before, as more spans of it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from hotmess.redact import Redactor
from hotmess.store import rows
from hotmess.store.rows import step_kind
from hotmess.vocab import attributes as A
from hotmess.vocab import conventions
from hotmess.vocab.instructions import attributes_user_message, message_task_id
from hotmess.vocab.records import SpanRecord

__all__ = ["DEFAULT_TASK_ATTR", "SOURCE", "TraceRows", "is_agent_trace", "scrub", "trace_rows"]

SOURCE = "otlp"
DEFAULT_TASK_ATTR = A.TASK_ID

_AGENT_PREFIXES = ("hotmess.", "gen_ai.", "llm.", "openinference.")


class TraceRows(NamedTuple):
    """One trace's ``runs`` row and ``steps`` rows (in step order); whether its task id is the
    hash of its first user message; whether its root span is missing (the run ``incomplete``)."""

    run: dict[str, Any]
    steps: list[dict[str, Any]]
    hashed: bool
    rootless: bool


def is_agent_trace(spans: list[SpanRecord]) -> bool:
    """Whether a trace records an agent at work: some span has an agent attribute, and it is
    more than the agent being built (OpenLLMetry traces each ``create_agent`` call on its own)."""
    if all(rec.attributes.get(A.OPERATION) == "create_agent" for rec in spans):
        return False
    return any(k.startswith(_AGENT_PREFIXES) for rec in spans for k in rec.attributes)


def _root(spans: list[SpanRecord], ids: set[str]) -> SpanRecord | None:
    """The run's root span; None when it has not arrived (every span has a parent, and some
    parents are in none of the files read: the root was still running when they were written)."""
    marked = [s for s in spans if s.attributes.get(A.RUN)]
    if not marked:
        marked = [s for s in spans if s.parent_span_id is None]
    if not marked:
        orphans = [s for s in spans if s.parent_span_id not in ids]
        if not orphans:
            marked = spans  # every span has a parent in the trace: a cycle; take the earliest
        else:
            # An agent called from another service: its parent is the caller's span, which
            # went to that service's collector. A child that lost its parent is no agent (a
            # hotmess step, kind "agent" or not, never roots a run: hotmess marks its roots).
            marked = [
                s for s in orphans
                if A.STEP_KIND not in s.attributes and step_kind(s.attributes) == "agent"
            ]
            if not marked:
                return None
    return min(marked, key=lambda s: s.start_ns)


def _depths(spans: list[SpanRecord], root: SpanRecord | None) -> dict[str, int]:
    """Depth of each span: 0 for the root, 1 under it (or with a missing parent), +1 per level."""
    parent_of = {s.span_id: s.parent_span_id for s in spans}
    depth: dict[str, int] = {} if root is None else {root.span_id: 0}
    for s in spans:
        chain: list[str] = []
        node: str | None = s.span_id
        while node is not None and node not in depth:
            if node in chain or node not in parent_of:  # a cycle, or above the spans we have
                break
            chain.append(node)
            node = parent_of[node]
        base = depth.get(node, 0) if node is not None else 0
        for i, span_id in enumerate(reversed(chain)):
            depth[span_id] = base + i + 1
    return depth


def _first_user_message(root: SpanRecord | None, ordered: list[SpanRecord]) -> str | None:
    """The trace's first user message: in the spans' attributes (root first, then in start
    order; :func:`~hotmess.vocab.instructions.attributes_user_message`), else in a
    ``gen_ai.user.message`` event, else the root's ``input.value``."""
    everyone = ordered if root is None else (root, *ordered)
    for rec in everyone:
        text = attributes_user_message(rec.attributes)
        if text:
            return text
    for rec in everyone:
        for event in rec.events:
            if event["name"] == "gen_ai.user.message":
                content = event["attributes"].get("content")
                if isinstance(content, str) and content:
                    return content
    value = None if root is None else root.attributes.get("input.value")
    return value if isinstance(value, str) and value else None


def _task_id(
    root: SpanRecord | None, ordered: list[SpanRecord], task_attr: str
) -> tuple[str, bool]:
    """The run's task id, and whether it is the hash of the first user message. Without the
    root (not arrived yet) the same search over the spans there are, and failing it ``""``
    (unknown, as for a live run without one) rather than a step's name."""
    top = ordered[0] if root is None else root
    first = () if root is None else (root.attributes,)
    # the named attribute (a dotted path reaches into JSON objects), then with the default the
    # places instrumentors keep a task id the user set in the run's metadata
    names = (task_attr, *conventions.METADATA_TASK_KEYS) if task_attr == A.TASK_ID else (task_attr,)
    for name in names:
        for attrs in (*first, top.resource, *(s.attributes for s in ordered)):
            value = conventions.lookup(attrs, name)
            if value is not None and value != "" and not isinstance(value, (dict, list)):
                return str(value), False
    text = _first_user_message(root, ordered)
    if text is not None:
        return message_task_id(text), True
    return ("" if root is None else "span:" + root.name), False


def _agent(root: SpanRecord | None, ordered: list[SpanRecord]) -> str | None:
    name = conventions.agent_name(
        None if root is None else root.attributes, (s.attributes for s in ordered),
        None if root is None else root.name,
    )
    if name:
        return name
    name = (ordered[0] if root is None else root).resource.get("service.name")
    return None if name is None else str(name)


def _outcome(root: SpanRecord, steps: list[dict[str, Any]]) -> Any:
    """The run's outcome: ``hotmess.outcome``, else the final answer as the conventions give it."""
    if root.attributes.get(A.OUTCOME) is not None:
        return rows.column_text(root.attributes[A.OUTCOME])
    finals = sorted((s for s in steps if s["kind"] == "llm" and s["output"] is not None),
                    key=lambda s: (s["end_ns"] or 0, s["step_index"]), reverse=True)
    outcome = conventions.run_outcome(root.attributes, root.status_code == "ERROR", (s["output"] for s in finals))
    return rows.column_text(outcome)


_COUNTED = ("n_steps", "n_tool_calls", "n_llm_calls", "n_errors", "input_tokens", "output_tokens")


def _counts(steps: list[dict[str, Any]]) -> dict[str, int]:
    """The per-run counts, as :data:`hotmess.store.rows.RUN_COUNTS` computes them in SQL."""
    n_steps = n_tools = n_llm = n_errors = tokens_in = tokens_out = 0
    for s in steps:
        kind = s["kind"]
        if kind not in rows.UNCOUNTED_KINDS:
            n_steps += 1
        if kind == "tool":
            n_tools += 1
        elif kind == "llm":
            n_llm += 1
        if s["error"] is not None:
            n_errors += 1
        tokens_in += s["input_tokens"]
        tokens_out += s["output_tokens"]
    return dict(zip(_COUNTED, (n_steps, n_tools, n_llm, n_errors, tokens_in, tokens_out), strict=True))


def scrub(
    spans: list[SpanRecord], redactor: Redactor | None, max_chars: int,
    resources: dict[int, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """Redact and cut, as the live exporter does; each resource (shared by all the spans of
    a resourceSpans entry) once, not once per span."""
    for s in spans:
        resource = s.resource
        s.resource = {}
        s.redacted(redactor, max_chars)
        seen = resources.get(id(resource))
        if seen is None:  # the original is kept in the value, so its id is never reused
            clean = SpanRecord("", "", None, "", resource=resource).redacted(redactor, max_chars).resource
            seen = resources[id(resource)] = (resource, clean)
        s.resource = seen[1]


def trace_rows(spans: list[SpanRecord], task_attr: str = DEFAULT_TASK_ATTR, agent: str | None = None) -> TraceRows:
    """One trace's run and steps rows, by the rules of the module docstring. Without a root
    span (not arrived yet) every span is a step and the run is ``incomplete``, as a run
    recorded live is until its root ends. ``agent``, when given, names the run's agent."""
    ids = {s.span_id for s in spans}
    root = _root(spans, ids)
    depth = _depths(spans, root)
    # start order, a parent before a child started in the same nanosecond (sort is stable)
    ordered = sorted((s for s in spans if s is not root), key=lambda s: (s.start_ns, depth[s.span_id]))
    run_id = spans[0].trace_id
    steps = [rows.step_row(s, run_id, i, depth[s.span_id]) for i, s in enumerate(ordered)]
    conventions.name_tool_arguments(steps, [conventions.tool_call_id(s.attributes) for s in ordered])
    task_id, hashed = _task_id(root, ordered, task_attr)
    if root is None:
        run = dict.fromkeys(rows.RUN_FIELDS)
        run.update(run_id=run_id, task_id=task_id, agent=_agent(None, ordered), source=SOURCE,
                   status="incomplete", start_ns=ordered[0].start_ns)
    else:
        run = rows.run_row(root, task_id=task_id, source=SOURCE)
        if not root.attributes.get(A.RUN):  # not recorded by hotmess: read the other conventions
            run["outcome"] = _outcome(root, steps)
            run["agent"] = _agent(root, ordered)
    if agent is not None:
        run["agent"] = agent
    run.update(_counts(steps))
    return TraceRows(run, steps, hashed, root is None)
