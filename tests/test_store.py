"""The SQLite store: creation, upgrades, refusing foreign files, the exporter and the readers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hotmess.errors import StoreError
from hotmess.store import schema
from hotmess.store.database import connect, schema_version
from hotmess.store.exporter import SQLiteSpanExporter
from hotmess.store.readers import count_runs, find_run, read_runs, read_spans, read_steps
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS
from hotmess.vocab import attributes as A
from hotmess.vocab.records import SpanRecord


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# --- creating and opening ---------------------------------------------------------------------


def test_fresh_database_is_wal_with_current_schema(tmp_path):
    path = tmp_path / "sub" / "dir" / "new.db"
    conn = connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert schema_version(conn) == schema.SCHEMA_VERSION
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        assert meta == {"application": "hotmess", "schema_version": str(schema.SCHEMA_VERSION)}
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"meta", "spans", "runs", "steps", "imports"} <= tables
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"runs_task", "steps_run", "runs_agent", "runs_start"} <= indexes
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    finally:
        conn.close()
    # opening it again changes nothing
    conn = connect(path, create=False)
    try:
        assert schema_version(conn) == schema.SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] == 2
    finally:
        conn.close()


def _v1_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(schema.SCHEMA_V1)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("application", "hotmess"), ("schema_version", "1")])
    for i in range(3):
        conn.execute(
            "INSERT INTO runs (run_id, task_id, agent, instance, status, start_ns, end_ns, outcome, success, n_steps)"
            " VALUES (?, ?, 'old-agent', ?, 'ok', ?, ?, ?, ?, 2)",
            (f"run{i}", f"task{i % 2}", str(i), 1000 + i, 2000 + i, json.dumps(f"out{i}"), i % 2),
        )
        for k in range(2):
            conn.execute(
                "INSERT INTO steps (run_id, span_id, step_index, depth, kind, name, input) VALUES (?, ?, ?, 1, 'tool', ?, ?)",
                (f"run{i}", f"s{i}{k}", k, f"step{k}", json.dumps({"k": k})),
            )
        conn.execute(
            "INSERT INTO spans (trace_id, span_id, name, start_ns) VALUES (?, ?, 'root', ?)",
            (f"run{i}", f"root{i}", 1000 + i),
        )
    conn.commit()
    conn.close()


def test_v1_database_is_upgraded_without_losing_a_row(tmp_path):
    path = tmp_path / "old.db"
    _v1_database(path)
    before = sqlite3.connect(path)
    rows_before = {
        t: sorted(before.execute(f"SELECT * FROM {t}").fetchall()) for t in ("runs", "steps", "spans")
    }
    before.close()
    assert len(rows_before["runs"]) == 3 and len(rows_before["steps"]) == 6

    conn = connect(path)
    try:
        assert schema_version(conn) == schema.SCHEMA_VERSION == 3
        for table, rows in rows_before.items():
            assert sorted(conn.execute(f"SELECT * FROM {table}").fetchall()) == rows
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"imports", "inferred_tasks", "inferred_task_groups"} <= tables
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"runs_agent", "runs_start"} <= indexes
        runs = read_runs(conn)
        assert list(runs["run_id"]) == ["run0", "run2", "run1"]  # by task, then start
        assert list(runs["outcome"]) == ['"out0"', '"out2"', '"out1"']
        assert len(read_steps(conn)) == 6
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_foreign_sqlite_file_is_refused_and_untouched(tmp_path):
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO notes (text) VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = _files(tmp_path)

    with pytest.raises(StoreError, match="not a hotmess"):
        connect(path)
    with pytest.raises(StoreError):
        SQLiteSpanExporter(path)._connection()
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "meta_sql",
    [
        "CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('application', 'someone-else')",
        "CREATE TABLE meta (id INTEGER, name TEXT); INSERT INTO meta VALUES (1, 'x')",
        "CREATE TABLE meta (key TEXT, value TEXT)",
    ],
    ids=["other-application", "other-columns", "empty-meta"],
)
def test_foreign_sqlite_file_with_a_meta_table_is_refused(tmp_path, meta_sql):
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.executescript(meta_sql)
    conn.close()
    before = _files(tmp_path)
    with pytest.raises(StoreError):
        connect(path)
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "content",
    [b"name,score\nalice,1\n" * 50, b"tiny", b"SQLite format 3 but not really" + b"\x00" * 200],
    ids=["csv", "short", "fake-header"],
)
def test_non_sqlite_file_is_refused_and_untouched(tmp_path, content):
    path = tmp_path / "data.db"
    path.write_bytes(content)
    with pytest.raises(StoreError):
        connect(path)
    assert _files(tmp_path) == {"data.db": content}


def test_database_from_a_newer_hotmess_is_refused(tmp_path):
    path = tmp_path / "future.db"
    connect(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(schema.SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    before = _files(tmp_path)
    with pytest.raises(StoreError, match="newer"):
        connect(path)
    assert _files(tmp_path) == before


def test_connect_without_create_on_a_missing_path_creates_nothing(tmp_path):
    path = tmp_path / "nested" / "missing.db"
    with pytest.raises(StoreError, match="no such database"):
        connect(path, create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="directory"):
        connect(tmp_path)


# --- the exporter ---------------------------------------------------------------------------


def _finished_run_spans() -> tuple[list, SpanRecord]:
    """A real finished run (root + one tool step) from the SDK, and its root's start record."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    root = tracer.start_span("invoke_agent bot", attributes={A.RUN: True, A.TASK_ID: "t", A.AGENT_NAME: "bot"})
    step_attrs = {A.STEP_KIND: "tool", A.TOOL_NAME: "x"}
    with trace.use_span(root, end_on_exit=False), tracer.start_as_current_span("execute_tool x", attributes=step_attrs):
        pass
    ctx = root.get_span_context()
    start = SpanRecord(
        trace_id=format(ctx.trace_id, "032x"),
        span_id=format(ctx.span_id, "016x"),
        parent_span_id=None,
        name=root.name,
        start_ns=root.start_time,
        attributes=dict(root.attributes),
    )
    root.set_attribute(A.OUTCOME, '"done"')
    root.end()
    provider.shutdown()
    step, finished_root = memory.get_finished_spans()
    return [(step, 0, 1), (finished_root, -1, 0)], start


