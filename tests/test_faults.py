"""The tracer never breaks the agent: real storage faults (a database locked by another
connection, a full disk, the file deleted while running, a directory that cannot be written,
a process killed mid-write) are absorbed, logged once and counted, and the agent's own return
values and exceptions are exactly what they would be without hotmess."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import textwrap
from pathlib import Path

import pytest
from _child import python_child, sigkill
from conftest import read_back, run_records, spans_rows

import hotmess
from hotmess.errors import StoreError
from hotmess.store.database import connect
from hotmess.store.readers import read_runs, read_steps
from hotmess.tracer.config import _State


class AgentFailure(Exception):
    """The agent's own exception: must reach the caller as the very same object."""


def _exporter_connection() -> sqlite3.Connection:
    """The SQLite connection hotmess's background writer uses (to give it a real fault)."""
    return _State.processors[0]._writer._connection()


def _agent():
    @hotmess.trace(task_id=lambda n, *_, **__: f"task-{n}")
    def agent(n: int, fail: bool = False, big: bool = False) -> dict:
        for k in range(2):
            with hotmess.step(f"s{k}", kind="tool", input={"n": n, "k": k}) as s:
                s.output = "y" * 6000 if big else k
        if fail:
            raise AgentFailure(n)
        return {"n": n}

    return agent


def _hotmess_records(caplog, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "hotmess" and r.levelno == level]


def _integrity(path: Path) -> list:
    raw = sqlite3.connect(path)
    try:
        return raw.execute("PRAGMA integrity_check").fetchall()
    finally:
        raw.close()


# --- a database locked by another connection ---------------------------------------------------


def test_a_write_lock_held_elsewhere_delays_the_writer_but_never_the_agent(db):
    agent = _agent()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    try:
        failure = AgentFailure("mine")
        results = [agent(n) for n in range(5)]
        with pytest.raises(AgentFailure) as info:
            agent(5, fail=True)
        # every call returned while the lock was held: the writer waits, the agent does not
        assert results == [{"n": n} for n in range(5)]
        assert info.value.args == (5,) and type(info.value) is AgentFailure
        assert failure.args == ("mine",)
        assert not hotmess.flush(timeout=0.3)  # still waiting for the lock
        assert holder.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    finally:
        holder.execute("COMMIT")
        holder.close()
    runs, steps = read_back(db)  # the busy timeout outlasted the lock: nothing was lost
    assert sorted(runs["task_id"]) == [f"task-{n}" for n in range(6)]
    assert len(steps) == 12
    stats = hotmess.stats()
    assert (stats.failed, stats.dropped) == (0, 0)


def test_a_lock_that_outlasts_the_retries_drops_counts_and_logs_once(db, caplog):
    agent = _agent()
    writer = _exporter_connection()
    writer.execute("PRAGMA busy_timeout = 20")  # give up quickly instead of after 30 s
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level(logging.DEBUG, logger="hotmess"):
            for batch in range(3):
                assert agent(batch) == {"n": batch}
                with pytest.raises(AgentFailure):
                    agent(10 + batch, fail=True)
                assert hotmess.flush(timeout=30)
    finally:
        holder.execute("COMMIT")
        holder.close()
    stats = hotmess.stats()
    assert stats.failed == 3 * 2 * 4  # 3 batches of 2 runs: start, 2 steps, end each
    assert stats.written == 0
    assert "locked" in stats.last_error
    errors = _hotmess_records(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]  # once, not once per batch
    assert "hotmess.stats().failed" in errors[0].getMessage()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hotmess"):
        assert agent(99) == {"n": 99}
        runs, _ = read_back(db)
    assert list(runs["task_id"]) == ["task-99"]
    recovered = _hotmess_records(caplog, logging.WARNING)
    assert len(recovered) == 1 and "writing again" in recovered[0].getMessage()
    assert hotmess.stats().failed == 24


# --- a full disk ---------------------------------------------------------------------------------


