"""Cost of the hotmess LangChain callback handler per LangChain step, side by side in one process.

The same real ``langchain.agents.create_agent`` loop (a scripted chat model that looks an order
up, refunds it and answers; real tools), invoked RUNS times per repeat in four ways, interleaved
repeat by repeat so machine noise hits all alike:

- none:          no callbacks
- noop:          a do-nothing inline callback handler: LangChain's own callback machinery
- hotmess:       ``hotmess.langchain_handler()``, spans written to SQLite in the background
- hotmess+write: the same plus waiting for the writer to store everything (whole cost)

A run is 10 LangChain steps under its root (3 model calls, 2 tool calls, 5 graph nodes);
costs are per step: (time of the loop) / (runs x 10). Reports medians over repeats and the
ratios hotmess / none (what an agent feels) and the added cost per step in µs.

    .venv/bin/python bench/langchain_overhead.py [--repeats 9] [--runs 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

import hotmess

STEPS_PER_RUN = 10


class ScriptedChatModel(FakeMessagesListChatModel):
    responses: list[BaseMessage] = []
    model_name: str = "scripted-1"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        turn = sum(1 for m in messages if m.type == "ai")
        usage = {"input_tokens": 40 + 20 * turn, "output_tokens": 8, "total_tokens": 48 + 20 * turn}
        if turn == 0:
            calls = [{"name": "get_order", "args": {"order_id": 7}, "id": "c0"}]
        elif turn == 1:
            calls = [{"name": "refund", "args": {"order_id": 7, "amount": 70.0}, "id": "c1"}]
        else:
            return ChatResult(generations=[ChatGeneration(
                message=AIMessage(content="Refunded order 7.", usage_metadata=usage))])
        message = AIMessage(content="", tool_calls=calls, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=message)])


@tool
def get_order(order_id: int) -> dict:
    """Look an order up."""
    return {"order_id": order_id, "status": "delivered"}


@tool
def refund(order_id: int, amount: float) -> str:
    """Refund an order."""
    return f"refunded {amount:.2f} on order {order_id}"


class NoopHandler(BaseCallbackHandler):
    run_inline = True


def measure(runs: int, repeats: int) -> dict:
    agent = create_agent(ScriptedChatModel(), tools=[get_order, refund], name="refund-bot")
    request = {"messages": [("user", "refund order 7")]}
    noop = NoopHandler()

    def loop_none() -> None:
        for _ in range(runs):
            agent.invoke(request)

    def loop_noop() -> None:
        for _ in range(runs):
            agent.invoke(request, config={"callbacks": [noop]})

    def loop_hotmess() -> None:
        for i in range(runs):
            handler = hotmess.langchain_handler(task_id="refund-7", instance=i)
            agent.invoke(request, config={"callbacks": [handler]})

    loops = {"none": loop_none, "noop": loop_noop, "hotmess": loop_hotmess}
    samples: dict[str, list[float]] = {name: [] for name in [*loops, "hotmess+write"]}
    for fn in loops.values():  # warm-up
        fn()
    hotmess.flush()
    per_step = runs * STEPS_PER_RUN
    for _ in range(repeats):
        for name, fn in loops.items():
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) / per_step * 1e6)
            if name == "hotmess":
                hotmess.flush()
                start = time.perf_counter()
                fn()
                hotmess.flush()
                samples["hotmess+write"].append((time.perf_counter() - start) / per_step * 1e6)
    med = {name: statistics.median(v) for name, v in samples.items()}
    return {
        "per_step_us": med,
        "spread_us": {name: (min(v), max(v)) for name, v in samples.items()},
        "ratio_hotmess_vs_none": med["hotmess"] / med["none"],
        "ratio_hotmess_vs_noop": med["hotmess"] / med["noop"],
        "ratio_hotmess_with_write_vs_none": med["hotmess+write"] / med["none"],
        "added_us_per_step": med["hotmess"] - med["none"],
        "runs": runs,
        "steps_per_run": STEPS_PER_RUN,
        "repeats": repeats,
        "stats": vars(hotmess.stats()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        hotmess.configure(db=db)
        result = measure(args.runs, args.repeats)
        hotmess.shutdown()
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    med, spread = result["per_step_us"], result["spread_us"]
    print(f"per LangChain step, median of {args.repeats} repeats of {args.runs} agent runs x "
          f"{STEPS_PER_RUN} steps")
    for name in ("none", "noop", "hotmess", "hotmess+write"):
        lo, hi = spread[name]
        print(f"  {name:14s} {med[name]:8.1f} µs   (min {lo:.1f}, max {hi:.1f})")
    print(f"  hotmess / no callbacks: {result['ratio_hotmess_vs_none']:.2f}x "
          f"(+{result['added_us_per_step']:.1f} µs per step)")
    print(f"  hotmess / a do-nothing handler: {result['ratio_hotmess_vs_noop']:.2f}x")
    print(f"  hotmess including the background SQLite write / no callbacks: "
          f"{result['ratio_hotmess_with_write_vs_none']:.2f}x")
    s = result["stats"]
    print(f"  spans written {s['written']}, dropped {s['dropped']}, failed {s['failed']}")


if __name__ == "__main__":
    main()
