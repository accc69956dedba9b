"""The demo: a small tool-using support agent with a seeded stochastic policy, in three parts.

**Live, two variants.** Both solve each task equally often (each task's successes are drawn
without replacement: exactly its success rate in every batch of runs, for both variants). They
differ only in *how* they fail:

- ``support-bot-coherent`` fails the same way every time: on each task it has one favourite
  wrong move (the same wrong tool call with the same arguments, the same answer), however long
  the task.
- ``support-bot-incoherent`` loses the thread at one of the task's lookups (a call that finds
  nothing) and guesses every fact from there on ("latest" or "default"); its guesses decide
  which wrong tool it calls and with what. A task with one lookup leaves two ways to be wrong, a
  task with six over a hundred: the longer the task, the larger the variance share of its error,
  as the paper behind hotmess found.

Tasks need one to six lookups (harder tasks gather more facts), and any lookup may time out and
be retried, so runs differ in length within a task too. Each run is traced by the real
``@hotmess.trace`` decorator, so the demo database is exactly what a user's own agent would
produce.

**Production, four weeks.** ``support-bot-prod`` answers customers' requests of the same eight
kinds over the four full weeks (UTC, ``1w`` windows) before the current one. At the start of week
3 its prompt is updated ("resolve it yourself, don't hand over to a human"): on the order
requests (refund, exchange, warranty) it now fails a new way, issuing a coupon, where it used to
escalate. Those runs are written as the OpenTelemetry Collector's file exporter writes traces
(OTLP JSON lines, ``gen_ai.*`` and ``hotmess.*`` span attributes, real timestamps) and imported
by the same code as ``hotmess import otlp``, so ``hotmess drift`` has a change to find.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hotmess

AGENTS = ("support-bot-coherent", "support-bot-incoherent")
PROD_AGENT = "support-bot-prod"


@dataclass(frozen=True)
class Task:
    id: str
    instruction: str
    lookups: tuple[tuple[str, dict[str, Any]], ...]  # read-only calls that gather the facts, in order
    solution: tuple[str, dict[str, Any]]  # the state-changing call that solves it
    answer: str
    success_rate: float  # how often the policy takes the right path
    wrong: tuple[str, str] = ("escalate_to_human", "close_ticket")  # the incoherent agent's guesses lead here

    @property
    def kind(self) -> str:
        """The kind of request (``refund-1042`` → ``refund``): the production agent's task id."""
        return self.id.rsplit("-", 1)[0]


TASKS = (
    Task("refund-1042", "Refund order 1042, it arrived broken.",
         (("get_order", {"order_id": 1042}), ("get_payment", {"order_id": 1042}),
          ("get_return_policy", {"category": "electronics"})),
         ("refund_order", {"order_id": 1042, "amount": 59.9}), "Refunded 59.90 for order 1042.", 0.3,
         ("issue_coupon", "cancel_order")),
    Task("address-77", "Change the address of customer 77 to 5 Elm St.",
         (("get_customer", {"customer_id": 77}), ("validate_address", {"address": "5 Elm St"})),
         ("update_address", {"customer_id": 77, "address": "5 Elm St"}), "Address updated.", 0.35,
         ("close_ticket", "escalate_to_human")),
    Task("cancel-sub-9", "Cancel subscription 9 at the end of the period.",
         (("get_subscription", {"subscription_id": 9}), ("get_customer", {"customer_id": 31}),
          ("get_contract", {"subscription_id": 9}), ("get_billing_schedule", {"subscription_id": 9})),
         ("cancel_subscription", {"subscription_id": 9, "when": "period_end"}),
         "Subscription 9 will end with the period.", 0.3, ("pause_subscription", "change_plan")),
    Task("exchange-311", "Exchange the shoes in order 311 for size 42.",
         (("get_order", {"order_id": 311}), ("get_product", {"sku": "shoes-311"}),
          ("check_stock", {"sku": "shoes-311", "size": 42}), ("get_return_policy", {"category": "shoes"}),
          ("get_shipping_rates", {"order_id": 311})),
         ("exchange_item", {"order_id": 311, "item": "shoes", "size": 42}), "Exchange for size 42 started.", 0.3,
         ("refund_order", "issue_coupon")),
    Task("upgrade-5", "Upgrade account 5 to the business plan.", (("get_customer", {"customer_id": 5}),),
         ("change_plan", {"customer_id": 5, "plan": "business"}), "Account 5 is on the business plan.", 0.4,
         ("issue_coupon", "escalate_to_human")),
    Task("invoice-88", "Resend invoice 88 to the billing email.", (("get_invoice", {"invoice_id": 88}),),
         ("send_invoice", {"invoice_id": 88, "to": "billing"}), "Invoice 88 sent to billing.", 0.25,
         ("close_ticket", "refund_order")),
    Task("pause-14", "Pause subscription 14 for two months.",
         (("get_subscription", {"subscription_id": 14}), ("get_customer", {"customer_id": 52}),
          ("get_billing_schedule", {"subscription_id": 14})),
         ("pause_subscription", {"subscription_id": 14, "months": 2}), "Subscription 14 paused for 2 months.", 0.3,
         ("cancel_subscription", "escalate_to_human")),
    Task("warranty-620", "File a warranty claim for order 620.",
         (("get_order", {"order_id": 620}), ("get_product", {"sku": "kettle-620"}),
          ("get_warranty", {"sku": "kettle-620"}), ("get_purchase_proof", {"order_id": 620}),
          ("get_repair_history", {"order_id": 620}), ("check_claims", {"order_id": 620})),
         ("file_claim", {"order_id": 620, "type": "warranty"}), "Warranty claim filed for order 620.", 0.35,
         ("refund_order", "escalate_to_human")),
)