def test_exporter_start_then_end_makes_an_incomplete_then_complete_run(tmp_path):
    path = tmp_path / "runs.db"
    ended, start = _finished_run_spans()
    exporter = SQLiteSpanExporter(path)
    try:
        exporter.write([start], [])
        conn = connect(path)
        runs = read_runs(conn)
        assert (list(runs["status"]), list(runs["end_ns"])) == (["incomplete"], [0])
        assert len(read_runs(conn, include_incomplete=False)) == 0
        exporter.write([], ended)
        runs = read_runs(conn)
        assert (list(runs["status"]), list(runs["outcome"]), list(runs["n_steps"])) == (["ok"], ['"done"'], [1])
        conn.close()
    finally:
        exporter.shutdown()


def test_exporter_end_written_before_its_start_keeps_the_finished_run(tmp_path):
    # The writer thread may take a run's end in one batch and its start in the next
    # (it empties the 'started' and 'ended' queues one after the other while the agent runs).
    path = tmp_path / "runs.db"
    ended, start = _finished_run_spans()
    exporter = SQLiteSpanExporter(path)
    try:
        exporter.write([], ended)
        exporter.write([start], [])
        conn = connect(path)
        runs = read_runs(conn)
        assert list(runs["status"]) == ["ok"]
        assert list(runs["outcome"]) == ['"done"']
        assert list(runs["n_steps"]) == [1] and list(runs["n_tool_calls"]) == [1]
        spans = read_spans(conn, start.trace_id)
        root = next(s for s in spans if s["parent_span_id"] is None)
        assert root["end_ns"] is not None and root["status_code"] == "UNSET"
        assert A.OUTCOME in json.loads(root["attributes"])
        conn.close()
    finally:
        exporter.shutdown()


