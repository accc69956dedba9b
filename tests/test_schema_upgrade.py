"""Older databases are upgraded in place without losing a row, by whichever way they are
opened first (the tracer, the CLI, several processes at once); files that are not hotmess
databases are refused with a clear message and left exactly as they were (bytes and mtime).

test_store.py has the v1 -> current upgrade at the store level and the foreign-file basics.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_records

import hotmess
from hotmess.errors import StoreError
from hotmess.store import schema
from hotmess.store.database import connect, schema_version

V1_TABLES = ("runs", "steps", "spans", "meta")


def make_v1(path: Path, n_runs: int = 5) -> dict[str, list]:
    """A database exactly as hotmess schema 1 wrote it, with runs, steps and spans."""
    conn = sqlite3.connect(path)
    conn.executescript(schema.SCHEMA_V1)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("application", "hotmess"), ("schema_version", "1")])
    for i in range(n_runs):
        run_id = f"{i:032x}"
        conn.execute(
            "INSERT INTO runs (run_id, task_id, agent, instance, status, start_ns, end_ns, outcome,"
            " success, n_steps, attributes) VALUES (?, ?, 'v1-agent', ?, ?, ?, ?, ?, ?, 2, ?)",
            (run_id, f"task-{i % 2}", str(i), "ok" if i % 3 else "error", 1000 + i, 2000 + i,
             json.dumps({"answer": i}), i % 2, json.dumps({"note": "é ✓"})),
        )
        for k in range(2):
            conn.execute(
                "INSERT INTO steps (run_id, span_id, step_index, depth, kind, name, tool, input, output)"
                " VALUES (?, ?, ?, 1, 'tool', ?, ?, ?, ?)",
                (run_id, f"{i:08x}{k:08x}", k, f"step{k}", f"tool{k}", json.dumps({"k": k}), json.dumps(k)),
            )
        conn.execute(
            "INSERT INTO spans (trace_id, span_id, name, start_ns, end_ns, attributes) VALUES (?, ?, 'root', ?, ?, ?)",
            (run_id, f"{i:016x}", 1000 + i, 2000 + i, json.dumps({"hotmess.run": True})),
        )
    conn.commit()
    rows = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in V1_TABLES if t != "meta"}
    conn.close()
    return rows


def assert_upgraded_with(path: Path, rows: dict[str, list]) -> None:
    conn = sqlite3.connect(path)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        assert meta == {"application": "hotmess", "schema_version": str(schema.SCHEMA_VERSION)}
        for table, before in rows.items():
            now = sorted(conn.execute(f"SELECT * FROM {table}").fetchall())
            assert [r for r in before if r not in now] == [], table  # every old row, unchanged
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 0
    finally:
        conn.close()


def test_the_tracer_upgrades_a_v1_database_and_adds_to_it(tmp_path):
    path = tmp_path / "old.db"
    rows = make_v1(path)
    hotmess.configure(db=path, flush_interval=0.05)

    @hotmess.trace(task_id="task-0", agent="new-agent")
    def agent() -> str:
        hotmess.action("lookup", args={"q": 1}, result=2)
        return "new"

    assert agent() == "new"
    runs, steps = run_records(path)
    hotmess.shutdown()
    assert_upgraded_with(path, rows)
    assert len(runs) == 6 and len(steps) == 11
    assert sorted(r["agent"] for r in runs) == ["new-agent"] + ["v1-agent"] * 5
    old = next(r for r in runs if r["run_id"] == f"{4:032x}")
    assert json.loads(old["outcome"]) == {"answer": 4} and json.loads(old["attributes"]) == {"note": "é ✓"}


def test_the_cli_upgrades_a_v1_database_on_first_read(tmp_path):
    path = tmp_path / "old.db"
    rows = make_v1(path)
    proc = subprocess.run(
        [sys.executable, "-c", "from hotmess.cli import main; main()", "runs", "--db", str(path), "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert len(listed if isinstance(listed, list) else listed["runs"]) == 5
    assert_upgraded_with(path, rows)


def _open(path: str, start, results) -> None:
    start.wait()
    try:
        conn = connect(path)
        results.put(schema_version(conn))
        conn.close()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_v1_database_at_once_upgrade_it_once(tmp_path):
    path = tmp_path / "old.db"
    rows = make_v1(path, n_runs=50)
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_open, args=(str(path), start, results)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert got == [schema.SCHEMA_VERSION] * 4
    assert_upgraded_with(path, rows)


def test_a_failing_migration_leaves_the_v1_database_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    make_v1(path)
    before = path.read_bytes()
    real = schema.MIGRATIONS[1]

    def half_done(conn):
        real(conn)  # the new tables and indexes exist inside the transaction...
        raise sqlite3.OperationalError("disk I/O error")  # ...when the disk fails

    monkeypatch.setitem(schema.MIGRATIONS, 1, half_done)
    with pytest.raises(sqlite3.OperationalError):
        connect(path)
    monkeypatch.undo()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "imports" not in tables  # rolled back whole
    finally:
        raw.close()
    conn = connect(path)  # and the next open upgrades it
    assert schema_version(conn) == schema.SCHEMA_VERSION
    conn.close()
    assert len(before) > 0


# --- not a hotmess database: refused, untouched ----------------------------------------------------


def _state(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def _foreign_wal_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.executemany("INSERT INTO invoices (total) VALUES (?)", [(1.5,), (2.5,)])
    conn.commit()
    conn.close()


FOREIGN = {
    "other-app.db": _foreign_wal_db,
    "notes.txt": lambda p: p.write_text("shopping list\n- milk\n"),
    "image.png": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200)),
    "half-header.db": lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84),
}


@pytest.mark.parametrize("name", sorted(FOREIGN))
@pytest.mark.parametrize("create", [True, False], ids=["record", "read"])
def test_a_file_that_is_not_a_hotmess_database_is_refused_and_untouched(tmp_path, name, create):
    path = tmp_path / name
    FOREIGN[name](path)
    before = _state(tmp_path)
    with pytest.raises(StoreError, match="not a|refusing") as info:
        connect(path, create=create)
    assert str(path) in str(info.value)
    if create:
        with pytest.raises(StoreError):
            hotmess.configure(db=path)
    assert _state(tmp_path) == before


def test_an_empty_file_is_refused_for_reading_and_becomes_a_database_for_recording(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    before = _state(tmp_path)
    with pytest.raises(StoreError, match="empty file"):
        connect(path, create=False)
    proc = subprocess.run(
        [sys.executable, "-c", "from hotmess.cli import main; main()", "runs", "--db", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1 and "empty file, not a hotmess database" in proc.stderr
    assert _state(tmp_path) == before
    # a file made empty on purpose (tempfile.mkstemp) is where runs may be recorded
    conn = connect(path)
    assert schema_version(conn) == schema.SCHEMA_VERSION
    conn.close()


def test_a_sqlite_database_without_tables_is_not_read_as_a_hotmess_one(tmp_path):
    path = tmp_path / "blank.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")  # a real SQLite header and page, no tables
    conn.close()
    before = _state(tmp_path)
    with pytest.raises(StoreError, match="no tables"):
        connect(path, create=False)
    assert _state(tmp_path) == before