def test_a_full_disk_keeps_what_was_written_and_marks_the_cut_run_incomplete(db, caplog):
    """SQLite's max_page_count stops the file growing: the writer gets SQLITE_FULL."""
    agent = _agent()
    assert agent(0) == {"n": 0}
    assert hotmess.flush(timeout=20)

    @hotmess.trace(task_id="cut-short")
    def filling_agent() -> str:
        hotmess.flush(timeout=20)  # this run's start is on disk
        writer = _exporter_connection()
        pages = writer.execute("PRAGMA page_count").fetchone()[0]
        writer.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now full
        for k in range(3):
            with hotmess.step(f"big{k}", input="z" * 6000):
                pass
        return "finished anyway"

    with caplog.at_level(logging.ERROR, logger="hotmess"):
        assert filling_agent() == "finished anyway"
        with pytest.raises(AgentFailure):
            agent(1, fail=True, big=True)
        assert hotmess.flush(timeout=30)
    stats = hotmess.stats()
    assert stats.failed > 0 and "full" in stats.last_error
    assert len(_hotmess_records(caplog, logging.ERROR)) == 1

    assert _integrity(db) == [("ok",)]
    runs, steps = run_records(db)
    by_task = {r["task_id"]: r for r in runs}
    assert set(by_task) == {"task-0", "cut-short"}  # task-1 never got a page
    assert by_task["task-0"]["status"] == "ok" and by_task["task-0"]["n_steps"] == 2
    assert json.loads(by_task["task-0"]["outcome"]) == {"n": 0}
    cut = by_task["cut-short"]
    assert (cut["status"], cut["outcome"], cut["n_steps"]) == ("incomplete", None, 0)
    assert [s["run_id"] for s in steps] == [by_task["task-0"]["run_id"]] * 2

    # room again: recording carries on where it stopped
    _exporter_connection().execute("PRAGMA max_page_count = 1073741823")
    assert agent(2) == {"n": 2}
    runs, _ = read_back(db)
    assert sorted(runs["task_id"]) == ["cut-short", "task-0", "task-2"]
    assert _integrity(db) == [("ok",)]


# --- the file deleted, the directory unwritable -------------------------------------------------


def test_the_database_deleted_while_running_is_recreated(db, caplog):
    agent = _agent()
    assert agent(0) == {"n": 0}
    assert hotmess.flush(timeout=20)
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING, logger="hotmess"):
        assert agent(1) == {"n": 1}
        with pytest.raises(AgentFailure):
            agent(2, fail=True)
        runs, steps = read_back(db)
    # the new file has the runs recorded after the deletion, whole
    assert sorted(runs["task_id"]) == ["task-1", "task-2"]
    assert sorted(runs["status"]) == ["error", "ok"]
    assert len(steps) == 4
    warned = _hotmess_records(caplog, logging.WARNING)
    assert len(warned) == 1 and "deleted or replaced" in warned[0].getMessage()
    assert hotmess.stats().failed == 0


