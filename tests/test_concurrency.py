"""Many runs at once, in threads and in asyncio tasks: no step lands in another run."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict

from conftest import read_back, spans_rows

import hotmess

THREADS = 8
RUNS_PER_THREAD = 25
ASYNC_RUNS = 100


def _check_runs(
    runs: list[dict],
    steps: list[dict],
    expected_numbers: set[int],
    steps_per_run: int,
    indexes: list[int] | None = None,
    counted: int | None = None,
) -> None:
    assert len(runs) == len(expected_numbers)
    by_run = defaultdict(list)
    for s in steps:
        by_run[s["run_id"]].append(s)
    numbers = set()
    for run in runs:
        n = int(run["instance"])
        numbers.add(n)
        assert run["status"] == "ok", run
        assert json.loads(run["outcome"]) == {"run": n}
        assert run["task_id"] == f"task-{n % 5}"
        mine = sorted(by_run[run["run_id"]], key=lambda s: s["step_index"])
        assert len(mine) == steps_per_run, (n, [s["name"] for s in mine])
        # a nested agent's own span is a wrapper, not a step of work: n_steps leaves it out
        assert run["n_steps"] == (steps_per_run if counted is None else counted)
        # every step carries this run's own number, and the order is exactly start order
        assert [json.loads(s["input"])["run"] for s in mine] == [n] * steps_per_run
        assert [s["step_index"] for s in mine] == (indexes or list(range(steps_per_run)))
    assert numbers == expected_numbers
    assert sum(len(v) for v in by_run.values()) == len(runs) * steps_per_run


def test_threads_never_mix_steps_between_runs(db):
    @hotmess.trace(agent="helper", task_id="unused")
    def helper(run, k):
        with hotmess.step("helper-inner", input={"run": run, "k": k}):
            pass
        return k

    @hotmess.trace(task_id=lambda n: f"task-{n % 5}", instance=lambda n: n)
    def agent(n):
        for k in range(3):
            with hotmess.step(f"s{k}", input={"run": n, "k": k}) as s:
                s.output = n
        helper(n, 3)  # a sub-agent step (index 3) with its own child (index 4, depth 2)
        hotmess.action("tool", args={"run": n, "k": 5}, result=n)
        return {"run": n}

    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for i in range(RUNS_PER_THREAD):
                n = t * RUNS_PER_THREAD + i
                assert agent(n) == {"run": n}
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []

    runs, steps = read_back(db)
    runs, steps = runs.to_records(), steps.to_records()
    _check_runs(runs, steps, set(range(THREADS * RUNS_PER_THREAD)), steps_per_run=6, counted=5)
    for s in steps:
        assert s["depth"] == (2 if s["name"] == "helper-inner" else 1)
    stats = hotmess.stats()
    total = THREADS * RUNS_PER_THREAD
    assert len(spans_rows(db)) == total * 7
    assert (stats.dropped, stats.failed) == (0, 0)
    assert stats.written == total * 7 + total  # every span, plus every run's start
    assert stats.queued == stats.written


def test_asyncio_runs_interleave_without_mixing(db):
    order: list[int] = []

    @hotmess.trace(agent="sub", task_id="unused")
    async def sub(run):
        async with hotmess.step("sub-inner", input={"run": run}):
            await asyncio.sleep(0)
        return run

    @hotmess.trace(task_id=lambda n: f"task-{n % 5}", instance=lambda n: n)
    async def agent(n):
        for k in range(4):
            async with hotmess.step(f"s{k}", input={"run": n, "k": k}):
                order.append(n)
                await asyncio.sleep(0)
            await asyncio.sleep(0)
        hotmess.goal(f"goal of {n}")
        await sub(n)
        hotmess.outcome({"run": n})
        return None

    async def main():
        await asyncio.gather(*(agent(n) for n in range(ASYNC_RUNS)))

    asyncio.run(main())
    # the runs really did interleave: run 0's steps were not all done before run 1's began
    assert order[:3] != [0, 0, 0]

    runs, steps = read_back(db)
    runs, steps = runs.to_records(), steps.to_records()
    agent_steps = [s for s in steps if s["kind"] != "goal"]
    # step indices count the goal step (index 4) too
    _check_runs(runs, agent_steps, set(range(ASYNC_RUNS)), steps_per_run=6, indexes=[0, 1, 2, 3, 5, 6], counted=5)
    goals = [s for s in steps if s["kind"] == "goal"]
    run_of = {r["run_id"]: int(r["instance"]) for r in runs}
    assert len(goals) == ASYNC_RUNS
    for g in goals:
        assert g["goal"] == f"goal of {run_of[g['run_id']]}"
    for s in agent_steps:
        n = run_of[s["run_id"]]
        if s["name"] in ("invoke_agent sub", "sub-inner"):
            assert s["goal"] == f"goal of {n}"  # the goal is this run's, not a neighbour's
        else:
            assert s["goal"] is None
    assert (hotmess.stats().dropped, hotmess.stats().failed) == (0, 0)


def test_threads_each_running_their_own_event_loop(db):
    @hotmess.trace(task_id=lambda n: f"task-{n % 5}", instance=lambda n: n)
    async def agent(n):
        for k in range(2):
            async with hotmess.step(f"s{k}", input={"run": n}):
                await asyncio.sleep(0)
        return {"run": n}

    def worker(t: int) -> None:
        async def many():
            await asyncio.gather(*(agent(t * 10 + i) for i in range(10)))

        asyncio.run(many())

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    runs, steps = read_back(db)
    _check_runs(runs.to_records(), steps.to_records(), set(range(40)), steps_per_run=2)
