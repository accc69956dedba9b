"""tau-bench trajectory files → hotmess run and step rows (the parsing half of the importer).

A tau-bench results file (for example ``historical_trajectories/gpt-4o-airline.json`` in
Sierra's tau-bench repository) is a JSON list of records, one per (task, trial)::

    {"task_id": 3, "trial": 1, "reward": 0.0,
     "info": {"task": {"user_id": ..., "instruction": ..., "actions": [{"name": ..., "kwargs": {...}}]},
              "reward_info": {"reward": 0.0, "info": {"r_actions": 0.0, ...}, "actions": [...]} | null,
              "source": ..., "user_cost": ...},
     "traj": [OpenAI chat messages: system / user / assistant (with tool_calls) / tool]}

:func:`parse_taubench` reads the whole file, validates it and returns rows keyed exactly by
:data:`hotmess.tables.RUN_COLUMNS` and :data:`hotmess.tables.STEP_COLUMNS`. It writes nothing:
the first malformed record raises :class:`~hotmess.errors.InputError` and the caller stores
nothing. Reading the file and checking each field are
:mod:`hotmess.integrations.taubench_records`' job; this module maps the checked records to rows.

Mapping
-------
Run (one per record):

- ``run_id`` — ``"tb-"`` + the first 32 hex digits of sha256 over the record's canonical JSON
  and the agent name: importing the same file twice gives the same ids.
- ``task_id`` / ``instance`` — ``str(task_id)`` / ``str(trial)``; ``agent`` — the ``agent``
  argument or the file's stem; ``source`` ``"tau-bench"``; ``status`` ``"ok"``.
- ``success`` — 1.0 when ``reward == 1.0``, else 0.0; ``score`` — the reward.
- ``reference`` — canonical JSON of the ground-truth ``info.task.actions``, all of them as
  given (read-only ones included), as ``[{"name", "kwargs"}]``.
- ``outcome`` — canonical JSON of the run's *effective* state-changing tool calls, in order,
  as ``[{"name", "kwargs"}]``: calls of tools that are not read-only (see
  :func:`is_state_changing`) whose result is not an error. A call the environment rejected
  (``"Error: ..."``) changed nothing, so it is left out of the outcome; it stays a step with
  its ``error`` set.
- ``start_ns`` / ``end_ns`` — 0: tau-bench files carry no timestamps, and no synthetic
  ordering is invented. Token counts are 0 for the same reason.
- ``n_steps`` (step rows), ``n_tool_calls``, ``n_llm_calls`` (assistant turns),
  ``n_errors`` (tool steps with an error: a rejected call or arguments that did not parse).
- ``attributes`` — JSON with ``hotmess.instruction``, ``hotmess.user_id``,
  ``tau_bench.reward_info`` (the reward and its small details such as ``r_actions`` /
  ``r_outputs``, without the duplicated ground-truth actions; null when not graded),
  ``hotmess.graded`` and ``hotmess.flags``.

Records whose ``info.reward_info`` is null (or absent) were not graded: tau-bench leaves it
null when the run hits its step limit. They are imported as failed (success 0.0), carry
``"hotmess.flags": ["step_limit"]`` and are listed in :attr:`TauBenchBatch.flagged`.

Steps (the agent's actions; the system prompt is skipped, user turns are not steps):

- each assistant message → a step of kind ``"llm"``, name ``"chat"``; ``input`` = the user
  turn(s) since the previous assistant message as a JSON string (a list if several, None if
  none, e.g. right after a tool result); ``output`` = the reply text as a JSON string, or for a
  tool-calling turn ``{"content": text-or-null, "tool_calls": [{"name", "kwargs"}]}``.
- each of its tool calls → a step of kind ``"tool"``, name and ``tool`` = the tool name,
  ``input`` = canonical JSON of the parsed arguments, ``output`` = the matching tool message's
  content as a JSON string, ``error`` = that content when it starts with ``"Error"``.
  Arguments that are not a JSON object are not fatal: the input becomes
  ``{"_raw": "<the text>"}`` and the step's error says they did not parse.
- ``step_index`` from 0 in message order (an assistant turn, then its tool calls); ``depth`` 1;
  ``span_id`` ``f"{run_id}-{step_index}"``; no parent; times, tokens and model empty.

Tool results are matched by ``tool_call_id`` among the tool messages after the assistant
message and before the next one. tau-bench reuses call ids within one trajectory (the same id
appears for different calls later in a run), so matching over the whole trajectory would pair
calls with the wrong results.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from hotmess.errors import InputError
from hotmess.integrations.taubench_records import (
    INT_OR_STR,
    ROLES,
    Record,
    checked_actions,
    is_dict,
    is_id,
    is_list,
    is_nonempty_str,
    is_number,
    is_str,
    message_text,
    parse_arguments,
    read_records,
    type_name,
)
from hotmess.progress import Progress, counted
from hotmess.redact import Redactor, make_redactor
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS
from hotmess.tools import canonical_json, is_read_only

__all__ = [
    "SOURCE",
    "STEP_LIMIT_FLAG",
    "TauBenchBatch",
    "is_state_changing",
    "is_tool_error",
    "parse_taubench",
]

SOURCE = "tau-bench"
STEP_LIMIT_FLAG = "step_limit"

# Ids and fixed labels: never user text, and a run id must stay the record's hash.
_NOT_REDACTED = frozenset({"run_id", "span_id", "parent_span_id", "source", "status", "kind"})


def is_state_changing(tool_name: str) -> bool:
    """True for tools that may change the environment (``book_reservation``,
    ``transfer_to_human_agents``, ``getaway_plan``); False for read-only ones: the name's first
    word (split on non-alphanumerics and camelCase, case-insensitive) is get, search, list,
    find, lookup, read, fetch or query, or the whole name is ``think`` or ``calculate``.

    The negation of :func:`hotmess.tools.is_read_only`, the rule the "actions" outcome
    mapper uses too, so imported outcomes and computed action keys agree.
    """
    return not is_read_only(tool_name)


def is_tool_error(result: str | None) -> bool:
    """tau-bench tools report failure by answering ``"Error: ..."``."""
    return result is not None and result.startswith("Error")


@dataclass(frozen=True)
class TauBenchBatch:
    """Everything parsed from one file, ready to write.

    ``runs`` and ``steps`` are row dicts with every key of ``RUN_COLUMNS`` / ``STEP_COLUMNS``
    (steps grouped by run, in run order). ``flagged`` lists the records imported as failed
    because they were not graded: ``{"index", "task_id", "trial", "run_id", "reason"}``.
    ``duplicates`` lists records skipped because an identical record (same task, trial and
    content) came earlier in the file: ``{"index", "first_index", "task_id", "trial"}``.
    ``skipped`` holds the error of each malformed record left out (``skip_invalid=True`` only).
    """

    path: str
    agent: str
    runs: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    flagged: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[InputError] = field(default_factory=list)

    def iter_runs(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Each run with its steps, in file order."""
        by_run: dict[str, list[dict[str, Any]]] = {}
        for step in self.steps:
            by_run.setdefault(step["run_id"], []).append(step)
        for run in self.runs:
            yield run, by_run.get(run["run_id"], [])

    def steps_of(self, run_id: str) -> list[dict[str, Any]]:
        """The steps of one run, in step order."""
        return [s for s in self.steps if s["run_id"] == run_id]