_WRONG_TOOLS = (
    "refund_order", "cancel_order", "update_address", "cancel_subscription", "exchange_item",
    "change_plan", "send_invoice", "pause_subscription", "file_claim", "escalate_to_human",
    "issue_coupon", "close_ticket",
)
#: Chance that a lookup times out and is retried (both variants, success or not).
RETRY_RATE = 0.25
#: What the incoherent agent assumes for a fact it could not read.
_GUESSES = ("latest", "default")


def _fact(tool: str) -> str:
    return tool.split("_", 1)[1] if "_" in tool else tool


def _coherent_failure(task: Task, rng: random.Random, lost_at: int) -> tuple[str, dict[str, Any], str]:
    """The one wrong move this agent always makes on this task (it reads every fact right)."""
    tool = _WRONG_TOOLS[sum(map(ord, task.id)) % len(_WRONG_TOOLS)]
    if tool == task.solution[0]:
        tool = "escalate_to_human"
    return tool, {"ref": task.id}, f"I used {tool} for you."


def _incoherent_failure(task: Task, rng: random.Random, lost_at: int) -> tuple[str, dict[str, Any], str]:
    """A guess for every fact from the lookup where it lost the thread; the first guess picks the tool."""
    assumed = {_fact(tool): rng.choice(_GUESSES) for tool, _ in task.lookups[lost_at:]}
    tool = task.wrong[_GUESSES.index(next(iter(assumed.values())))]
    return tool, {"ref": task.id, "assumed": assumed}, f"I used {tool} for you."


_FAILURES = {"support-bot-coherent": _coherent_failure, "support-bot-incoherent": _incoherent_failure}
_LOSES_THE_THREAD = {"support-bot-coherent": False, "support-bot-incoherent": True}


def _lookup_result(tool: str) -> dict[str, Any]:
    return {"found": _fact(tool)}


def make_agent(agent: str) -> Callable[[Task, int, bool, random.Random], str]:
    """The demo agent ``agent``: ``run(task, trial, right, rng)`` makes one traced run of the
    task. The traced function sees what a real agent would, the request and the trial; the
    simulation's knobs (whether this trial goes right, its random draws, the task's scripted
    failures) stay outside it, so they are not recorded as the run's input."""
    fail = _FAILURES[agent]
    loses_thread = _LOSES_THE_THREAD[agent]
    script: dict[str, Any] = {}

    @hotmess.trace(task_id=lambda request, trial: request["id"],
                   instance=lambda request, trial: trial, agent=agent)
    def support_agent(request: dict[str, str], trial: int) -> str:
        """One run of the support agent on a customer request."""
        task, right, rng = script["task"], script["right"], script["rng"]
        hotmess.goal(f"understand: {request['instruction']}")
        with hotmess.step("read the request", kind="llm") as s:
            s.output = {"intent": task.solution[0]}
        lost_at = len(task.lookups) if right or not loses_thread else rng.randrange(len(task.lookups))
        for i, (tool, args) in enumerate(task.lookups):
            if rng.random() < RETRY_RATE:
                hotmess.action(tool, args, error="timeout")
            if i < lost_at:
                hotmess.action(tool, args, _lookup_result(tool))
            else:  # it asks for the wrong record and finds nothing
                hotmess.action(tool, {**args, "ref": task.id}, error="not found")
        if right:
            tool, args = task.solution
            answer = task.answer
        else:
            tool, args, answer = fail(task, rng, lost_at)
        hotmess.goal(f"act: {tool}")
        with hotmess.step("decide", kind="llm") as s:
            s.output = {"tool": tool, "args": args}
        hotmess.action(tool, args, {"ok": True})
        result = {"action": [tool, args], "answer": answer}
        expected = {"action": list(task.solution), "answer": task.answer}
        hotmess.outcome(result, success=result == expected, reference=expected)
        return answer

    def run(task: Task, trial: int, right: bool, rng: random.Random) -> str:
        script.update(task=task, right=right, rng=rng)
        return support_agent({"id": task.id, "instruction": task.instruction}, trial)

    return run


