"""@hotmess.trace, the recorders and configure(), end to end: real OpenTelemetry SDK,
real SQLite files, values read back from the database."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from conftest import read_back, root_span, run_records, spans_rows, steps_of
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import hotmess
from hotmess.tracer.config import _State
from hotmess.vocab import attributes as A
from hotmess.vocab.serialize import TRUNCATION_MARK

TRUNCATION_PREFIX = TRUNCATION_MARK.split("{")[0]


def only_run(path: Path) -> tuple[dict, list[dict]]:
    runs, steps = run_records(path)
    assert len(runs) == 1, runs
    return runs[0], steps_of(steps, runs[0]["run_id"])


def run_attributes(run: dict) -> dict:
    return json.loads(run["attributes"]) if run["attributes"] else {}


# --- 1. one call, one run: sync, async, generators ------------------------------------------


def test_sync_agent_each_call_is_one_run(db):
    @hotmess.trace(task_id="t-sync", agent="refund-bot", instance=lambda q, trial: trial)
    def agent(q, trial):
        with hotmess.step("think"):
            pass
        return {"answer": q.upper(), "trial": trial}

    assert agent("hi", 0) == {"answer": "HI", "trial": 0}
    assert agent("yo", 1) == {"answer": "YO", "trial": 1}

    runs, steps = run_records(db)
    assert len(runs) == 2
    runs.sort(key=lambda r: r["instance"])
    assert [r["task_id"] for r in runs] == ["t-sync", "t-sync"]
    assert [r["agent"] for r in runs] == ["refund-bot", "refund-bot"]
    assert [r["instance"] for r in runs] == ["0", "1"]
    assert [r["status"] for r in runs] == ["ok", "ok"]
    assert [json.loads(r["outcome"]) for r in runs] == [
        {"answer": "HI", "trial": 0},
        {"answer": "YO", "trial": 1},
    ]
    assert runs[0]["run_id"] != runs[1]["run_id"]
    assert all(r["success"] is None and r["error"] is None for r in runs)
    assert all(r["end_ns"] >= r["start_ns"] > 0 for r in runs)
    assert [r["n_steps"] for r in runs] == [1, 1]
    # the call's arguments are the run's input
    assert json.loads(root_span(db, runs[0]["run_id"])["attributes"][A.INPUT]) == {"q": "hi", "trial": 0}
    assert sorted(s["run_id"] for s in steps) == sorted(r["run_id"] for r in runs)


def test_async_agent_each_call_is_one_run(db):
    @hotmess.trace(task_id="t-async", agent="async-bot")
    async def agent(n):
        async with hotmess.step("fetch", input={"n": n}):
            await asyncio.sleep(0)
        return n * 10

    async def main():
        return [await agent(1), await agent(2)]

    assert asyncio.run(main()) == [10, 20]
    runs, steps = run_records(db)
    assert sorted(json.loads(r["outcome"]) for r in runs) == [10, 20]
    assert {(r["task_id"], r["agent"], r["status"]) for r in runs} == {("t-async", "async-bot", "ok")}
    assert sorted(json.loads(s["input"])["n"] for s in steps) == [1, 2]


def test_explicit_outcome_replaces_return_value(db):
    @hotmess.trace(task_id="t")
    def agent():
        hotmess.outcome({"booked": "UA 12"}, success=True, reference={"booked": "UA 12"})
        return "the return value is not the outcome"

    assert agent() == "the return value is not the outcome"
    run, _ = only_run(db)
    assert json.loads(run["outcome"]) == {"booked": "UA 12"}
    assert run["success"] == 1.0
    assert json.loads(run["reference"]) == {"booked": "UA 12"}


def test_generator_of_text_outcome_is_the_concatenated_text(db):
    @hotmess.trace(task_id="stream")
    def agent(words):
        for w in words:
            with hotmess.step("token", input=w):
                pass
            yield w

    assert list(agent(["Hello", ", ", "world"])) == ["Hello", ", ", "world"]
    run, steps = only_run(db)
    assert run["status"] == "ok"
    assert json.loads(run["outcome"]) == "Hello, world"
    assert [json.loads(s["input"]) for s in steps] == ["Hello", ", ", "world"]
    assert A.CLOSED_EARLY not in run_attributes(run)


def test_generator_of_objects_outcome_is_the_list(db):
    @hotmess.trace(task_id="stream")
    def agent():
        yield {"a": 1}
        yield 2
        yield "three"

    assert list(agent()) == [{"a": 1}, 2, "three"]
    run, _ = only_run(db)
    assert json.loads(run["outcome"]) == [{"a": 1}, 2, "three"]


def test_generator_return_value_and_send_pass_through(db):
    @hotmess.trace(task_id="stream")
    def agent():
        got = yield "first"
        yield f"got {got}"
        return {"final": got}

    gen = agent()
    assert next(gen) == "first"
    assert gen.send("x") == "got x"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == {"final": "x"}
    run, _ = only_run(db)
    assert json.loads(run["outcome"]) == {"final": "x"}


def test_async_generator_outcome(db):
    @hotmess.trace(task_id="astream")
    async def text(n):
        for i in range(n):
            async with hotmess.step("chunk", input={"i": i}):
                await asyncio.sleep(0)
            yield f"<{i}>"

    @hotmess.trace(task_id="aitems")
    async def items():
        yield 1
        yield [2]

    async def main():
        return [x async for x in text(3)], [x async for x in items()]

    assert asyncio.run(main()) == (["<0>", "<1>", "<2>"], [1, [2]])
    runs, steps = run_records(db)
    by_task = {r["task_id"]: r for r in runs}
    assert json.loads(by_task["astream"]["outcome"]) == "<0><1><2>"
    assert json.loads(by_task["aitems"]["outcome"]) == [1, [2]]
    assert [json.loads(s["input"])["i"] for s in steps_of(steps, by_task["astream"]["run_id"])] == [0, 1, 2]
    assert {r["status"] for r in runs} == {"ok"}


def test_generator_closed_early_is_marked_and_stored(db):
    cleaned = []

    @hotmess.trace(task_id="early")
    def agent():
        try:
            for i in range(100):
                with hotmess.step("emit", input={"i": i}):
                    pass
                yield i
        finally:
            cleaned.append(True)

    gen = agent()
    assert [next(gen), next(gen), next(gen)] == [0, 1, 2]
    gen.close()
    assert cleaned == [True]

    run, steps = only_run(db)
    assert run["status"] == "ok"
    assert run_attributes(run)[A.CLOSED_EARLY] is True
    assert json.loads(run["outcome"]) == [0, 1, 2]
    assert len(steps) == 3


def test_generator_abandoned_by_a_for_loop_is_marked(db):
    @hotmess.trace(task_id="early")
    def agent():
        yield from "abcdef"

    for ch in agent():
        if ch == "b":
            break  # the generator is dropped here and closed by CPython's refcounting

    run, _ = only_run(db)
    assert run_attributes(run)[A.CLOSED_EARLY] is True
    assert json.loads(run["outcome"]) == "ab"


def test_async_generator_closed_early_is_marked_and_stored(db):
    @hotmess.trace(task_id="aearly")
    async def agent():
        for i in range(100):
            yield f"t{i} "

    async def main():
        async with contextlib.aclosing(agent()) as stream:
            async for tok in stream:
                if tok == "t1 ":
                    break

    asyncio.run(main())
    run, _ = only_run(db)
    assert run_attributes(run)[A.CLOSED_EARLY] is True
    assert json.loads(run["outcome"]) == "t0 t1 "
    assert run["status"] == "ok"


def test_exception_thrown_into_generator_is_passed_on_and_recorded(db):
    seen = []

    @hotmess.trace(task_id="throw")
    def handled():
        for i in range(5):
            try:
                yield i
            except KeyError as exc:
                seen.append(exc)

    gen = handled()
    assert next(gen) == 0
    assert gen.throw(KeyError("k")) == 1  # the agent caught it and went on
    gen.close()  # and the consumer then stops early, right after

    err = LookupError("stop")

    @hotmess.trace(task_id="throw-unhandled")
    def unhandled():
        yield 1
        yield 2

    gen2 = unhandled()
    next(gen2)
    with pytest.raises(LookupError) as raised:
        gen2.throw(err)
    assert raised.value is err

    runs, _ = run_records(db)
    by_task = {r["task_id"]: r for r in runs}
    assert len(seen) == 1
    # both runs end: neither is left 'incomplete'
    assert by_task["throw"]["status"] == "ok"
    assert run_attributes(by_task["throw"])[A.CLOSED_EARLY] is True
    assert json.loads(by_task["throw"]["outcome"]) == [0, 1]
    assert by_task["throw-unhandled"]["status"] == "error"
    assert by_task["throw-unhandled"]["error"] == "LookupError: stop"


def test_exception_thrown_into_async_generator_is_passed_on_and_recorded(db):
    @hotmess.trace(task_id="athrow")
    async def agent():
        for i in range(5):
            try:
                yield i
            except KeyError:
                yield "recovered"

    async def main():
        agen = agent()
        first = await agen.__anext__()
        recovered = await agen.athrow(KeyError("k"))
        await agen.aclose()
        return first, recovered

    assert asyncio.run(main()) == (0, "recovered")
    run, _ = only_run(db)
    assert run["status"] == "ok"
    assert json.loads(run["outcome"]) == [0, "recovered"]
    assert run_attributes(run)[A.CLOSED_EARLY] is True


# --- task ids ---------------------------------------------------------------------------------


def test_task_id_literal_callable_and_argument(db):
    @hotmess.trace(task_id="literal-task")
    def literal(x):
        return x

    @hotmess.trace(task_id=lambda req, *, retries=0: f"{req['id']}-{retries}")
    def from_callable(req, *, retries=0):
        return req

    @hotmess.trace
    def from_argument(question, task_id, instance=None):
        return question

    @hotmess.trace
    def from_default(task_id="default-task"):
        return task_id

    literal(1)
    from_callable({"id": "req-7"}, retries=2)
    from_argument("q1", "arg-task", instance=3)
    from_argument("q2", task_id="kw-task")
    from_default()

    runs, _ = run_records(db)
    got = sorted((r["task_id"], r["agent"], r["instance"]) for r in runs)
    assert got == [
        ("arg-task", "from_argument", "3"),
        ("default-task", "from_default", None),
        ("kw-task", "from_argument", None),
        ("literal-task", "literal", None),
        ("req-7-2", "from_callable", None),
    ]


def test_decorating_without_any_task_id_raises_type_error_at_decoration():
    def agent(question):
        return question

    with pytest.raises(TypeError, match="task_id"):
        hotmess.trace(agent)
    with pytest.raises(TypeError, match="task_id"):
        hotmess.trace(agent=("named"))(agent)


# --- 2. nesting -----------------------------------------------------------------------------------


def test_nested_traced_function_is_an_agent_step_not_a_run(db):
    @hotmess.trace(task_id="sub-task", agent="helper")
    def helper(x):
        with hotmess.step("inner-a"):
            pass
        hotmess.action("calc", args={"x": x}, result=x * 2)
        return x * 2

    @hotmess.trace(task_id="main-task", agent="planner")
    def planner():
        with hotmess.step("first"):
            pass
        y = helper(21)
        with hotmess.step("last"):
            pass
        return y

    assert planner() == 42
    run, steps = only_run(db)
    assert (run["task_id"], run["agent"]) == ("main-task", "planner")
    assert [(s["name"], s["kind"], s["depth"], s["step_index"]) for s in steps] == [
        ("first", "step", 1, 0),
        ("invoke_agent helper", "agent", 1, 1),
        ("inner-a", "step", 2, 2),
        ("execute_tool calc", "tool", 2, 3),
        ("last", "step", 1, 4),
    ]
    root = root_span(db, run["run_id"])
    sub = steps[1]
    assert steps[0]["parent_span_id"] == root["span_id"]
    assert sub["parent_span_id"] == root["span_id"]
    assert steps[2]["parent_span_id"] == sub["span_id"]
    assert steps[3]["parent_span_id"] == sub["span_id"]
    assert json.loads(sub["input"]) == {"x": 21}
    assert json.loads(sub["output"]) == 42
    assert json.loads(run["outcome"]) == 42
    # the sub-agent's spans are in the run's trace, and there is no second run
    assert {s["trace_id"] for s in spans_rows(db)} == {run["run_id"]}
    assert run["n_steps"] == 4 and run["n_tool_calls"] == 1  # the sub-agent is a wrapper: its steps count, it does not


# --- 3. exceptions -----------------------------------------------------------------------------


def test_exception_is_reraised_identically_and_recorded(db):
    boom = ValueError("boom")

    @hotmess.trace(task_id="fails")
    def agent():
        with hotmess.step("before"):
            pass
        raise boom

    with pytest.raises(ValueError) as raised:
        agent()
    assert raised.value is boom

    run, steps = only_run(db)
    assert run["status"] == "error"
    assert run["success"] == 0.0
    assert run["error"] == "ValueError: boom"
    assert run["outcome"] is None
    assert [s["name"] for s in steps] == ["before"]


def test_exception_in_async_and_generator_agents_is_reraised_identically(db):
    boom = ValueError("boom")

    @hotmess.trace(task_id="async-fails")
    async def async_agent():
        await asyncio.sleep(0)
        raise boom

    @hotmess.trace(task_id="gen-fails")
    def gen_agent():
        yield 1
        raise boom

    with pytest.raises(ValueError) as r1:
        asyncio.run(async_agent())
    with pytest.raises(ValueError) as r2:
        list(gen_agent())
    assert r1.value is boom and r2.value is boom
    runs, _ = run_records(db)
    assert sorted((r["task_id"], r["status"], r["success"], r["error"]) for r in runs) == [
        ("async-fails", "error", 0.0, "ValueError: boom"),
        ("gen-fails", "error", 0.0, "ValueError: boom"),
    ]


def test_explicit_success_is_kept_when_the_agent_then_raises(db):
    @hotmess.trace(task_id="t")
    def agent():
        hotmess.outcome("done", success=True)
        raise RuntimeError("cleanup failed")

    with pytest.raises(RuntimeError):
        agent()
    run, _ = only_run(db)
    assert (run["status"], run["success"], run["error"]) == ("error", 1.0, "RuntimeError: cleanup failed")


def test_failing_step_is_recorded_and_the_run_continues(db):
    @hotmess.trace(task_id="recover")
    def agent():
        try:
            with hotmess.step("flaky", kind="tool", input={"q": 1}):
                raise ConnectionError("tool down")
        except ConnectionError:
            pass
        with hotmess.step("fallback"):
            pass
        return "recovered"

    assert agent() == "recovered"
    run, steps = only_run(db)
    assert (run["status"], run["error"], json.loads(run["outcome"])) == ("ok", None, "recovered")
    assert [(s["name"], s["error"]) for s in steps] == [
        ("flaky", "ConnectionError: tool down"),
        ("fallback", None),
    ]
    assert steps[0]["tool"] == "flaky"
    assert run["n_errors"] == 1


# --- 4. recorders ------------------------------------------------------------------------------


def test_step_as_context_manager_and_async_context_manager(db):
    @hotmess.trace(task_id="t")
    async def agent():
        with hotmess.step("plan", kind="llm", input=[{"role": "user", "content": "hi"}]) as s:
            s.output = "a plan"
        async with hotmess.step("search", kind="retriever", input={"q": "x"}) as s:
            await asyncio.sleep(0)
            s.output = ["doc1", "doc2"]
        with hotmess.step("use", kind="tool", input={"id": 3}) as s:
            s.output = {"ok": True}

    asyncio.run(agent())
    _, steps = only_run(db)
    assert [(s["name"], s["kind"], s["step_index"], s["depth"]) for s in steps] == [
        ("plan", "llm", 0, 1),
        ("search", "retriever", 1, 1),
        ("use", "tool", 2, 1),
    ]
    assert json.loads(steps[0]["input"]) == [{"role": "user", "content": "hi"}]
    assert json.loads(steps[0]["output"]) == "a plan"
    assert json.loads(steps[1]["output"]) == ["doc1", "doc2"]
    assert (steps[2]["tool"], json.loads(steps[2]["input"]), json.loads(steps[2]["output"])) == (
        "use",
        {"id": 3},
        {"ok": True},
    )
    assert all(s["end_ns"] >= s["start_ns"] > 0 for s in steps)


def test_step_kind_is_checked():
    with pytest.raises(ValueError, match="kind"):
        hotmess.step("x", kind="banana")


def test_step_as_decorator_sync_and_async(db):
    @hotmess.step("lookup", kind="tool")
    def lookup(city, units="metric"):
        return {"city": city, "temp": 21}

    @hotmess.step("summarise", kind="llm")
    async def summarise(text, *, style):
        await asyncio.sleep(0)
        return f"{style}: {text}"

    @hotmess.trace(task_id="t")
    async def agent():
        weather = lookup("Paris", units="imperial")
        return await summarise(weather["city"], style="terse")

    assert asyncio.run(agent()) == "terse: Paris"
    run, steps = only_run(db)
    assert [(s["name"], s["kind"]) for s in steps] == [("lookup", "tool"), ("summarise", "llm")]
    assert json.loads(steps[0]["input"]) == {"city": "Paris", "units": "imperial"}
    assert json.loads(steps[0]["output"]) == {"city": "Paris", "temp": 21}
    assert json.loads(steps[1]["input"]) == {"text": "Paris", "style": "terse"}
    assert json.loads(steps[1]["output"]) == "terse: Paris"
    assert json.loads(run["outcome"]) == "terse: Paris"


def test_step_decorator_records_the_error_and_reraises(db):
    err = KeyError("missing")

    @hotmess.step("get", kind="tool")
    def get():
        raise err

    @hotmess.trace(task_id="t")
    def agent():
        try:
            get()
        except KeyError as exc:
            return exc is err

    assert agent() is True
    _, steps = only_run(db)
    assert steps[0]["error"] == "KeyError: 'missing'"


def test_goal_is_a_step_and_the_goal_of_later_steps(db):
    @hotmess.trace(task_id="t")
    def agent():
        with hotmess.step("orient"):
            pass
        hotmess.goal("find a flight")
        with hotmess.step("search"):
            pass
        hotmess.action("search_flights", args={"to": "SFO"}, result=["UA1"])
        hotmess.goal("book the cheapest")
        with hotmess.step("book") as s:
            s.output = "booked"

    agent()
    run, steps = only_run(db)
    assert [(s["kind"], s["name"], s["goal"]) for s in steps] == [
        ("step", "orient", None),
        ("goal", "goal", "find a flight"),
        ("step", "search", "find a flight"),
        ("tool", "execute_tool search_flights", "find a flight"),
        ("goal", "goal", "book the cheapest"),
        ("step", "book", "book the cheapest"),
    ]
    assert [s["step_index"] for s in steps] == list(range(6))
    assert run["n_steps"] == 4  # goals are not counted as steps


def test_goal_inside_a_step_is_that_steps_goal(db):
    @hotmess.trace(task_id="t")
    def agent():
        with hotmess.step("outer"):
            hotmess.goal("g1")

    agent()
    _, steps = only_run(db)
    assert [(s["name"], s["goal"], s["depth"]) for s in steps] == [("outer", "g1", 1), ("goal", "g1", 2)]


def test_action_with_result_and_with_errors(db):
    @hotmess.trace(task_id="t")
    def agent():
        hotmess.action("get_order", args={"id": 7}, result={"status": "shipped"})
        hotmess.action("refund", args={"id": 7}, error="refund window closed")
        hotmess.action("email", args={"to": "a@b.c"}, error=TimeoutError("smtp timed out"))
        return "done"

    agent()
    run, steps = only_run(db)
    assert [(s["kind"], s["tool"]) for s in steps] == [("tool", "get_order"), ("tool", "refund"), ("tool", "email")]
    assert [json.loads(s["input"]) for s in steps] == [{"id": 7}, {"id": 7}, {"to": "a@b.c"}]
    assert json.loads(steps[0]["output"]) == {"status": "shipped"}
    assert [s["error"] for s in steps] == [None, "refund window closed", "TimeoutError: smtp timed out"]
    assert (run["n_tool_calls"], run["n_errors"], run["status"]) == (3, 2, "ok")


def test_outcome_and_score(db):
    @hotmess.trace(task_id="t")
    def agent(ok):
        hotmess.outcome(["refund", 120], success=ok, reference=["refund", 100])
        hotmess.score(0.25 if not ok else 1)
        return None

    agent(False)
    agent(True)
    runs, _ = run_records(db)
    got = sorted(
        (r["success"], json.loads(r["outcome"]), json.loads(r["reference"]), r["score"]) for r in runs
    )
    assert got == [(0.0, ["refund", 120], ["refund", 100], 0.25), (1.0, ["refund", 120], ["refund", 100], 1.0)]


def test_recorders_outside_a_run_do_nothing_and_warn_once_each(db):
    @hotmess.step("decorated")
    def decorated(x):
        return x + 1

    @hotmess.step("adecorated")
    async def adecorated(x):
        return x + 2

    async def use_async_step():
        async with hotmess.step("async-cm") as s:
            s.output = 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with hotmess.step("cm") as s:
                s.output = "ignored"
            asyncio.run(use_async_step())
            assert decorated(1) == 2
            assert asyncio.run(adecorated(1)) == 3
            hotmess.goal("g")
            hotmess.action("tool", args={}, result=1)
            hotmess.outcome("o", success=True)
            hotmess.score(1.0)

    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    messages = sorted(str(w.message).split("(")[0] for w in runtime)
    assert messages == [
        "hotmess.action",
        "hotmess.goal",
        "hotmess.outcome",
        "hotmess.score",
        "hotmess.step",
    ]
    assert all("outside a traced run" in str(w.message) for w in runtime)
    assert all(w.filename == __file__ for w in runtime)  # points at the caller's line
    runs, steps = read_back(db)
    assert len(runs) == 0 and len(steps) == 0
    assert spans_rows(db) == []


def test_warning_once_per_recorder_with_pytest_warns():
    with pytest.warns(RuntimeWarning, match=r"hotmess\.goal\(\) called outside"):
        hotmess.goal("x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise here
        hotmess.goal("y")


# --- 5. bounded, JSON-safe, redacted -----------------------------------------------------------


def test_huge_values_are_truncated_and_marked(tmp_path):
    path = tmp_path / "runs.db"
    hotmess.configure(db=path, flush_interval=0.05, max_attribute_chars=200)

    @hotmess.trace(task_id="big")
    def agent(blob):
        with hotmess.step("echo", input=blob) as s:
            s.output = blob
        hotmess.goal("g" * 1000)
        return blob * 2

    blob = "x" * 100_000
    assert agent(blob) == blob * 2
    run, steps = only_run(path)
    root = root_span(path, run["run_id"])
    run_input = root["attributes"][A.INPUT]
    for text in (run_input, run["outcome"], steps[0]["input"], steps[0]["output"], steps[1]["goal"]):
        assert len(text) < 300
        assert TRUNCATION_PREFIX in text
    assert run["outcome"].startswith('"' + "x" * 199)
    assert "[truncated 199802 chars]" in run["outcome"]  # 200_002 chars of JSON text, 200 kept
    # which attributes were cut is recorded on each span
    assert set(root["attributes"][A.TRUNCATED]) == {A.INPUT, A.OUTCOME}
    step_span = spans_rows(path, "WHERE span_id = ?", (steps[0]["span_id"],))[0]
    assert set(step_span["attributes"][A.TRUNCATED]) == {A.INPUT, A.OUTPUT}


class _Opaque:
    __slots__ = ("x",)

    def __init__(self):
        self.x = 1


class _BrokenRepr:
    def __repr__(self):
        raise RuntimeError("repr is broken")


@dataclasses.dataclass
class _Point:
    x: int
    y: list


def test_values_json_cannot_hold_are_stored_without_breaking_the_agent(db):
    circular: list = [1]
    circular.append(circular)
    circular_dict: dict = {"k": 1}
    circular_dict["self"] = circular_dict

    @hotmess.trace(task_id="odd")
    def agent(obj, tags, raw, point, circ, broken, when=None):
        with hotmess.step("s1", input={"tags": tags, "raw": raw}) as s:
            s.output = point
        with hotmess.step("s2", input=circular_dict) as s:
            s.output = broken
        hotmess.action("a", args=circ, result=obj)
        hotmess.outcome(broken, reference=tags)
        return "ok"

    assert agent(_Opaque(), {"b", "a"}, b"\xffbytes\x00", _Point(1, [2]), circular, _BrokenRepr()) == "ok"
    run, steps = only_run(db)
    assert run["status"] == "ok"
    assert run["reference"] is not None and json.loads(run["reference"]) == ["a", "b"]
    json.loads(run["outcome"])  # valid JSON text, whatever it says
    root_input = json.loads(root_span(db, run["run_id"])["attributes"][A.INPUT])
    assert isinstance(root_input, str | dict)  # a circular argument may turn the whole input to text
    s1, s2, act = steps
    assert json.loads(s1["input"]) == {"tags": ["a", "b"], "raw": "\ufffdbytes\x00"}
    assert json.loads(s1["output"]) == {"x": 1, "y": [2]}
    assert "self" in json.loads(s2["input"])  # repr() of the circular dict
    json.loads(s2["output"])
    assert "[1, [...]]" in json.loads(act["input"])
    assert "_Opaque" in json.loads(act["output"])


def test_unserializable_return_value_is_stored(db):
    @hotmess.trace(task_id="t")
    def agent():
        return {"when": {1, 2}, "obj": object()}

    result = agent()
    run, _ = only_run(db)
    outcome = json.loads(run["outcome"])
    assert outcome["when"] == [1, 2]
    assert "object" in outcome["obj"]
    assert result["when"] == {1, 2}


SECRETS = {
    "openai": "sk-proj-" + "Zq8xW3vB7nM2kL9pR4tY6uI1oE5aS0dF",
    "bearer": "tok3nV4lueABCDEFGH9876543210zz",
    "password": "Hunter2SecretPw",
}


def _agent_with_secrets():
    @hotmess.trace(task_id="secrets")
    def agent(api_key, headers, dsn):
        with hotmess.step("call", kind="tool", input={"headers": headers}) as s:
            s.output = f"used key {api_key}"
        hotmess.action("login", args={"password": SECRETS["password"]}, result=dsn)
        hotmess.outcome({"summary": f"connected with {api_key}"}, reference=f"password={SECRETS['password']}")
        return "ok"

    @hotmess.trace(task_id="secret-error")
    def failing(api_key):
        raise PermissionError(f"key {api_key} rejected; Authorization: Bearer {SECRETS['bearer']}")

    agent(
        SECRETS["openai"],
        {"Authorization": f"Bearer {SECRETS['bearer']}"},
        f"postgres://db?user=app&password={SECRETS['password']}",
    )
    with pytest.raises(PermissionError):
        failing(SECRETS["openai"])


def test_a_secret_in_a_step_name_is_redacted(tmp_path):
    path = tmp_path / "runs.db"
    hotmess.configure(db=path, flush_interval=0.05)
    key = SECRETS["openai"]

    @hotmess.trace(task_id="t")
    def agent():
        with hotmess.step(f"GET /v1/search?api_key={key}", kind="tool"):
            pass
        hotmess.action(f"call {key}")

    agent()
    _, steps = only_run(path)
    assert [s["name"] for s in steps] == ["GET /v1/search?api_key=[REDACTED]", "execute_tool call [REDACTED]"]
    hotmess.shutdown()
    assert key.encode() not in _database_bytes(path)


def test_a_string_sqlite_cannot_encode_does_not_lose_the_batch(tmp_path):
    # A lone surrogate (what os.fsdecode makes of an undecodable file name) is not UTF-8.
    path = tmp_path / "runs.db"
    hotmess.configure(db=path, flush_interval=30)  # everything below lands in one batch

    @hotmess.trace(task_id="t", instance=lambda name: name[:6])
    def agent(name):
        with hotmess.step("open", input={"path": name}):
            pass
        return name

    agent("normal-1")
    agent("weird-\udcff.txt")
    agent("normal-2")
    runs, steps = run_records(path)
    assert sorted(r["instance"] for r in runs) == ["normal", "normal", "weird-"]
    weird = next(r for r in runs if r["instance"] == "weird-")
    assert weird["outcome"] == '"weird-\\udcff.txt"'  # escaped as text, not lost
    assert len(steps) == 3
    stats = hotmess.stats()
    assert (stats.failed, stats.written) == (0, 9)


def _database_bytes(path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-journal"):
        f = Path(str(path) + suffix)
        if f.exists():
            data += f.read_bytes()
    return data


def test_secrets_never_reach_the_database_file(tmp_path):
    path = tmp_path / "runs.db"
    hotmess.configure(db=path, flush_interval=0.05)
    _agent_with_secrets()
    runs, steps = run_records(path)
    assert len(runs) == 2 and len(steps) == 2  # the runs are stored, secrets aside
    failed = next(r for r in runs if r["task_id"] == "secret-error")
    assert failed["error"].startswith("PermissionError: key [REDACTED] rejected")
    hotmess.shutdown()
    data = _database_bytes(path)
    assert b"[REDACTED]" in data
    for name, secret in SECRETS.items():
        assert secret.encode() not in data, name
    assert SECRETS["openai"][:14].encode() not in data


def test_redaction_off_keeps_values(tmp_path):
    path = tmp_path / "runs.db"
    hotmess.configure(db=path, flush_interval=0.05, redact=False)
    _agent_with_secrets()
    hotmess.flush()
    hotmess.shutdown()
    data = _database_bytes(path)
    for name, secret in SECRETS.items():
        assert secret.encode() in data, name
    assert b"[REDACTED]" not in data


# --- 9. beside an application's own OpenTelemetry ---------------------------------------------


def test_configure_beside_an_existing_tracer_provider(tmp_path):
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    path = tmp_path / "runs.db"
    hotmess.configure(db=path, tracer_provider=provider, flush_interval=0.05)
    app_tracer = provider.get_tracer("my-app")

    @hotmess.trace(task_id="t", agent="bot")
    def agent():
        with hotmess.step("inner"):
            pass
        return 1

    try:
        with app_tracer.start_as_current_span("http request") as outer:
            agent()
        outer_ctx = outer.get_span_context()

        run, steps = only_run(path)
        # the application's exporter still gets everything, hotmess's spans included
        names = sorted(s.name for s in memory.get_finished_spans())
        assert names == ["http request", "inner", "invoke_agent bot"]
        # the run is its own trace, linked to the request that started it
        assert run["run_id"] != format(outer_ctx.trace_id, "032x")
        root = root_span(path, run["run_id"])
        assert root["links"] == [
            {
                "trace_id": format(outer_ctx.trace_id, "032x"),
                "span_id": format(outer_ctx.span_id, "016x"),
                "attributes": {},
            }
        ]
        assert [s["name"] for s in steps] == ["inner"]
        # the application's own span is not stored as a run or a step
        assert spans_rows(path, "WHERE name = 'http request'") == []
        assert hotmess.tracer.get_config().provider is provider
    finally:
        hotmess.shutdown()
        provider.shutdown()


def test_configure_uses_the_global_sdk_provider(tmp_path):
    path = tmp_path / "runs.db"
    script = textwrap.dedent(
        """
        import json, sys
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import hotmess

        memory = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        trace.set_tracer_provider(provider)
        config = hotmess.configure(db=sys.argv[1], flush_interval=0.05)

        @hotmess.trace(task_id="global", agent="g-bot")
        def agent():
            hotmess.action("tool", args={"a": 1}, result=2)
            return "out"

        agent()
        hotmess.flush()
        print(json.dumps({
            "names": sorted(s.name for s in memory.get_finished_spans()),
            "same_provider": config.provider is trace.get_tracer_provider(),
            "owns": config.owns_provider,
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "names": ["execute_tool tool", "invoke_agent g-bot"],
        "same_provider": True,
        "owns": False,
    }
    runs, steps = run_records(path)
    assert [(r["task_id"], r["agent"], json.loads(r["outcome"])) for r in runs] == [("global", "g-bot", "out")]
    assert [s["tool"] for s in steps] == ["tool"]


def test_reconfigure_switches_database_and_flushes_the_old_one(tmp_path):
    first, second = tmp_path / "a.db", tmp_path / "b.db"

    @hotmess.trace(task_id="t")
    def agent(n):
        return n

    hotmess.configure(db=first, flush_interval=10)  # would not write by itself for 10 s
    agent(1)
    hotmess.configure(db=second, flush_interval=0.05)
    agent(2)
    assert [json.loads(r["outcome"]) for r in run_records(second)[0]] == [2]
    assert [json.loads(r["outcome"]) for r in run_records(first)[0]] == [1]


def test_configure_on_a_foreign_file_fails_and_keeps_the_previous_setup(tmp_path):
    from hotmess.errors import StoreError

    good = tmp_path / "good.db"
    foreign = tmp_path / "notes.txt"
    foreign.write_text("my notes, not a database\n")
    hotmess.configure(db=good, flush_interval=0.05)
    with pytest.raises(StoreError):
        hotmess.configure(db=foreign)
    assert foreign.read_text() == "my notes, not a database\n"

    @hotmess.trace(task_id="t")
    def agent():
        return "still recorded"

    agent()
    runs, _ = run_records(good)
    assert [json.loads(r["outcome"]) for r in runs] == ["still recorded"]


# --- 10. stats and a failing writer ------------------------------------------------------------


def test_stats_count_written_spans(db):
    @hotmess.trace(task_id="t")
    def agent():
        for i in range(3):
            with hotmess.step(f"s{i}"):
                pass

    for _ in range(4):
        agent()
    runs, steps = read_back(db)
    stats = hotmess.stats()
    n_spans = len(spans_rows(db))
    assert (len(runs), len(steps), n_spans) == (4, 12, 16)
    # each run's start is written once on its own (so a killed process leaves it 'incomplete'),
    # then every span when it ends
    assert stats.written == n_spans + len(runs)
    assert stats.queued == stats.written
    assert (stats.dropped, stats.failed, stats.last_error) == (0, 0, None)
    assert stats.batches >= 1


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path, caplog):
    path = tmp_path / "runs.db"
    # a writer that wakes only every 30 s, and room for 4 spans
    hotmess.configure(db=path, flush_interval=30, max_queue_size=4)

    @hotmess.trace(task_id="t")
    def agent(n):
        with hotmess.step("s"):
            pass
        return n

    with caplog.at_level(logging.WARNING, logger="hotmess"):
        assert [agent(n) for n in range(3)] == [0, 1, 2]  # 9 spans (3 starts, 3 steps, 3 ends)
    stats = hotmess.stats()
    assert (stats.queued, stats.dropped) == (4, 5)
    warned = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(warned) == 1
    runs, steps = run_records(path)
    # what was queued is written: run 0 whole (start, step, end) and run 1's start
    assert [(r["status"], r["outcome"]) for r in runs] == [("ok", "0"), ("incomplete", None)]
    assert len(steps) == 1
    assert hotmess.stats().written == 4


def test_a_failing_writer_is_logged_counted_and_harmless(db, caplog):
    # Make the exporter's own connection unable to write: a real SQLite failure
    # ("attempt to write a readonly database") on every attempt, not a mock.
    processor = _State.processors[0]
    conn = processor._writer._connection()
    conn.execute("PRAGMA query_only = ON")

    @hotmess.trace(task_id="t")
    def agent(n):
        with hotmess.step("s"):
            pass
        return {"n": n}

    with caplog.at_level(logging.ERROR, logger="hotmess"):
        assert agent(1) == {"n": 1}
        assert hotmess.flush(timeout=20)
    stats = hotmess.stats()
    assert stats.failed == 3  # the run's start, its step, its end
    assert stats.written == 0
    assert "readonly" in stats.last_error
    errors = [r for r in caplog.records if r.name == "hotmess" and r.levelno == logging.ERROR]
    assert errors and "hotmess.stats().failed" in errors[0].getMessage()

    # once the database can be written again, later runs are stored
    conn.execute("PRAGMA query_only = OFF")
    assert agent(2) == {"n": 2}
    runs, _ = read_back(db)
    assert [json.loads(o) for o in runs["outcome"]] == [{"n": 2}]
    assert hotmess.stats().failed == 3
