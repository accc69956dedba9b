"""Progress callbacks (hotmess.progress) and the places that report through them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from hotmess import progress as P
from hotmess.store.database import connect
from hotmess.store.readers import read_for_analysis, read_goal_steps
from hotmess.store.writer import insert_runs


def recorder():
    calls: list[tuple[str, int, int | None]] = []
    return calls, lambda unit, done, total: calls.append((unit, done, total))


def test_without_a_callback_the_iterable_is_handed_back_untouched(tmp_path):
    items = [1, 2, 3]
    assert P.counted(items, None, "things", 3) is items
    path = tmp_path / "f"
    path.write_bytes(b"a\nb\n")
    with open(path, "rb") as f:
        assert P.reading(f, None, 4) is f


def test_counted_reports_start_every_and_end():
    calls, cb = recorder()
    assert list(P.counted(range(10), cb, "things", 10, every=4)) == list(range(10))
    assert calls == [("things", 0, 10), ("things", 4, 10), ("things", 8, 10), ("things", 10, 10)]


def test_reading_reports_the_position_on_disk_also_for_gzip(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "EVERY_BYTES", 100)
    lines = b"".join(b"%06d some text to make the line longer\n" % i for i in range(2000))
    for name, data in (("plain", lines), ("gz", gzip.compress(lines))):
        path = tmp_path / name
        path.write_bytes(data)
        calls, cb = recorder()
        with gzip.open(path, "rb") if name == "gz" else open(path, "rb") as f:
            assert b"".join(P.reading(f, cb, len(data))) == lines
        positions = [done for _, done, _ in calls]
        assert calls[0] == ("bytes", 0, len(data)) and calls[-1] == ("bytes", len(data), len(data))
        assert len(calls) > 5 and positions == sorted(positions) and max(positions) <= len(data)


def _rows(n_runs: int, n_steps: int):
    runs = [{"run_id": f"r{i}", "task_id": f"t{i % 3}", "agent": "a", "source": "test", "status": "ok",
             "start_ns": i, "end_ns": i + 1, "n_steps": n_steps, "n_tool_calls": n_steps, "n_llm_calls": 0,
             "n_errors": 0, "input_tokens": 0, "output_tokens": 0} for i in range(n_runs)]
    steps = [{"run_id": f"r{i}", "span_id": f"s{i}-{j}", "step_index": j, "depth": 1, "kind": "tool",
              "name": "get", "tool": "get", "input": json.dumps({"j": j}), "start_ns": j, "end_ns": j,
              "input_tokens": 0, "output_tokens": 0}
             for i in range(n_runs) for j in range(n_steps)]
    return runs, steps


def test_store_writes_and_reads_report_rows_and_give_the_same_tables(tmp_path: Path):
    runs, steps = _rows(50, 100)
    conn = connect(tmp_path / "p.db")
    calls, cb = recorder()
    insert_runs(conn, runs, steps, source="test", path=tmp_path / "p.db", progress=cb)
    assert calls[0] == ("steps stored", 0, 5000) and calls[-1] == ("steps stored", 5000, 5000)

    calls, cb = recorder()
    watched = read_for_analysis(conn, progress=cb)
    plain = read_for_analysis(conn)
    for a, b in zip(watched, plain, strict=True):
        assert a.to_records() == b.to_records()
    assert ("runs read", 50, 50) in calls and calls[-1] == ("steps read", 5000, 5000)
    calls, cb = recorder()
    assert read_goal_steps(conn, task_id="t1", progress=cb).to_records() == read_goal_steps(conn, task_id="t1").to_records()
    assert calls[-1] == ("steps read", 1700, 1700)


def _runs_table():
    from hotmess.tables import RUN_COLUMNS, Table

    rows = [{"run_id": f"r{i}", "task_id": f"t{i % 40}", "status": "ok", "start_ns": 10**9 * 3600 * i,
             "outcome": json.dumps(f"answer {i % 3} for {i % 40}"), "success": float(i % 2),
             "attributes": None} for i in range(400)]
    return Table.from_records(rows, RUN_COLUMNS)


def test_analyzers_report_tasks_and_windows_and_give_the_same_results():
    from hotmess.analyzers import analyze
    from hotmess.analyzers.drift import drift
    from hotmess.analyzers.goals import goal_coherence
    from hotmess.tables import STEP_COLUMNS, Table

    runs = _runs_table()
    calls, cb = recorder()
    assert analyze(runs, outcome="text", progress=cb).to_dict() == analyze(runs, outcome="text").to_dict()
    assert calls[0] == ("tasks clustered", 0, 40) and calls[-1] == ("tasks clustered", 40, 40)

    calls, cb = recorder()
    assert drift(runs, window="1d", progress=cb).to_dict() == drift(runs, window="1d").to_dict()
    units = [u for u, _, _ in calls]
    assert units.index("window tests") < units.index("windows")
    assert calls[-1] == ("windows", 17, 17)

    steps = Table.from_records(
        [{"run_id": f"r{i}", "span_id": f"s{i}", "step_index": 0, "kind": "goal", "goal": f"find {i % 2}"}
         for i in range(400)], STEP_COLUMNS)
    calls, cb = recorder()
    assert (goal_coherence(runs, steps, method="text", progress=cb).to_dict()
            == goal_coherence(runs, steps, method="text").to_dict())
    assert calls[-1] == ("tasks clustered", 40, 40)