# ---------------------------------------------------------------------------------------------
# building rows


def _run_id(record_json: str, agent: str) -> str:
    digest = hashlib.sha256((record_json + "\n" + agent).encode("utf-8")).hexdigest()
    return "tb-" + digest[:32]


def _step_row(run_id: str, index: int, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(STEP_COLUMNS)
    row.update(
        run_id=run_id,
        span_id=f"{run_id}-{index}",
        parent_span_id=None,
        step_index=index,
        depth=1,
        start_ns=0,
        end_ns=0,
        input_tokens=0,
        output_tokens=0,
        model=None,
        goal=None,
        error=None,
    )
    row.update(values)
    return row


def _steps(
    rec: Record, run_id: str, traj: list[Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Step rows, the effective state-changing calls, and the number of assistant turns."""
    # validate every message first, so the tool results are known when the calls are met
    messages: list[tuple[str, dict[str, Any], str | None]] = []
    for mi, msg in enumerate(traj):
        where = f"traj[{mi}]"
        if not isinstance(msg, dict):
            rec.fail(f"'{where}' must be a message object, got {type_name(msg)}")
        role = rec.require(
            msg, "role", f"{where}.role", f"one of {', '.join(ROLES)}", lambda v: v in ROLES
        )
        if role == "tool":
            rec.require(msg, "tool_call_id", f"{where}.tool_call_id", "a string", is_str)
        messages.append((role, msg, message_text(rec, msg.get("content"), f"{where}.content")))

    steps: list[dict[str, Any]] = []
    outcome: list[dict[str, Any]] = []
    consumed: set[int] = set()
    pending_user: list[str | None] = []
    n_llm = 0
    for mi, (role, msg, text) in enumerate(messages):
        if role == "user":
            pending_user.append(text)
            continue
        if role != "assistant":
            continue  # the system prompt; tool messages are consumed by their calls
        n_llm += 1
        where = f"traj[{mi}]"
        raw_calls = msg.get("tool_calls")
        if raw_calls is not None and not isinstance(raw_calls, list):
            rec.fail(f"'{where}.tool_calls' must be a list or null, got {type_name(raw_calls)}")
        calls = []
        for ci, call in enumerate(raw_calls or []):
            cwhere = f"{where}.tool_calls[{ci}]"
            if not isinstance(call, dict):
                rec.fail(f"'{cwhere}' must be an object, got {type_name(call)}")
            function = rec.require(call, "function", f"{cwhere}.function", "an object", is_dict)
            name = rec.require(
                function, "name", f"{cwhere}.function.name", "a non-empty string", is_nonempty_str
            )
            call_id = rec.optional(call, "id", f"{cwhere}.id", "a string", is_str)
            kwargs, arg_error = parse_arguments(function.get("arguments"))
            calls.append((name, call_id, kwargs, arg_error))

        if pending_user:
            user_input = canonical_json(pending_user[0] if len(pending_user) == 1 else pending_user)
        else:
            user_input = None
        pending_user = []
        if calls:
            reply = {
                "content": text,
                "tool_calls": [{"name": n, "kwargs": k} for n, _, k, _ in calls],
            }
            output = canonical_json(reply)
        else:
            output = None if text is None else canonical_json(text)
        steps.append(
            _step_row(
                run_id,
                len(steps),
                kind="llm",
                name="chat",
                tool=None,
                input=user_input,
                output=output,
            )
        )

        # this turn's results: tool messages after it, up to the next assistant message
        window = []
        for mj in range(mi + 1, len(messages)):
            if messages[mj][0] == "assistant":
                break
            if messages[mj][0] == "tool":
                window.append(mj)
        for name, call_id, kwargs, arg_error in calls:
            result_index = next(
                (
                    mj
                    for mj in window
                    if mj not in consumed and messages[mj][1]["tool_call_id"] == call_id
                ),
                None,
            )
            result = None
            if result_index is not None:
                consumed.add(result_index)
                result = messages[result_index][2]
            errors = [e for e in (arg_error, result if is_tool_error(result) else None) if e]
            steps.append(
                _step_row(
                    run_id,
                    len(steps),
                    kind="tool",
                    name=name,
                    tool=name,
                    input=canonical_json(kwargs),
                    output=None if result is None else canonical_json(result),
                    error="; ".join(errors) if errors else None,
                )
            )
            if is_state_changing(name) and not is_tool_error(result):
                outcome.append({"name": name, "kwargs": kwargs})
    return steps, outcome, n_llm


def parse_taubench(
    path: str | PathLike[str],
    *,
    agent: str | None = None,
    redact: bool | Redactor = True,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> TauBenchBatch:
    """Read and validate a tau-bench results file; return its runs and steps as rows.

    ``redact`` as in :func:`hotmess.configure`: by default secrets in the text columns (API
    keys, tokens, passwords in messages and tool calls) are replaced before anything is
    stored, as on the live path; run ids are hashes of the file's records as they are.

    ``agent`` names the agent (default: the file's stem, e.g. ``"gpt-4o-airline"``); it is part
    of each run id, so the same file imported under two agent names gives two sets of runs.

    Raises :class:`~hotmess.errors.InputError` naming the file and the record (its index, and
    its task and trial when known) for: a missing or unreadable file, bytes that are not UTF-8,
    text that is not JSON, a top level that is not a list, a record that is not an object, a
    missing or mistyped ``task_id`` / ``trial`` / ``reward`` / ``traj`` / ``info.task.actions``
    or message field, a record nested too deeply (RecursionError) or holding what cannot be
    stored (a number too large for a double, a lone UTF-16 surrogate), and two records with
    the same task and trial but different content.
    An exact repeat of an earlier record is skipped and listed in ``duplicates``.

    By default one malformed record rejects the file (a benchmark missing some trials would
    skew pass^k unnoticed). With ``skip_invalid=True`` malformed records are left out and
    their errors listed in ``skipped``; the file is still rejected when no record is valid,
    or when the file itself is not a readable JSON list.

    ``progress`` (:mod:`hotmess.progress`) is told the records checked and made into runs.
    """
    file = Path(path)
    where = str(path)
    if agent is None:
        agent = file.stem
    if not isinstance(agent, str) or not agent.strip():
        raise ValueError(f"agent must be a non-empty string, got {agent!r}")
    records = read_records(file)

    runs: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    flagged: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    skipped: list[InputError] = []
    for index, record in enumerate(counted(records, progress, "records", len(records), every=16)):
        try:
            run, run_steps = _checked_run(where, index, record, agent, seen, flagged, duplicates)
        except InputError as err:
            if not skip_invalid:
                raise
            skipped.append(err)
            continue
        if run is not None:
            runs.append(run)
            steps.extend(run_steps)
    if skipped and not runs:
        raise InputError(
            where, None,
            f"no valid record: all {len(skipped)} are malformed (first: record {skipped[0].record}: "
            f"{skipped[0].message})",
        )
    redactor = make_redactor(redact)
    if redactor is not None:
        for row in (*runs, *steps):
            for column, value in row.items():
                if isinstance(value, str) and column not in _NOT_REDACTED:
                    row[column] = redactor(value)
    return TauBenchBatch(
        path=where, agent=agent, runs=runs, steps=steps, flagged=flagged, duplicates=duplicates,
        skipped=skipped,
    )


def _checked_run(
    where: str,
    index: int,
    record: Any,
    agent: str,
    seen: dict[tuple[str, str], tuple[int, str]],
    flagged: list[dict[str, Any]],
    duplicates: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """:func:`_run`, with what Python raises on hostile data turned into an InputError."""
    rec = Record(where, index, record)
    try:
        return _run(rec, agent, seen, flagged, duplicates)
    except InputError:
        raise
    except RecursionError:
        rec.fail("nested too deeply to import")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        rec.fail(
            f"holds text that is not valid Unicode ({bad.encode('unicode_escape').decode()}, "
            "a lone UTF-16 surrogate escape); it cannot be stored"
        )
    except (ValueError, TypeError) as exc:  # canonical_json: 1e400 is inf, not JSON data
        rec.fail(f"holds a value that is not JSON data: {exc}")


def _run(
    rec: Record,
    agent: str,
    seen: dict[tuple[str, str], tuple[int, str]],
    flagged: list[dict[str, Any]],
    duplicates: list[dict[str, Any]],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """One record's run row and step rows; (None, []) for an exact repeat of an earlier record."""
    record, index = rec.record, rec.index
    task_id = rec.require(record, "task_id", "task_id", INT_OR_STR, is_id)
    trial = rec.require(record, "trial", "trial", INT_OR_STR, is_id)
    reward = rec.require(record, "reward", "reward", "a number", is_number)
    if not math.isfinite(reward):
        rec.fail(f"'reward' must be a finite number, got {reward!r}")
    traj = rec.require(record, "traj", "traj", "a list of chat messages", is_list)
    info = rec.require(record, "info", "info", "an object", is_dict)
    task = rec.require(info, "task", "info.task", "an object", is_dict)
    actions = rec.require(task, "actions", "info.task.actions", "a list of actions", is_list)
    reference = checked_actions(rec, actions, "info.task.actions")
    instruction = rec.optional(
        task, "instruction", "info.task.instruction", "a string", is_str
    )
    user_id = rec.optional(task, "user_id", "info.task.user_id", "a string", is_str)
    reward_info = rec.optional(info, "reward_info", "info.reward_info", "an object", is_dict)

    record_json = canonical_json(record)
    key = (str(task_id), str(trial))
    if key in seen:
        first_index, first_json = seen[key]
        if first_json != record_json:
            rec.fail(
                f"duplicate task {task_id} trial {trial}: records {first_index} and {index} "
                "have the same task_id and trial but different content"
            )
        duplicates.append(
            {"index": index, "first_index": first_index, "task_id": key[0], "trial": key[1]}
        )
        return None, []

    run_id = _run_id(record_json, agent)
    run_steps, outcome, n_llm = _steps(rec, run_id, traj)
    graded = reward_info is not None
    flags = [] if graded else [STEP_LIMIT_FLAG]
    if graded:
        details = reward_info.get("info")
        summary = {"reward": reward_info.get("reward")}
        if isinstance(details, dict):
            summary.update(details)
    else:
        summary = None
    attributes = {
        "hotmess.instruction": instruction,
        "hotmess.user_id": user_id,
        "tau_bench.reward_info": summary,
        "hotmess.graded": graded,
        "hotmess.flags": flags,
    }
    tool_steps = [s for s in run_steps if s["kind"] == "tool"]
    run = dict.fromkeys(RUN_COLUMNS)
    run.update(
        run_id=run_id,
        task_id=key[0],
        agent=agent,
        instance=key[1],
        source=SOURCE,
        status="ok",
        start_ns=0,
        end_ns=0,
        outcome=canonical_json(outcome),
        success=1.0 if graded and reward == 1.0 else 0.0,
        reference=canonical_json(reference),
        score=float(reward),
        error=None,
        n_steps=len(run_steps),
        n_tool_calls=len(tool_steps),
        n_llm_calls=n_llm,
        n_errors=sum(1 for s in tool_steps if s["error"] is not None),
        input_tokens=0,
        output_tokens=0,
        attributes=canonical_json(attributes),
    )
    # Only now, when nothing can fail any more: a skipped bad record leaves no trace.
    seen[key] = (index, record_json)
    if not graded:
        flagged.append(
            {
                "index": index,
                "task_id": key[0],
                "trial": key[1],
                "run_id": run_id,
                "reason": "not graded: info.reward_info is null (the run hit its step limit); "
                "imported as failed",
            }
        )
    return run, run_steps
