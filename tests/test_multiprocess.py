"""Several processes recording into one database file at once: every run stored, none lost
to "database is locked" (the writer's busy timeout and retries absorb the contention)."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3

from hotmess.store.database import connect
from hotmess.store.readers import read_runs, read_steps

PROCESSES = 4
RUNS_PER_PROCESS = 500
STEPS_PER_RUN = 2


def _record(path: str, worker: int, start, results) -> None:
    # A spawned process: a fresh interpreter that configures hotmess on the shared file.
    import hotmess

    hotmess.configure(db=path, flush_interval=0.05)

    @hotmess.trace(task_id=lambda n: f"task-{n % 10}", instance=lambda n: f"{worker}-{n}", agent=f"w{worker}")
    def agent(n: int) -> dict:
        for k in range(STEPS_PER_RUN):
            with hotmess.step(f"s{k}", kind="tool", input={"w": worker, "n": n, "k": k}) as s:
                s.output = k
        return {"w": worker, "n": n}

    start.wait()  # all processes begin writing together
    returned = [agent(n) for n in range(RUNS_PER_PROCESS)]
    ok = hotmess.flush(timeout=60)
    stats = hotmess.stats()
    hotmess.shutdown()
    results.put(
        {
            "worker": worker,
            "returned_ok": returned == [{"w": worker, "n": n} for n in range(RUNS_PER_PROCESS)],
            "flushed": ok,
            "failed": stats.failed,
            "dropped": stats.dropped,
            "written": stats.written,
            "last_error": stats.last_error,
        }
    )


def test_four_processes_share_one_database_and_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.db")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_record, args=(path, w, start, results)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    start.set()
    reports = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    spans_per_run = STEPS_PER_RUN + 1
    for r in sorted(reports, key=lambda r: r["worker"]):
        assert r["returned_ok"] and r["flushed"], r
        assert (r["failed"], r["dropped"], r["last_error"]) == (0, 0, None), r
        assert r["written"] == RUNS_PER_PROCESS * (spans_per_run + 1)  # + each run's start

    conn = connect(path, create=False)
    try:
        runs = read_runs(conn).to_records()
        steps = read_steps(conn).to_records()
    finally:
        conn.close()
    assert len(runs) == PROCESSES * RUNS_PER_PROCESS
    assert {r["instance"] for r in runs} == {
        f"{w}-{n}" for w in range(PROCESSES) for n in range(RUNS_PER_PROCESS)
    }
    assert {r["status"] for r in runs} == {"ok"}
    assert all(r["n_steps"] == STEPS_PER_RUN for r in runs)
    for r in runs:
        w, n = map(int, r["instance"].split("-"))
        assert r["agent"] == f"w{w}" and json.loads(r["outcome"]) == {"w": w, "n": n}
    assert len(steps) == PROCESSES * RUNS_PER_PROCESS * STEPS_PER_RUN
    # every step is in the run of the process and call that made it
    instance_of = {r["run_id"]: r["instance"] for r in runs}
    for s in steps:
        made = json.loads(s["input"])
        assert instance_of[s["run_id"]] == f"{made['w']}-{made['n']}"

    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert raw.execute("SELECT count(*) FROM spans").fetchone()[0] == PROCESSES * RUNS_PER_PROCESS * spans_per_run
    finally:
        raw.close()
