"""A forked child never hangs on its parent's locks, records the runs it starts, and never
writes over the parent's runs. Each scenario runs in its own process (forking pytest itself
would fork its threads too)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="os.fork is POSIX")

SCENARIO = textwrap.dedent('''
    import json, os, sys, threading, time, warnings
    import hotmess
    warnings.simplefilter("ignore")  # os.fork() with threads: Python warns, we do it on purpose
    hotmess.configure(db=sys.argv[1], flush_interval=0.001)
    stop = threading.Event()

    @hotmess.trace(task_id="background")
    def background_agent(i):
        for k in range(20):
            with hotmess.step(f"s{k}", input={"pad": "y" * 2000}):
                pass

    def background():  # keeps the writer thread busy inside SQLite while we fork
        i = 0
        while not stop.is_set():
            background_agent(i)
            i += 1

    @hotmess.trace(task_id="child", instance=lambda n: n)
    def child_agent(n):
        hotmess.action("tool", args={"n": n})
        return n

    @hotmess.trace(task_id="forker", instance=lambda n: n)
    def forker(n):
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # inside the parent's run: SystemExit must not end the parent's run
        return pid

    thread = threading.Thread(target=background, daemon=True)
    thread.start()
    time.sleep(0.2)
    children = []
    for n in range(int(sys.argv[2])):
        pid = os.fork()
        if pid == 0:  # forked outside any run, as a multiprocessing worker is
            child_agent(n)
            sys.exit(0)
        children.append(pid)
        children.append(forker(n))
    hung = 0
    for pid in children:
        deadline = time.time() + 20
        while not os.waitpid(pid, os.WNOHANG)[0]:
            if time.time() > deadline:
                hung += 1
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                break
            time.sleep(0.01)
    stop.set()
    thread.join()
    hotmess.flush()
    print(json.dumps({"hung": hung, "children": len(children)}))
''')


def test_forked_children_never_hang_and_record_their_own_runs(tmp_path: Path):
    db = tmp_path / "fork.db"
    proc = subprocess.run([sys.executable, "-c", SCENARIO, str(db), "12"], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"hung": 0, "children": 24}
    conn = sqlite3.connect(db)
    counts = dict(conn.execute(
        "SELECT task_id || ':' || status, count(*) FROM runs WHERE task_id != 'background' GROUP BY 1"))
    # every child's own run is stored; the parent's runs stay as the parent ended them
    assert counts == {"child:ok": 12, "forker:ok": 12}
    assert conn.execute("SELECT count(*) FROM runs WHERE status != 'ok'").fetchone() == (0,)


def test_a_multiprocessing_fork_pool_records_every_worker_run(tmp_path: Path):
    db = tmp_path / "pool.db"
    script = textwrap.dedent('''
        import multiprocessing as mp, sys, hotmess
        hotmess.configure(db=sys.argv[1], flush_interval=0.01)

        @hotmess.trace(task_id=lambda n: f"task-{n % 3}", instance=lambda n: n)
        def agent(n):
            with hotmess.step("think", input={"n": n}):
                pass
            return n * 2

        def work(n):
            out = agent(n)
            hotmess.flush()
            return out

        if __name__ == "__main__":
            agent(-1)  # the parent records too, before and after the pool
            with mp.get_context("fork").Pool(4) as pool:
                assert pool.map(work, range(40)) == [2 * n for n in range(40)]
            agent(-2)
            hotmess.flush()
    ''')
    path = tmp_path / "pool_script.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path), str(db)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    instances = sorted(int(i) for (i,) in conn.execute("SELECT instance FROM runs"))
    assert instances == [-2, -1, *range(40)]
    assert conn.execute("SELECT count(*) FROM steps").fetchone() == (42,)
