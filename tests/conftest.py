"""Shared fixtures: a real hotmess pipeline (OpenTelemetry SDK + SQLite file) per test."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import hotmess
from hotmess.store.database import connect
from hotmess.store.readers import read_runs, read_steps
from hotmess.tables import Table
from hotmess.tracer import context as tracer_context


@pytest.fixture(autouse=True)
def _isolated_hotmess(tmp_path, monkeypatch):
    """No test may write ./hotmess.db, leak a pipeline into the next test, or inherit
    the once-per-recorder warning state of an earlier test."""
    monkeypatch.setenv("HOTMESS_DB", str(tmp_path / "default-hotmess.db"))
    tracer_context._warned.clear()
    yield
    hotmess.shutdown()
    tracer_context._warned.clear()


@pytest.fixture(scope="session")
def engine_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo's database (3 runs per task and agent) and its Parquet export, made once for
    every engine test module (which only read them)."""
    import subprocess
    import sys

    base = tmp_path_factory.mktemp("engine")
    db, out = base / "demo.db", base / "parquet"
    src = Path(__file__).resolve().parents[1] / "src"
    for args in (("demo", "--runs", "3", "--db", str(db), "--json"), ("export", "parquet", "--db", str(db), "--out", str(out))):
        proc = subprocess.run([sys.executable, "-c", "from hotmess.cli import main; main()", *args],
                              capture_output=True, text=True, timeout=300,
                              env={"COLUMNS": "120", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(src)})
        assert proc.returncode == 0, proc.stderr
    return db, out


@pytest.fixture
def db(tmp_path) -> Path:
    """hotmess configured on ``tmp_path/runs.db``, writing every 50 ms; shut down afterwards."""
    path = tmp_path / "runs.db"
    hotmess.configure(db=path, flush_interval=0.05)
    yield path
    hotmess.shutdown()


def read_back(path: str | Path, **run_filters) -> tuple[Table, Table]:
    """Flush what was recorded, then read ``(runs, steps)`` through the store readers."""
    assert hotmess.flush(timeout=20), "hotmess.flush() timed out"
    conn = connect(path, create=False)
    try:
        return read_runs(conn, **run_filters), read_steps(conn)
    finally:
        conn.close()


def run_records(path: str | Path, **run_filters) -> tuple[list[dict], list[dict]]:
    """``read_back`` as lists of row dicts (runs ordered by task/start, steps by run/step_index)."""
    runs, steps = read_back(path, **run_filters)
    return runs.to_records(), steps.to_records()


def steps_of(steps: list[dict], run_id: str) -> list[dict]:
    return sorted((s for s in steps if s["run_id"] == run_id), key=lambda s: s["step_index"])


def spans_rows(path: str | Path, where: str = "", params: tuple = ()) -> list[dict]:
    """Rows of the lossless ``spans`` table (JSON columns decoded), read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        cur = conn.execute(f"SELECT * FROM spans {where} ORDER BY start_ns", params)
        names = [d[0] for d in cur.description]
        out = []
        for row in cur:
            rec = dict(zip(names, row, strict=True))
            for key in ("attributes", "events", "links", "resource"):
                if rec[key] is not None:
                    rec[key] = json.loads(rec[key])
            out.append(rec)
        return out
    finally:
        conn.close()


def root_span(path: str | Path, run_id: str) -> dict:
    roots = spans_rows(path, "WHERE trace_id = ? AND parent_span_id IS NULL", (run_id,))
    assert len(roots) == 1, roots
    return roots[0]
