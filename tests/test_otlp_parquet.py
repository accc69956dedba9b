"""``hotmess import otlp FILES --to parquet DIR``: streamed in small batches, the Parquet
directory holds the runs and steps that importing into SQLite and exporting gives."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from test_cli import hotmess_here

import hotmess as hm
from hotmess.errors import HotmessError
from hotmess.otlp_parquet import import_otlp_parquet

pytest.importorskip("pyarrow")

from hotmess.parquet import read_parquet  # noqa: E402


def _attr(key: str, value: object) -> dict:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _trace(rng: random.Random, n: int, t0: int, task: int) -> list[dict]:
    """An agent trace as a collector writes it: each span when it ends, the root last."""
    trace_id, root_id = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
    spans = []
    for i in range(1, n):
        start = t0 + i * 1_000_000
        tool = ("get_order", "refund_order", "send_email")[(i + task) % 3]
        spans.append({
            "traceId": trace_id, "spanId": f"{rng.getrandbits(64):016x}", "parentSpanId": root_id,
            "name": f"execute_tool {tool}", "kind": 1, "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 900_000),
            "attributes": [_attr("gen_ai.operation.name", "execute_tool"), _attr("gen_ai.tool.name", tool),
                           _attr("gen_ai.tool.call.arguments", json.dumps({"order_id": task}))],
        })
    spans.append({
        "traceId": trace_id, "spanId": root_id, "name": "invoke_agent support-bot", "kind": 1,
        "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + n * 1_000_000),
        "attributes": [_attr("gen_ai.operation.name", "invoke_agent"), _attr("gen_ai.agent.name", "bot"),
                       _attr("app.task", f"task-{task % 4}"),
                       _attr("hotmess.outcome", f"done {rng.randint(0, 2)}")],
        "status": {"code": 1},
    })
    return spans


def _write(path: Path, traces: list[list[dict]]) -> None:
    """Traces interleaved a few spans at a time, two spans a line, as concurrent runs end."""
    spans: list[dict] = []
    queues = [list(t) for t in traces]
    while any(queues):
        for q in queues:
            spans.extend(q[:2])
            del q[:2]
    resource = {"attributes": [_attr("service.name", "support-api")]}
    with open(path, "w") as f:
        for i in range(0, len(spans), 2):
            f.write(json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [
                {"scope": {"name": "agent"}, "spans": spans[i:i + 2]}]}]}) + "\n")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    rng = random.Random(7)
    base = tmp_path_factory.mktemp("otlp")
    day = 86_400 * 10**9
    traces = [_trace(rng, rng.randint(2, 7), 1_767_225_600 * 10**9 + (k % 3) * day + k, k) for k in range(40)]
    rootless = _trace(rng, 4, 1_767_225_600 * 10**9, 99)[:-1]  # its root never came: incomplete
    first, second = base / "a.jsonl", base / "b.jsonl"
    split = _trace(rng, 6, 1_767_225_600 * 10**9 + 5, 98)  # cut between the two files
    _write(first, traces[:20] + [rootless, split[:3]])
    _write(second, [split[3:]] + traces[20:])
    return [first, second]


def test_streamed_parquet_is_the_sqlite_import_exported(files, tmp_path):
    db = tmp_path / "t.db"
    with hm.open(db, create=True) as store:
        store.import_otlp(files, task_attr="app.task")
        store.export_parquet(tmp_path / "exported")
    report = import_otlp_parquet(files, tmp_path / "streamed", task_attr="app.task", batch_spans=7)
    assert report["batches"] > 3 and report["late_spans"] == 0 and report["rootless"] == 1
    assert report["max_buffered_spans"] < report["spans"]  # bounded: closed traces were let go
    want_runs, want_steps = read_parquet(tmp_path / "exported")
    got_runs, got_steps = read_parquet(tmp_path / "streamed")
    assert report["runs"] == len(want_runs) == 42 and report["steps"] == len(want_steps)
    for want, got in ((want_runs, got_runs), (want_steps, got_steps)):
        assert got.columns == want.columns
        for name in want.columns:
            assert [None if v != v else v for v in got[name].tolist()] == \
                   [None if v != v else v for v in want[name].tolist()], name


def test_cli_to_parquet_and_its_errors(files, tmp_path):
    out = tmp_path / "pq"
    result = json.loads(hotmess_here("import", "otlp", *map(str, files), "--to", "parquet", str(out),
                                     "--task-attr", "app.task", "--json").stdout)
    assert result["runs"] == 42 and result["out"] == str(out)
    again = hotmess_here("import", "otlp", str(files[0]), "--to", "parquet", str(out), ok=False)
    assert again.returncode != 0 and "not empty" in again.stderr
    wrong = hotmess_here("import", "otlp", str(files[0]), "--to", "csv", str(tmp_path / "x"), ok=False)
    assert wrong.returncode != 0 and "parquet" in wrong.stderr
    with pytest.raises(HotmessError, match="no such file"):
        import_otlp_parquet([tmp_path / "missing.jsonl"], tmp_path / "y")
