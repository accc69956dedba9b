"""CPU time of hotmess's background writer per span, alone (no agent competing for the GIL).

The spans of RUNS traced runs of STEPS tool steps are collected as the span processor hands
them over, then written batch by batch with a fresh SQLiteSpanExporter (redaction on, as
configure() sets it) into a fresh database, REPEATS times; CPU time per span, minimum and
median over repeats (the minimum is the cost, the rest is the machine's other load).

    .venv/bin/python bench/writer_cost.py [--runs 500] [--steps 20] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summary  # noqa: E402


def measure(tmp: Path, runs: int, steps: int, repeats: int) -> dict:
    import hotmess
    from hotmess.redact import Redactor
    from hotmess.store.exporter import SQLiteSpanExporter
    from hotmess.tracer import config

    batches: list[tuple[list, list]] = []

    class Collect:
        def write(self, started: list, ended: list) -> None:
            batches.append((list(started), list(ended)))

        def shutdown(self) -> None:
            pass

    hotmess.configure(db=tmp / "collect.db")
    config._State.processors[0]._writer = Collect()  # keep the batches instead of writing them

    @hotmess.trace(task_id=lambda task: task, agent="bench")
    def agent(task: int) -> None:
        for i in range(steps):
            hotmess.action("get_order", {"order_id": i}, {"order_id": i, "status": "ok"})

    for task in range(runs):
        agent(task)
    hotmess.flush()
    hotmess.shutdown()
    n = sum(len(s) + len(e) for s, e in batches)
    samples = []
    for r in range(repeats):
        exporter = SQLiteSpanExporter(tmp / f"write-{r}.db", redactor=Redactor())
        exporter._connection()
        # started records are redacted in place: a fresh copy each repeat
        todo = [([copy.copy(rec) for rec in s], e) for s, e in batches]
        start = time.process_time()
        for started, ended in todo:
            exporter.write(started, ended)
        samples.append((time.process_time() - start) / n * 1e6)
        exporter.shutdown()
    return {"cpu_us_per_span": summary(samples), "min_us_per_span": min(samples), "spans": n,
            "batches": len(batches), "runs": runs, "steps_per_run": steps, "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp), args.runs, args.steps, args.repeats)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    s = result["cpu_us_per_span"]
    print(f"writer CPU per span over {result['spans']} spans in {result['batches']} batches: "
          f"min {result['min_us_per_span']:.1f} µs, median {s['median']:.1f} µs (max {s['max']:.1f})")


if __name__ == "__main__":
    main()
