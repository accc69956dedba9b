"""The demo: a small tool-using support agent with a seeded stochastic policy, in two variants.

Both variants solve each task equally often. They differ only in *how* they fail:

- ``support-bot-coherent`` fails the same way every time: on each task it has one favourite
  wrong move (the same wrong tool call with the same arguments, the same answer).
- ``support-bot-incoherent`` fails a different way each time: a random wrong tool, wrong
  arguments, a different answer.

Each run is traced by the real ``@hotmess.trace`` decorator, so the demo database is exactly
what a user's own agent would produce.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hotmess

AGENTS = ("support-bot-coherent", "support-bot-incoherent")


@dataclass(frozen=True)
class Task:
    id: str
    instruction: str
    lookup: tuple[str, dict[str, Any]]  # read-only tool call that gathers facts
    solution: tuple[str, dict[str, Any]]  # the state-changing call that solves it
    answer: str
    success_rate: float  # how often the policy takes the right path


TASKS = (
    Task("refund-1042", "Refund order 1042, it arrived broken.", ("get_order", {"order_id": 1042}),
         ("refund_order", {"order_id": 1042, "amount": 59.9}), "Refunded 59.90 for order 1042.", 0.3),
    Task("address-77", "Change the address of customer 77 to 5 Elm St.", ("get_customer", {"customer_id": 77}),
         ("update_address", {"customer_id": 77, "address": "5 Elm St"}), "Address updated.", 0.35),
    Task("cancel-sub-9", "Cancel subscription 9 at the end of the period.", ("get_subscription", {"subscription_id": 9}),
         ("cancel_subscription", {"subscription_id": 9, "when": "period_end"}), "Subscription 9 will end with the period.", 0.25),
    Task("exchange-311", "Exchange the shoes in order 311 for size 42.", ("get_order", {"order_id": 311}),
         ("exchange_item", {"order_id": 311, "item": "shoes", "size": 42}), "Exchange for size 42 started.", 0.3),
    Task("upgrade-5", "Upgrade account 5 to the business plan.", ("get_customer", {"customer_id": 5}),
         ("change_plan", {"customer_id": 5, "plan": "business"}), "Account 5 is on the business plan.", 0.4),
    Task("invoice-88", "Resend invoice 88 to the billing email.", ("get_invoice", {"invoice_id": 88}),
         ("send_invoice", {"invoice_id": 88, "to": "billing"}), "Invoice 88 sent to billing.", 0.3),
    Task("pause-14", "Pause subscription 14 for two months.", ("get_subscription", {"subscription_id": 14}),
         ("pause_subscription", {"subscription_id": 14, "months": 2}), "Subscription 14 paused for 2 months.", 0.25),
    Task("warranty-620", "File a warranty claim for order 620.", ("get_order", {"order_id": 620}),
         ("file_claim", {"order_id": 620, "type": "warranty"}), "Warranty claim filed for order 620.", 0.35),
)

_WRONG_TOOLS = (
    "refund_order", "cancel_order", "update_address", "cancel_subscription", "exchange_item",
    "change_plan", "send_invoice", "pause_subscription", "file_claim", "escalate_to_human",
    "issue_coupon", "close_ticket",
)


def _coherent_failure(task: Task, rng: random.Random) -> tuple[str, dict[str, Any], str]:
    """The one wrong move this agent always makes on this task."""
    tool = _WRONG_TOOLS[sum(map(ord, task.id)) % len(_WRONG_TOOLS)]
    if tool == task.solution[0]:
        tool = "escalate_to_human"
    return tool, {"ref": task.id}, f"I used {tool} for you."


def _incoherent_failure(task: Task, rng: random.Random) -> tuple[str, dict[str, Any], str]:
    """A new wrong move each time: tool, arguments and answer all drawn at random."""
    tool = rng.choice([t for t in _WRONG_TOOLS if t != task.solution[0]])
    args = {"ref": task.id, "guess": rng.randint(1, 10_000)}
    answer = rng.choice(("Done!", "All set.", "I think that is fixed.", "Handled.", "Completed.")) + f" (#{args['guess']})"
    return tool, args, answer


_TOOLS_RESULTS = {"get_order": {"status": "delivered"}, "get_customer": {"tier": "pro"},
                  "get_subscription": {"state": "active"}, "get_invoice": {"paid": True}}


def make_agent(agent: str, fail: Callable[[Task, random.Random], tuple[str, dict[str, Any], str]]) -> Callable:
    @hotmess.trace(task_id=lambda task, rng, trial: task.id, instance=lambda task, rng, trial: trial, agent=agent)
    def support_agent(task: Task, rng: random.Random, trial: int) -> str:
        hotmess.goal(f"understand: {task.instruction}")
        with hotmess.step("read the request", kind="llm") as s:
            s.output = {"intent": task.solution[0]}
        tool, args = task.lookup
        hotmess.action(tool, args, _TOOLS_RESULTS.get(tool, {}))
        # The policy: right path with the task's success rate, else this agent's kind of failure.
        if rng.random() < task.success_rate:
            tool, args = task.solution
            answer = task.answer
        else:
            tool, args, answer = fail(task, rng)
        hotmess.goal(f"act: {tool}")
        with hotmess.step("decide", kind="llm") as s:
            s.output = {"tool": tool, "args": args}
        hotmess.action(tool, args, {"ok": True})
        result = {"action": [tool, args], "answer": answer}
        expected = {"action": list(task.solution), "answer": task.answer}
        hotmess.outcome(result, success=result == expected, reference=expected)
        return answer

    return support_agent


def run_demo(runs_per_task: int = 20, seed: int = 7, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run both variants on every task ``runs_per_task`` times; returns successes per variant and task."""
    rng = random.Random(seed)
    agents = {
        "support-bot-coherent": make_agent("support-bot-coherent", _coherent_failure),
        "support-bot-incoherent": make_agent("support-bot-incoherent", _incoherent_failure),
    }
    summary: dict[str, Any] = {name: {} for name in agents}
    for name, agent in agents.items():
        for task in TASKS:
            wins = 0
            for trial in range(runs_per_task):
                answer = agent(task, rng, trial)
                wins += answer == task.answer
                if progress:
                    progress(1)
            summary[name][task.id] = {"runs": runs_per_task, "successes": wins}
    hotmess.flush()
    return summary
