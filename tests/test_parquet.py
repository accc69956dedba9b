"""``hotmess export parquet``: the store as Parquet partitioned by day, read back the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import hotmess as hm
from hotmess.parquet import (
    arrow_schema,
    day_of,
    read_parquet,
    read_parquet_runs,
    read_parquet_steps,
)
from hotmess.store.readers import read_runs, read_steps
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS

pq = pytest.importorskip("pyarrow.parquet")
SRC = Path(__file__).resolve().parents[1] / "src"


def hotmess(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The ``hotmess`` command of this checkout (its src first on the path)."""
    proc = subprocess.run(
        [sys.executable, "-c", "from hotmess.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC)},
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("parquet")
    db = base / "demo.db"
    hotmess("demo", "--runs", "3", "--db", str(db), "--json")
    out = base / "export"
    result = hotmess("export", "parquet", "--db", str(db), "--out", str(out), "--json")
    report = json.loads(result.stdout)
    assert report["runs"] > 0 and report["steps"] > 0 and report["files"] >= 2
    return db, out


def test_round_trip_gives_the_same_runs_and_steps(exported):
    db, out = exported
    runs, steps = read_parquet(out)
    with hm.open(db) as store:
        want_runs, want_steps = read_runs(store.conn), read_steps(store.conn)
    assert runs.columns == list(RUN_COLUMNS) and steps.columns == list(STEP_COLUMNS)
    assert runs.to_records() == want_runs.to_records()
    assert steps.to_records() == want_steps.to_records()
    for table, columns in ((runs, RUN_COLUMNS), (steps, STEP_COLUMNS)):
        for name, dtype in columns.items():
            assert str(table[name].dtype) == ("object" if dtype == "O" else dtype)


def test_layout_is_days_of_start_time_with_exactly_the_table_columns(exported):
    db, out = exported
    with hm.open(db) as store:
        runs = read_runs(store.conn)
    days = {day_of(s) for s in runs["start_ns"]}
    assert {p.name for p in (out / "runs").iterdir()} == {f"day={d}" for d in days}
    for part, columns in (("runs", RUN_COLUMNS), ("steps", STEP_COLUMNS)):
        for file in (out / part).glob("day=*/*.parquet"):
            schema = pq.read_schema(file)
            assert schema.names == list(columns)
            assert schema.equals(arrow_schema(columns))
    # every run is filed under the day it started, each step under its run's day
    for folder in (out / "runs").iterdir():
        day = folder.name.removeprefix("day=")
        starts = pq.read_table(folder, columns=["start_ns"]).column("start_ns").to_pylist()
        assert {day_of(s) for s in starts} == {day}


def test_filters_and_empty_reads(exported, tmp_path):
    _, out = exported
    runs = read_parquet_runs(out)
    task = runs["task_id"][0]
    one = read_parquet_runs(out, task_id=task)
    assert set(one["task_id"].tolist()) == {task} and len(one) == int((runs["task_id"] == task).sum())
    tools = read_parquet_steps(out, kinds=["tool"], columns=["run_id", "kind"])
    assert set(tools["kind"].tolist()) == {"tool"}
    (tmp_path / "runs").mkdir()
    (tmp_path / "steps").mkdir()
    empty_runs, empty_steps = read_parquet(tmp_path)
    assert len(empty_runs) == 0 and empty_runs.columns == list(RUN_COLUMNS) and len(empty_steps) == 0


def test_export_refuses_a_directory_that_holds_an_export(exported):
    db, out = exported
    result = hotmess("export", "parquet", "--db", str(db), "--out", str(out), check=False)
    assert result.returncode != 0 and "not empty" in result.stderr


def test_import_hotmess_imports_neither_pyarrow_nor_dask():
    code = "import sys, hotmess, hotmess.cli; print(sorted(m for m in ('pyarrow', 'dask', 'distributed', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