def _right_trials(task: Task, runs: int, rng: random.Random) -> set[int]:
    """Which trials take the right path: round(success_rate · runs) of them, drawn at random."""
    return set(rng.sample(range(runs), round(task.success_rate * runs)))


def run_demo(runs_per_task: int = 20, seed: int = 7, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run both variants on every task ``runs_per_task`` times; returns successes per variant and task."""
    rng = random.Random(seed)
    summary: dict[str, Any] = {}
    for name in AGENTS:
        agent = make_agent(name)
        summary[name] = {}
        for task in TASKS:
            right = _right_trials(task, runs_per_task, rng)
            wins = 0
            for trial in range(runs_per_task):
                answer = agent(task, trial, trial in right, rng)
                wins += answer == task.answer
                if progress:
                    progress(1)
            summary[name][task.id] = {"runs": runs_per_task, "successes": wins, "lookups": len(task.lookups)}
    hotmess.flush()
    return summary


# ---------------------------------------------------------------------------- production

WEEK_NS = 7 * 86_400 * 10**9
#: Production runs per week, spread over the week.
PROD_RUNS_PER_WEEK = 120
PROD_WEEKS = 4
#: The prompt update: from the start of this week (0-based), v2.
PROD_CHANGE_WEEK = 2
#: The request kinds whose failures change with the update (escalate → issue a coupon).
PROD_CHANGED = ("refund", "exchange", "warranty")
_PROD_RESOURCE = {"service.name": "support-api", "service.version": "2.3.0",
                  "deployment.environment": "production"}


def prod_weeks(now_ns: int) -> tuple[int, int]:
    """(start, change) in ns: the four full ``1w`` windows before ``now_ns``'s, the update at week 3."""
    start = (now_ns // WEEK_NS - PROD_WEEKS) * WEEK_NS
    return start, start + PROD_CHANGE_WEEK * WEEK_NS


def _prod_policy(task: Task, prompt: str, rng: random.Random) -> tuple[str, bool]:
    """(tool, success) of one production run: right half the time, else the prompt's usual failure
    (v1: hand over to a human; v2, on the changed kinds: a coupon instead of a fix)."""
    changed = prompt == "v2" and task.kind in PROD_CHANGED
    if rng.random() < (0.4 if changed else 0.5):
        return task.solution[0], True
    if changed:
        return ("issue_coupon" if rng.random() < 0.85 else "escalate_to_human"), False
    return ("escalate_to_human" if rng.random() < 0.9 else "close_ticket"), False


def _otlp_value(value: Any) -> dict[str, Any]:
    """One OTLP/JSON ``AnyValue`` (64-bit integers as strings, as the encoding says)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_otlp_value(v) for v in value]}}
    if isinstance(value, str):
        return {"stringValue": value}
    return {"stringValue": json.dumps(value, sort_keys=True)}


def otlp_span(trace_id: str, span_id: str, parent: str | None, name: str, start_ns: int, end_ns: int,
              attributes: dict[str, Any], kind: int = 1, error: str | None = None) -> dict[str, Any]:
    """One span in OTLP/JSON (hex ids, nanosecond times as strings, kind 1 internal / 3 client)."""
    span: dict[str, Any] = {
        "traceId": trace_id, "spanId": span_id, "name": name, "kind": kind,
        "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns),
        "attributes": [{"key": k, "value": _otlp_value(v)} for k, v in attributes.items()],
        "status": {"code": 2, "message": error} if error else {},
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def otlp_line(spans: list[dict[str, Any]], resource: dict[str, Any], scope: str) -> str:
    """One ``ExportTraceServiceRequest`` as the Collector's file exporter writes it: a JSON line."""
    request = {"resourceSpans": [{
        "resource": {"attributes": [{"key": k, "value": _otlp_value(v)} for k, v in resource.items()]},
        "scopeSpans": [{"scope": {"name": scope}, "spans": spans}],
    }]}
    return json.dumps(request, separators=(",", ":"))


def _prod_run(task: Task, at_ns: int, prompt: str, conversation: int, rng: random.Random) -> list[dict[str, Any]]:
    """The spans of one production run, GenAI conventions plus hotmess's task and outcome."""
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = iter(f"{rng.getrandbits(64):016x}" for _ in range(64))
    root = next(ids)
    ids_of_record = {k: rng.randint(100, 99_999) if isinstance(v, int) else v
                     for _, args in task.lookups for k, v in args.items()}
    tool, success = _prod_policy(task, prompt, rng)
    spans, t = [], at_ns + 5_000_000
    model = {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai"}

    def chat(attrs: dict[str, Any]) -> None:
        nonlocal t
        took = rng.randint(400, 1500) * 1_000_000
        spans.append(otlp_span(trace_id, next(ids), root, f"chat {model['gen_ai.request.model']}", t, t + took, {
            "gen_ai.operation.name": "chat", **model, "gen_ai.usage.input_tokens": rng.randint(300, 900),
            "gen_ai.usage.output_tokens": rng.randint(20, 120), **attrs}, kind=3))
        t += took + 2_000_000

    def call(name: str, args: dict[str, Any], result: Any, error: str | None = None) -> None:
        nonlocal t
        took = rng.randint(30, 400) * 1_000_000
        attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                 "gen_ai.tool.call.arguments": json.dumps(args, sort_keys=True)}
        if result is not None:
            attrs["gen_ai.tool.call.result"] = json.dumps(result, sort_keys=True)
        spans.append(otlp_span(trace_id, next(ids), root, f"execute_tool {name}", t, t + took, attrs, error=error))
        t += took + 1_000_000

    request = [{"role": "user", "parts": [{"type": "text", "content": task.instruction}]}]
    chat({"gen_ai.input.messages": json.dumps(request)})
    for name, args in task.lookups:
        args = {k: ids_of_record.get(k, v) for k, v in args.items()}
        if rng.random() < RETRY_RATE:
            call(name, args, None, error="timeout")
        call(name, args, _lookup_result(name))
    chat({})
    call(tool, {k: ids_of_record.get(k, v) for k, v in task.solution[1].items()} if success else {"ref": task.kind},
         {"ok": True})
    outcome = {"action": tool}
    spans.insert(0, otlp_span(trace_id, root, None, "invoke_agent support-bot", at_ns, t + 3_000_000, {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": PROD_AGENT,
        "gen_ai.conversation.id": f"conv-{conversation}", "hotmess.task.id": task.kind,
        "hotmess.outcome": json.dumps(outcome), "hotmess.success": success,
        "hotmess.reference": json.dumps({"action": task.solution[0]}), "app.prompt.version": prompt,
    }))
    return spans


def write_production_log(path: str | Path, now_ns: int, seed: int = 7) -> dict[str, Any]:
    """Write the production agent's four weeks as OTLP JSON lines (one trace per line, in time order)."""
    rng = random.Random(seed + 1)
    start, change = prod_weeks(now_ns)
    times = sorted(rng.randrange(start, start + PROD_WEEKS * WEEK_NS) for _ in range(PROD_WEEKS * PROD_RUNS_PER_WEEK))
    with open(path, "w", encoding="utf-8") as f:
        for n, at in enumerate(times):
            task = rng.choice(TASKS)
            spans = _prod_run(task, at, "v2" if at >= change else "v1", 10_000 + n, rng)
            f.write(otlp_line(spans, _PROD_RESOURCE, "support.agent") + "\n")
    return {"path": str(path), "runs": len(times), "start_ns": start, "change_ns": change,
            "end_ns": start + PROD_WEEKS * WEEK_NS}


def import_production_log(path: str | Path, db: str | Path) -> Any:
    """Import the file exactly as ``hotmess import otlp FILE --db DB`` does."""
    from hotmess.integrations.otlp_json import insert_otlp, parse_otlp_json
    from hotmess.store.database import connect

    batch = parse_otlp_json(path)
    conn = connect(db)
    try:
        return insert_otlp(conn, batch)
    finally:
        conn.close()
