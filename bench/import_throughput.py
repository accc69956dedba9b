"""Import throughput against the storage limit, side by side.

Two inputs:

- tau-bench: ``/work/shared/data/tau-bench/gpt-4o-airline.json`` through ``parse_taubench`` and
  ``insert_runs`` (what ``hotmess import tau-bench`` does), counted in steps (its spans).
- otlp: a generated OTLP JSON file in the Collector file exporter's shape (one
  ExportTraceServiceRequest per line, ``--per-line`` spans each, traces cut across lines):
  agent traces with GenAI attributes (an ``invoke_agent`` root, then chat / execute_tool steps
  with messages, arguments, results and tokens), ``--spans`` spans in all; through
  ``parse_otlp_json`` and ``insert_otlp`` (what ``hotmess import otlp`` does); once more with
  ``redact=False`` (``--no-redact``) to show what secrets redaction costs.

Each is compared with the **limit**: plain ``sqlite3.executemany`` of exactly the rows that
import wrote (runs, steps and, for OTLP, the lossless spans rows), already built as tuples,
into a fresh database with the same schema, in one transaction. Both sides start from a fresh
file each repeat; the two are interleaved so machine noise hits both alike. Reports medians
over repeats of spans per second and the ratio import / limit (target: at least 0.5).

    .venv/bin/python bench/import_throughput.py [--repeats 5] [--spans 100000] [--per-line 200] [--json]

What limits it (CPU time, medians, a loaded 2-core box; details in bench/run.py's registry text):
OTLP, per span, the limit writes a span in ~20 µs (a spans row and a steps row); import adds
json.loads ~9, OTLP decoding ~6.5, redaction and cutting ~9.5, the exporter's step_row /
span_row ~14 (json of attributes dominates) and insert_runs ~the limit: a ratio near 0.3.
tau-bench: json.loads of the file is half the limit, the canonical JSON of every whole record
(hashed into its run id) about as much again, then mapping the messages and redacting 2 MB of
text columns (one marker search per value, ~15 ns a character).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hotmess.integrations.otlp_json import insert_otlp, parse_otlp_json
from hotmess.integrations.taubench import parse_taubench
from hotmess.store.database import connect, transaction
from hotmess.store.rows import SPAN_INSERT
from hotmess.store.writer import insert_runs
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS

TAU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-bench" / "gpt-4o-airline.json"

_RUNS = f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
_STEPS = f"INSERT INTO steps ({', '.join(STEP_COLUMNS)}) VALUES ({', '.join('?' * len(STEP_COLUMNS))})"


# ---------------------------------------------------------------------------------------------
# the generated OTLP file


def _attr(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


_TOOLS = ("get_order", "search_orders", "refund_order", "update_address", "send_email")


def _trace(rng: random.Random, n: int, t0: int, task: int) -> list[dict]:
    """One agent trace of ``n`` spans: a root, then alternating chat and tool steps."""
    trace_id = f"{rng.getrandbits(128):032x}"
    root_id = f"{rng.getrandbits(64):016x}"
    question = f"Please help with order {task}: it arrived broken and I want a refund."
    spans = [{
        "traceId": trace_id, "spanId": root_id, "name": "invoke_agent support-bot", "kind": 1,
        "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + n * 1_000_000),
        "attributes": [
            _attr("gen_ai.operation.name", "invoke_agent"), _attr("gen_ai.agent.name", "support-bot"),
            _attr("app.task", f"task-{task % 50}"),
            _attr("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Refund issued."}]}])),
        ],
        "status": {"code": 1},
    }]
    for i in range(1, n):
        start = t0 + i * 1_000_000
        span = {
            "traceId": trace_id, "spanId": f"{rng.getrandbits(64):016x}", "parentSpanId": root_id,
            "kind": 1, "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 900_000),
        }
        if i % 2:
            span["name"] = "chat gpt-4o-mini"
            span["kind"] = 3
            span["attributes"] = [
                _attr("gen_ai.operation.name", "chat"), _attr("gen_ai.request.model", "gpt-4o-mini"),
                _attr("gen_ai.usage.input_tokens", 200 + 40 * i), _attr("gen_ai.usage.output_tokens", rng.randint(10, 60)),
                _attr("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}])),
                _attr("gen_ai.output.messages", json.dumps([{"role": "assistant", "parts": [
                    {"type": "tool_call", "id": f"call_{i}", "name": _TOOLS[i % 5], "arguments": {"order_id": task}}]}])),
            ]
        else:
            tool = _TOOLS[(i - 1) % 5]
            span["name"] = f"execute_tool {tool}"
            span["attributes"] = [
                _attr("gen_ai.operation.name", "execute_tool"), _attr("gen_ai.tool.name", tool),
                _attr("gen_ai.tool.call.id", f"call_{i - 1}"),
                _attr("gen_ai.tool.call.arguments", json.dumps({"order_id": task, "reason": "damaged"})),
                _attr("gen_ai.tool.call.result", json.dumps({"order_id": task, "status": "delivered", "total": 59.9})),
            ]
        spans.append(span)
    return spans


def write_otlp(path: Path, n_spans: int, per_line: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    spans: list[dict] = []
    task = 0
    while len(spans) < n_spans:
        spans.extend(_trace(rng, min(rng.randint(6, 14), n_spans - len(spans)), 1_718_000_000_000_000_000 + task * 10**9, task))
        task += 1
    resource = {"attributes": [_attr("service.name", "support-api"), _attr("deployment.environment", "prod")]}
    with open(path, "w") as f:
        for i in range(0, len(spans), per_line):
            request = {"resourceSpans": [{"resource": resource, "scopeSpans": [
                {"scope": {"name": "support.agent"}, "spans": spans[i : i + per_line]}]}]}
            f.write(json.dumps(request, separators=(",", ":")) + "\n")
    return len(spans)


# ---------------------------------------------------------------------------------------------
# the two sides


def import_otlp(path: Path, db: Path, redact: bool = True) -> int:
    batch = parse_otlp_json(path, task_attr="app.task", redact=redact)
    conn = connect(db)
    insert_otlp(conn, batch)
    conn.close()
    return len(batch.spans)


def import_tau(path: Path, db: Path) -> int:
    batch = parse_taubench(path)
    conn = connect(db)
    insert_runs(conn, batch.runs, batch.steps, source="tau-bench", path=path)
    conn.close()
    return len(batch.steps)


def limit_rows(kind: str, path: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """The rows import writes, as tuples (built outside the timing)."""
    if kind == "otlp":
        batch = parse_otlp_json(path, task_attr="app.task")
        spans = batch.spans
    else:
        batch = parse_taubench(path)
        spans = []
    runs = [tuple(r.get(c) for c in RUN_COLUMNS) for r in batch.runs]
    steps = [tuple(s.get(c) for c in STEP_COLUMNS) for s in batch.steps]
    return runs, steps, spans


def write_limit(rows: tuple[list[tuple], list[tuple], list[tuple]], db: Path) -> int:
    runs, steps, spans = rows
    conn = connect(db)  # the same schema, WAL and pragmas as import
    with transaction(conn):
        conn.executemany(_RUNS, runs)
        conn.executemany(_STEPS, steps)
        conn.executemany(SPAN_INSERT, spans)
    conn.close()
    return len(spans) or len(steps)


def timed(fn: Callable[[Path], int], tmp: Path, label: str, i: int) -> tuple[float, float, int]:
    """Wall and CPU seconds of one run into a fresh database file."""
    db = tmp / f"{label}-{i}.db"
    start, cpu = time.perf_counter(), time.process_time()
    n = fn(db)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return elapsed, cpu, n


def measure(kind: str, path: Path, repeats: int, tmp: Path, label: str | None = None) -> dict:
    rows = limit_rows(kind, path)
    importer = {"otlp": import_otlp, "tau-bench": import_tau,
                "otlp-no-redact": lambda p, db: import_otlp(p, db, redact=False)}[label or kind]
    times: dict[str, list[float]] = {"import": [], "limit": [], "import_cpu": [], "limit_cpu": []}
    n = 0
    for i in range(repeats):
        wall, cpu, n = timed(lambda db: importer(path, db), tmp, f"{kind}-import", i)
        times["import"].append(wall)
        times["import_cpu"].append(cpu)
        wall, cpu, _ = timed(lambda db: write_limit(rows, db), tmp, f"{kind}-limit", i)
        times["limit"].append(wall)
        times["limit_cpu"].append(cpu)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "input": label or kind, "file": str(path), "file_mb": round(path.stat().st_size / 1e6, 1),
        "spans": n, "runs": len(rows[0]), "repeats": repeats,
        "import_s": round(med["import"], 3), "limit_s": round(med["limit"], 3),
        "import_spans_per_s": round(n / med["import"]), "limit_spans_per_s": round(n / med["limit"]),
        "ratio": round(med["limit"] / med["import"], 3),
        # CPU time: what the machine's other load disturbs least
        "import_cpu_s": round(med["import_cpu"], 3), "limit_cpu_s": round(med["limit_cpu"], 3),
        "cpu_ratio": round(med["limit_cpu"] / med["import_cpu"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--per-line", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if TAU.exists():
            results.append(measure("tau-bench", TAU, args.repeats, tmp))
        otlp = tmp / "traces.jsonl"
        write_otlp(otlp, args.spans, args.per_line)
        results.append(measure("otlp", otlp, args.repeats, tmp))
        # secrets redaction (on by default, as when tracing) is a third of the parse
        results.append(measure("otlp", otlp, args.repeats, tmp, label="otlp-no-redact"))
    if args.json:
        json.dump({"results": results, "target_ratio": 0.5}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print(f"{'input':<14} {'spans':>8} {'MB':>6} {'import/s':>10} {'limit/s':>10} {'ratio':>6} {'cpu ratio':>10}  (medians of {args.repeats})")
    for r in results:
        print(f"{r['input']:<14} {r['spans']:>8} {r['file_mb']:>6} {r['import_spans_per_s']:>10} "
              f"{r['limit_spans_per_s']:>10} {r['ratio']:>6} {r['cpu_ratio']:>10}")
    print("limit: plain sqlite3.executemany of the same rows into the same schema; target ratio >= 0.5")


if __name__ == "__main__":
    main()
