"""A process killed with SIGKILL mid-run: the database is intact, the run is there as
'incomplete', and every step that finished more than a second before the kill is stored."""

from __future__ import annotations

import json
import signal
import sqlite3
import textwrap
import time

import pytest
from _child import python_child, sigkill
from conftest import steps_of

from hotmess.store.database import connect
from hotmess.store.readers import read_runs, read_steps

CHILD = textwrap.dedent(
    """
    import sys, time
    import hotmess

    hotmess.configure(db=sys.argv[1])  # the default flush interval: the promise under test

    @hotmess.trace(task_id="finished-task", agent="quick")
    def quick():
        with hotmess.step("only", input={"n": -1}):
            pass
        return "finished"

    quick()
    print("completed", flush=True)

    @hotmess.trace(task_id="endless-task", agent="slow")
    def endless():
        n = 0
        while True:
            with hotmess.step("tick", input={"n": n}) as s:
                s.output = n
            print(f"step {n}", flush=True)
            n += 1
            time.sleep(0.2)

    endless()
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_run_keeps_the_database_and_the_finished_steps(tmp_path):
    path = tmp_path / "killed.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    reported: dict[int, float] = {}  # step number -> when the parent read its line
    completed_at = None
    with python_child(script, path, stderr=True, unbuffered=True) as proc:
        deadline = time.monotonic() + 45
        kill_after = None
        while True:
            line = proc.stdout.readline()
            now = time.monotonic()
            if not line:
                pytest.fail(f"the child stopped early: {proc.wait()} {proc.stderr.read()}")
            line = line.strip()
            if line == "completed":
                completed_at = now
            elif line.startswith("step "):
                reported[int(line.split()[1])] = now
            if kill_after is None and len(reported) >= 5:
                kill_after = now + 1.5
            if kill_after is not None and now >= kill_after:
                break
            assert now < deadline, "the child is too slow"
        killed_at = time.monotonic()
        sigkill(proc)

    assert completed_at is not None
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        raw.close()

    conn = connect(path, create=False)
    try:
        runs = {r["task_id"]: r for r in read_runs(conn).to_records()}
        steps = read_steps(conn).to_records()
    finally:
        conn.close()
    assert set(runs) == {"finished-task", "endless-task"}

    done = runs["finished-task"]
    assert (done["status"], json.loads(done["outcome"]), done["n_steps"]) == ("ok", "finished", 1)
    assert [json.loads(s["input"]) for s in steps_of(steps, done["run_id"])] == [{"n": -1}]

    endless = runs["endless-task"]
    assert endless["status"] == "incomplete"
    assert endless["end_ns"] == 0 and endless["outcome"] is None
    stored = [json.loads(s["input"])["n"] for s in steps_of(steps, endless["run_id"])]
    assert stored == list(range(len(stored)))  # in order, no gaps
    must_have = {n for n, seen in reported.items() if seen < killed_at - 1.0}
    assert len(must_have) >= 5
    assert must_have <= set(stored), sorted(must_have - set(stored))
    assert set(stored) <= set(reported) | {max(reported) + 1}  # nothing invented
