"""``hotmess.repeat``: an agent run n times per task, recorded, timed out, budgeted, resumed."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter

import pytest
from conftest import run_records

import hotmess
from hotmess.harness import Budget, RepeatResult
from hotmess.verdict import verdict
from hotmess.vocab import attributes as A


class Scripted:
    """Answers for each task, trial by trial, whatever order the threads run in: the k-th call
    on a task gets ``answers[task][k]`` (a list of answers, or an exception to raise)."""

    def __init__(self, answers: dict[str, list]):
        self.answers = answers
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.returned: list = []
        self.raised: list = []

    def next(self, task: str):
        with self.lock:
            k = self.calls[task]
            self.calls[task] += 1
        answer = self.answers[task][k % len(self.answers[task])]
        if isinstance(answer, BaseException):
            exc = type(answer)(*answer.args)
            self.raised.append(exc)
            raise exc
        value = {"answer": answer}
        self.returned.append(value)
        return value


EXPECTED = {"capital": "Paris", "sum": "5"}


def test_a_sync_traced_agent_runs_n_times_per_task(db):
    script = Scripted({"capital": ["Paris", "Paris", "Lyon"], "sum": ["5", "6", "7"]})

    @hotmess.trace(task_id=lambda task: task["id"], agent="quiz-bot")
    def agent(task):
        out = script.next(task["id"])
        hotmess.outcome(out["answer"], success=out["answer"] == EXPECTED[task["id"]], reference=EXPECTED[task["id"]])
        return out

    result = hotmess.repeat(agent, [{"id": "capital"}, {"id": "sum"}], n=6, concurrency=4)
    assert isinstance(result, RepeatResult)
    assert (result.planned, result.ran, result.ok, result.errors, result.timed_out, result.stored) == (12, 12, 12, 0, 0, 0)
    assert result.agent == "quiz-bot" and result.db == str(db) and result.stopped is None
    runs, _ = run_records(db)
    assert Counter((r["task_id"], r["instance"]) for r in runs) == {
        (t, str(k)): 1 for t in ("capital", "sum") for k in range(6)}
    assert {r["agent"] for r in runs} == {"quiz-bot"} and {r["status"] for r in runs} == {"ok"}
    assert Counter(json.loads(r["outcome"]) for r in runs if r["task_id"] == "sum") == {"5": 2, "6": 2, "7": 2}
    # the return values are the agent's own objects, untouched
    assert sorted(map(id, (t.value for t in result.trials))) == sorted(map(id, script.returned))
    assert {t.run_id for t in result.trials} == {r["run_id"] for r in runs}
    # the analysis of what ran
    a = result.analysis
    assert a.n_runs == 12 and a.n_tasks == 2
    assert a.success_rate == pytest.approx((4 + 2) / 12)
    assert result.verdict and result.verdict == verdict(a.to_dict()).text
    assert "quiz-bot: 12 runs of 2 tasks × 6 trials" in result.summary()
    json.dumps(result.to_json())  # JSON-safe, with the analysis inside
    assert result.to_json()["analysis"]["n_runs"] == 12 and "value" not in result.to_json()["trials"][0]


def test_a_plain_async_agent_runs_as_tasks_at_most_concurrency_at_a_time(db):
    in_flight = {"now": 0, "max": 0}
    script = Scripted({"a": ["x"], "b": ["y", "z"]})

    async def solver(task):
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.02)
        in_flight["now"] -= 1
        return script.next(task)["answer"]

    result = hotmess.repeat(solver, {"a": "a", "b": "b"}, n=5, concurrency=3)
    assert (result.ran, result.ok) == (10, 10)
    assert in_flight["max"] == 3
    runs, _ = run_records(db)
    assert {r["agent"] for r in runs} == {"solver"}
    assert Counter(r["task_id"] for r in runs) == {"a": 5, "b": 5}
    assert {json.loads(r["outcome"]) for r in runs if r["task_id"] == "b"} == {"y", "z"}
    assert {t.value for t in result.trials if t.task_id == "a"} == {"x"}


def test_sync_agents_run_in_threads_at_most_concurrency_at_a_time(db):
    lock = threading.Lock()
    in_flight = {"now": 0, "max": 0}

    def worker(task):
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        time.sleep(0.02)
        with lock:
            in_flight["now"] -= 1
        return task

    result = hotmess.repeat(worker, {"t1": 1, "t2": 2, "t3": 3}, n=4, concurrency=2)
    assert result.ran == 12 and in_flight["max"] == 2


def test_a_hanging_sync_run_is_recorded_as_timed_out(db):
    release = threading.Event()
    calls = Counter()

    def agent(task):
        calls[task] += 1
        if task == "slow" and calls[task] == 2:
            release.wait(30)  # hangs until the test lets it go
            hotmess.outcome("too late", success=True)
            return "too late"
        hotmess.outcome("done", success=True)
        return "done"

    try:
        started = time.monotonic()
        result = hotmess.repeat(agent, {"fast": "fast", "slow": "slow"}, n=3, timeout=0.3)
        assert time.monotonic() - started < 5
    finally:
        release.set()
    assert (result.ran, result.ok, result.timed_out) == (6, 5, 1)
    (late,) = [t for t in result.trials if t.status == "timeout"]
    assert late.task_id == "slow" and late.error.startswith("TimeoutError: the run took longer than its 0.3 s")
    time.sleep(0.1)  # the hung thread returns now; the run must not change
    runs, _ = run_records(db)
    (run,) = [r for r in runs if r["run_id"] == late.run_id]
    assert run["status"] == "error" and run["error"].startswith("TimeoutError")
    assert run["outcome"] is None and run["success"] == 0.0
    (slow,) = [t for t in result.analysis.tasks if t.task_id == "slow"]
    assert {c.key: c.size for c in slow.clusters} == {"<correct>": 2, "<crash> TimeoutError": 1}


def test_a_hanging_async_run_is_timed_out_and_cancelled(db):
    cancelled = []

    async def agent(task):
        if task == "stuck":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(task)
                raise
        return "ok"

    result = hotmess.repeat(agent, ["stuck", "fine"], n=2, timeout=0.2, task_id=str)
    assert (result.ok, result.timed_out) == (2, 2) and cancelled == ["stuck", "stuck"]
    runs, _ = run_records(db)
    stuck = [r for r in runs if r["task_id"] == "stuck"]
    assert [r["error"].split(":")[0] for r in stuck] == ["TimeoutError", "TimeoutError"]  # not CancelledError


def test_a_crashing_agent_is_recorded_and_the_others_go_on(db):
    script = Scripted({"a": ["fine", ValueError("bad input 3")], "b": [KeyError("missing")]})

    @hotmess.trace(agent="crashy")
    def agent(task_id):
        return script.next(task_id)

    result = hotmess.repeat(agent, ["a", "b"], n=4, task_id=str)
    assert (result.ran, result.ok, result.errors) == (8, 2, 6)
    # the exceptions are the agent's own objects
    assert sorted(map(id, (t.exception for t in result.trials if t.exception))) == sorted(map(id, script.raised))
    assert Counter(t.error for t in result.trials if t.error) == {"ValueError: bad input 3": 2, "KeyError: 'missing'": 4}
    runs, _ = run_records(db)
    assert Counter(r["error"] for r in runs if r["status"] == "error") == {
        "ValueError: bad input 3": 2, "KeyError: 'missing'": 4}


def test_a_run_budget_stops_early_and_says_so(db):
    result = hotmess.repeat(lambda t: t, {"a": 1, "b": 2, "c": 3}, n=4, budget=5, concurrency=1, agent_name="echo")
    assert (result.planned, result.ran, result.not_run) == (12, 5, 7)
    assert result.stopped == "the run budget is spent (5 runs)"
    # trials go round the tasks, so the budget leaves them evenly sampled
    assert [(t.task_id, t.instance) for t in result.trials] == [
        ("a", "0"), ("b", "0"), ("c", "0"), ("a", "1"), ("b", "1")]
    assert "stopped: the run budget is spent (5 runs); 7 runs not run" in result.summary()


def test_a_token_budget_stops_once_spent(db):
    def agent(task):
        with hotmess.step("chat", kind="llm", attributes={A.INPUT_TOKENS: 100, A.OUTPUT_TOKENS: 50}):
            pass
        return "answer"

    result = hotmess.repeat(agent, {"a": 1, "b": 2}, n=5, budget=Budget(tokens=400), concurrency=1)
    assert result.ran == 3 and result.not_run == 7 and result.tokens == 450
    assert result.stopped == "the token budget is spent (450 of 400 tokens used)"


def test_a_resumed_run_skips_what_is_stored(db):
    calls = Counter()

    def agent(task):
        calls[task] += 1
        return f"{task}-{calls[task] % 2}"

    first = hotmess.repeat(agent, {"a": "a", "b": "b"}, n=5, budget=Budget(runs=3))
    assert (first.ran, first.not_run) == (3, 7)
    second = hotmess.repeat(agent, {"a": "a", "b": "b"}, n=5)
    assert (second.stored, second.ran) == (3, 7)
    more = hotmess.repeat(agent, {"a": "a", "b": "b"}, n=8)
    assert (more.stored, more.ran) == (10, 6)
    again = hotmess.repeat(agent, {"a": "a", "b": "b"}, n=8)
    assert (again.stored, again.ran) == (16, 0) and again.analysis.n_runs == 16
    runs, _ = run_records(db)
    assert Counter((r["task_id"], r["instance"]) for r in runs) == {(t, str(k)): 1 for t in "ab" for k in range(8)}
    assert calls == {"a": 8, "b": 8}
    # another agent's runs of the same tasks are its own
    other = hotmess.repeat(agent, {"a": "a"}, n=2, agent_name="agent-v2")
    assert (other.stored, other.ran) == (0, 2)


def test_progress_and_a_database_given_by_path(tmp_path):
    calls = []
    path = tmp_path / "exp.db"
    result = hotmess.repeat(lambda t: t * 2, {"x": 1}, n=3, db=path, progress=lambda *a: calls.append(a))
    assert result.db == str(path) and result.ran == 3
    assert calls[0] == ("runs", 0, 3) and calls[-1] == ("runs", 3, 3) and len(calls) == 4
    assert len(run_records(path)[0]) == 3


def test_from_inside_an_event_loop(db):
    async def main():
        inner = hotmess.repeat(lambda t: t, {"x": 1}, n=2)  # runs its loop in a thread
        outer = await hotmess.arepeat(lambda t: t, {"y": 1}, n=2)
        return inner, outer

    inner, outer = asyncio.run(main())
    assert (inner.ran, outer.ran) == (2, 2)


def test_bad_arguments(db):
    with pytest.raises(ValueError, match="n must be a whole number >= 1"):
        hotmess.repeat(lambda t: t, {"a": 1}, n=0)
    with pytest.raises(ValueError, match="given twice"):
        hotmess.repeat(lambda t: t, [{"id": 1}, {"id": 1}])
    with pytest.raises(ValueError, match="cannot tell the task id"):
        hotmess.repeat(lambda t: t, [1, 2])
    with pytest.raises(ValueError, match="timeout"):
        hotmess.repeat(lambda t: t, {"a": 1}, timeout=0)
    with pytest.raises(ValueError, match="budget runs"):
        hotmess.repeat(lambda t: t, {"a": 1}, budget=Budget(runs=-1))
    with pytest.raises(ValueError, match="no tasks"):
        hotmess.repeat(lambda t: t, {})


def test_too_few_runs_give_a_note_not_an_error(db):
    result = hotmess.repeat(lambda t: t, {"a": 1}, n=1)
    assert result.ran == 1 and result.verdict is not None or result.note.startswith("no analysis: ")
    no = hotmess.repeat(lambda t: t, {"b": 1}, n=2, analyze=False)
    assert no.analysis is None and no.verdict is None and no.tokens == 0


def test_the_command_line_form(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "quiz.py").write_text(
        "import hotmess\n\n"
        "@hotmess.trace(task_id=lambda t: t['id'], agent='quiz-cli')\n"
        "def solve(task):\n"
        "    hotmess.outcome(task['q'].upper(), success=task['id'] != 'b')\n"
        "    return task['q'].upper()\n")
    (tmp_path / "tasks.json").write_text(json.dumps([{"id": "a", "q": "x"}, {"id": "b", "q": "y"}]))
    src = str(Path(hotmess.__file__).resolve().parents[1])

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from hotmess.cli import main; main()", "repeat", *args],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": src, "COLUMNS": "200"})

    db = str(tmp_path / "quiz.db")
    first = command("quiz.py:solve", "tasks.json", "-n", "3", "--db", db)
    assert first.returncode == 0, first.stderr
    assert "quiz-cli: 6 runs of 2 tasks × 3 trials" in first.stdout and "success 50%" in first.stdout
    more = command("quiz:solve", "tasks.json", "-n", "4", "--db", db, "--json")
    data = json.loads(more.stdout)
    assert (data["stored"], data["ran"], data["analysis"]["n_runs"]) == (6, 2, 8)
    missing = command("quiz:nothing", "tasks.json", "--db", db)
    assert missing.returncode == 1 and "quiz has no function 'nothing'" in missing.stderr


def test_runs_are_their_own_even_when_repeat_is_called_inside_a_traced_run(db):
    async def agent(task):
        return task

    @hotmess.trace(task_id="outer", agent="caller")
    async def caller():
        return await hotmess.arepeat(agent, {"x": 1}, n=2, analyze=False)

    result = asyncio.run(caller())
    assert result.ran == 2
    runs, _ = run_records(db)
    assert Counter(r["task_id"] for r in runs) == {"outer": 1, "x": 2}