def test_exporter_counts_steps_when_a_start_comes_in_a_later_batch_than_its_steps(tmp_path):
    path = tmp_path / "runs.db"
    ended, start = _finished_run_spans()
    exporter = SQLiteSpanExporter(path)
    try:
        exporter.write([], ended[:1])  # the step, before the run row exists
        exporter.write([start], [])
        conn = connect(path)
        runs = read_runs(conn)
        assert (list(runs["status"]), list(runs["n_steps"]), list(runs["n_tool_calls"])) == (["incomplete"], [1], [1])
        conn.close()
    finally:
        exporter.shutdown()


# --- readers ------------------------------------------------------------------------------------


def _populate(path: Path, n_runs: int) -> list[str]:
    conn = connect(path)
    ids = [f"r{i:05d}" for i in range(n_runs)]
    with conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO runs (run_id, task_id, agent, instance, status, start_ns, end_ns, outcome, success, score)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    rid,
                    f"task{i % 7}",
                    "alpha" if i % 2 else "beta",
                    str(i),
                    "incomplete" if i % 10 == 9 else "ok",
                    # start times descending, so the reader's ORDER BY is visible
                    10_000_000 - i,
                    None if i % 10 == 9 else 10_000_000 - i + 5,
                    json.dumps(i),
                    None if i % 3 == 0 else i % 3 - 1,
                    None if i % 4 else 0.5,
                )
                for i, rid in enumerate(ids)
            ],
        )
        conn.executemany(
            "INSERT INTO steps (run_id, span_id, step_index, depth, kind, name, input, start_ns)"
            " VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
            [
                (rid, f"{rid}-s{k}", k, "tool" if k else "llm", f"step{k}", json.dumps({"run": rid}), 10_000_000 - i + k)
                for i, rid in enumerate(ids)
                for k in (1, 0)  # inserted out of order
            ],
        )
        conn.execute("COMMIT")
    conn.close()
    return ids


def test_readers_return_typed_tables(tmp_path):
    path = tmp_path / "r.db"
    _populate(path, 20)
    conn = connect(path)
    try:
        runs, steps = read_runs(conn), read_steps(conn)
        assert runs.columns == list(RUN_COLUMNS)
        assert steps.columns == list(STEP_COLUMNS)
        for name, dtype in RUN_COLUMNS.items():
            assert runs[name].dtype == np.dtype(dtype), name
        for name, dtype in STEP_COLUMNS.items():
            assert steps[name].dtype == np.dtype(dtype), name
        assert (len(runs), len(steps)) == (20, 40)
        by_id = {r["run_id"]: r for r in runs.to_records()}
        assert by_id["r00009"]["status"] == "incomplete" and by_id["r00009"]["end_ns"] == 0
        assert by_id["r00000"]["success"] is None and by_id["r00001"]["success"] == 0.0
        assert by_id["r00002"]["success"] == 1.0
        assert by_id["r00004"]["score"] == 0.5 and by_id["r00001"]["score"] is None
        # ordered by task, then start time
        keys = [(r["task_id"], r["start_ns"]) for r in runs.to_records()]
        assert keys == sorted(keys)
        # steps ordered by run, then step_index
        assert [(s["run_id"], s["step_index"]) for s in steps.to_records()][:4] == [
            ("r00000", 0), ("r00000", 1), ("r00001", 0), ("r00001", 1),
        ]
        # an empty selection is still a table with every column
        empty = read_runs(conn, task_id="no-such-task")
        assert len(empty) == 0 and empty.columns == list(RUN_COLUMNS)
        assert len(read_steps(conn, task_id="no-such-task")) == 0
        assert count_runs(conn) == 20
        assert find_run(conn, "r0001") is None  # ambiguous prefix
        assert find_run(conn, "r00013") == "r00013"
    finally:
        conn.close()