def test_a_database_that_cannot_be_created_fails_configure_clearly(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be\n")
    with pytest.raises(StoreError, match="not-a-directory"):
        hotmess.configure(db=blocker / "runs.db")
    assert blocker.read_text() == "a file where a directory should be\n"


def test_an_unusable_default_database_leaves_the_agent_untouched(tmp_path, monkeypatch, caplog):
    # No configure(): the first run configures the default, which cannot be created.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("HOTMESS_DB", str(blocker / "runs.db"))
    agent = _agent()
    with caplog.at_level(logging.ERROR, logger="hotmess"):
        assert [agent(n) for n in range(5)] == [{"n": n} for n in range(5)]
        with pytest.raises(AgentFailure) as info:
            agent(5, fail=True)
    assert info.value.args == (5,)
    errors = _hotmess_records(caplog, logging.ERROR)
    assert len(errors) == 1 and "cannot record runs" in errors[0].getMessage()  # once, not per call
    assert blocker.read_text() == "x"
    # once there is somewhere to record, configure() starts recording
    hotmess.configure(db=tmp_path / "runs.db", flush_interval=0.05)
    assert agent(6) == {"n": 6}
    runs, _ = read_back(tmp_path / "runs.db")
    assert list(runs["task_id"]) == ["task-6"]


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_read_only_directory_fails_configure_clearly(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod does not stop root writing (see the query_only and "
                    "not-a-directory tests for the same failure by other means)")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="ro"):
            hotmess.configure(db=ro / "runs.db")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


# --- a process killed while writing ----------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    import hotmess

    hotmess.configure(db=sys.argv[1], flush_interval=0.01)

    @hotmess.trace(task_id=lambda n: f"t{n % 7}", instance=lambda n: n)
    def agent(n):
        for k in range(5):
            with hotmess.step(f"s{k}", input={"n": n, "blob": "b" * 3000}) as s:
                s.output = k
        return n

    n = 0
    while True:
        agent(n)
        if n == 50:
            hotmess.flush()
            print("writing", flush=True)
        n += 1
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_during_heavy_writing_leaves_whole_runs_or_incomplete_ones(tmp_path):
    path = tmp_path / "killed.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    with python_child(script, path) as proc:
        assert proc.stdout.readline().strip() == "writing"
        # kill while batches of ~16 kB rows are being committed every 10 ms
        sigkill(proc)

    assert _integrity(path) == [("ok",)]
    conn = connect(path, create=False)
    try:
        runs = read_runs(conn).to_records()
        steps = read_steps(conn).to_records()
    finally:
        conn.close()
    assert len(runs) >= 50
    stored = {}
    for s in steps:
        stored.setdefault(s["run_id"], []).append(s)
    for run in runs:
        mine = stored.get(run["run_id"], [])
        if run["status"] == "ok":
            assert run["n_steps"] == 5 and len(mine) == 5, run
            assert json.loads(run["outcome"]) == int(run["instance"])
        else:  # the run (at most a few) in flight at the kill
            assert run["status"] == "incomplete" and run["outcome"] is None
            assert len(mine) <= 5
        assert sorted(json.loads(s["input"])["n"] for s in mine) == [int(run["instance"])] * len(mine)
    assert sum(r["status"] == "incomplete" for r in runs) <= 2


def test_a_long_traceback_keeps_its_last_frames(tmp_path):
    path = tmp_path / "runs.db"
    hotmess.configure(db=path, flush_interval=0.05, max_attribute_chars=600)

    def dig(n: int) -> None:
        if n == 0:
            raise LookupError("the innermost failure")
        dig(n - 1)

    @hotmess.trace(task_id="deep")
    def agent() -> None:
        dig(40)

    with pytest.raises(LookupError):
        agent()
    read_back(path)
    (root,) = spans_rows(path, "WHERE parent_span_id IS NULL")
    (event,) = [e for e in root["events"] if e["name"] == "exception"]
    trace = event["attributes"]["exception.stacktrace"]
    assert trace.startswith("…[truncated ") and len(trace) < 650
    assert trace.rstrip().endswith("LookupError: the innermost failure")
    assert "exception.stacktrace" in event["attributes"]["hotmess.truncated"]


def test_an_unreachable_otlp_endpoint_never_touches_the_agent_or_sqlite(tmp_path, monkeypatch):
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # the exporter gives up on its retries sooner at exit
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "runs.db"
    hotmess.configure(db=path, flush_interval=0.05, otlp_endpoint=f"http://127.0.0.1:{port}")
    agent = _agent()
    assert [agent(n) for n in range(3)] == [{"n": n} for n in range(3)]
    with pytest.raises(AgentFailure):
        agent(3, fail=True)
    processor = _State.processors[0]
    assert processor.force_flush(20_000)  # the SQLite writer, not waiting on the OTLP retries
    conn = connect(path, create=False)
    try:
        assert sorted(read_runs(conn)["status"]) == ["error", "ok", "ok", "ok"]
    finally:
        conn.close()
    assert hotmess.stats().failed == 0