def test_readers_filter_by_task_agent_status_and_kind(tmp_path):
    path = tmp_path / "r.db"
    _populate(path, 70)
    conn = connect(path)
    try:
        t3 = read_runs(conn, task_id="task3")
        assert sorted(t3["run_id"]) == [f"r{i:05d}" for i in range(70) if i % 7 == 3]
        alpha = read_runs(conn, agent="alpha")
        assert set(alpha["agent"]) == {"alpha"} and len(alpha) == 35
        both = read_runs(conn, task_id="task3", agent="alpha")
        assert sorted(both["run_id"]) == [f"r{i:05d}" for i in range(70) if i % 7 == 3 and i % 2]
        done = read_runs(conn, include_incomplete=False)
        assert len(done) == 63 and "incomplete" not in set(done["status"])
        tools = read_steps(conn, kinds=["tool"])
        assert set(tools["kind"]) == {"tool"} and len(tools) == 70
        t3_steps = read_steps(conn, task_id="task3")
        assert set(t3_steps["run_id"]) == set(t3["run_id"])
        few = read_runs(conn, columns=["run_id", "outcome"])
        assert few.columns == ["run_id", "outcome"]
    finally:
        conn.close()


def test_readers_take_more_run_ids_than_sqlite_parameters(tmp_path):
    path = tmp_path / "r.db"
    ids = _populate(path, 2500)
    wanted = ids[::2][:1100] + ["not-a-run"]  # 1101 ids, over the 900 chunk and 999 parameter limits
    conn = connect(path)
    try:
        runs = read_runs(conn, run_ids=wanted)
        assert sorted(runs["run_id"]) == sorted(wanted[:-1])
        keys = [(r["task_id"], r["start_ns"]) for r in runs.to_records()]
        assert keys == sorted(keys)  # one ordering over all of them, not per chunk
        filtered = read_runs(conn, run_ids=wanted, agent="beta", include_incomplete=False)
        assert sorted(filtered["run_id"]) == sorted(
            r for r in wanted[:-1] if int(r[1:]) % 2 == 0 and int(r[1:]) % 10 != 9
        )
        steps = read_steps(conn, run_ids=wanted)
        assert len(steps) == 2 * 1100
        order = [(s["run_id"], s["step_index"]) for s in steps.to_records()]
        assert order == sorted(order)
        assert all(json.loads(s["input"])["run"] == s["run_id"] for s in steps.to_records())
        tool_steps = read_steps(conn, run_ids=wanted, kinds=["tool"], task_id="task0")
        assert set(tool_steps["kind"]) == {"tool"}
        assert len(tool_steps) == sum(1 for r in wanted[:-1] if int(r[1:]) % 7 == 0)
        assert len(read_runs(conn, run_ids=[])) == 0
        assert len(read_steps(conn, run_ids=[])) == 0
    finally:
        conn.close()


def test_readers_refuse_unknown_columns(tmp_path):
    conn = connect(tmp_path / "r.db")
    with pytest.raises(ValueError, match="unknown column"):
        read_runs(conn, columns=["run_id", "1; DROP TABLE runs"])
    with pytest.raises(ValueError, match="unknown column"):
        read_steps(conn, columns=["nope"])
    assert len(read_runs(conn)) == 0


def test_insert_runs_refuses_a_row_that_breaks_the_schema(tmp_path):
    from hotmess.store.writer import insert_runs

    src = tmp_path / "file.json"
    src.write_text("[]")
    conn = connect(tmp_path / "w.db")
    good = {"run_id": "r1", "task_id": "t", "source": "x", "status": "ok", "start_ns": 1, "end_ns": 2,
            "n_steps": 0, "n_tool_calls": 0, "n_llm_calls": 0, "n_errors": 0,
            "input_tokens": 0, "output_tokens": 0}
    insert_runs(conn, [good], [], source="x", path=src)
    bad = {**good, "run_id": "r2", "task_id": None}
    with pytest.raises(StoreError, match="breaks the schema"):
        insert_runs(conn, [{**good, "run_id": "r3"}, bad], [], source="x", path=src)
    assert list(read_runs(conn)["run_id"]) == ["r1"]
