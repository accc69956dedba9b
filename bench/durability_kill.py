"""Spans lost when a traced agent process is SIGKILLed at a random moment.

A child process runs a traced agent loop (runs of STEPS tool steps, SLEEP seconds of "work"
per step) recording into SQLite with hotmess's defaults, and appends each step span's id and
end time to a side file as it ends: line-buffered (`--log file`: each line is one write(2),
which survives the process's death) or into a shared memory map of the file (`--log mmap`:
no system call, so the agent thread never lets go of the GIL; the page cache keeps it too). The parent SIGKILLs it at a random moment, then counts the spans that
ended more than 1 s before the kill but are missing from the database. Target: none.

The 1 s is the promise: the writer thread wakes every 0.5 s (configure(flush_interval=)) and
commits each batch in one transaction to a WAL-mode database, so a span that ended is on disk
(in the OS's cache, which a killed process does not take with it) within about 0.5 s plus the
time to write its batch. With `--sleep 0` the agent makes spans faster than the writer can
store them; backpressure (configure(max_lag=), default 0.5 s) then makes it wait for the
writer. `--max-lag none` turns that off, to see what it saves. Each kill also reports the
agent's pace (spans ended per second) and, when spans were lost, how long before the kill the
oldest of them ended (how far behind the store was).

    .venv/bin/python bench/durability_kill.py [--repeats 10] [--sleep 0.001] [--log file|mmap]
                                              [--max-lag SECONDS|none] [--json]
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRACE_NS = 1_000_000_000  # spans that ended this long before the kill must be stored


MMAP_BYTES = 64 << 20


class _MappedLog:
    """Appends text to a file through a shared memory map: no system call per line."""

    def __init__(self, path: Path):
        with open(path, "wb") as f:
            f.truncate(MMAP_BYTES)
        self._fd = os.open(path, os.O_RDWR)
        self._map = mmap.mmap(self._fd, MMAP_BYTES)
        self._at = 0

    def write(self, text: str) -> None:
        data = text.encode()
        if self._at + len(data) <= MMAP_BYTES:
            self._map[self._at : self._at + len(data)] = data
            self._at += len(data)


def child(db: Path, side: Path, steps: int, sleep: float, log_kind: str, max_lag: str | None) -> None:
    from opentelemetry import trace as otel_trace

    import hotmess

    if max_lag is None:
        hotmess.configure(db=db)  # the defaults
    else:
        hotmess.configure(db=db, max_lag=None if max_lag == "none" else float(max_lag))
    log = _MappedLog(side) if log_kind == "mmap" else open(side, "w", buffering=1)  # noqa: SIM115
    log.write("ready\n")

    @hotmess.trace(task_id=lambda task: f"task-{task % 10}", agent="durability")
    def agent(task: int) -> None:
        for i in range(steps):
            with hotmess.step("get_order", kind="tool", input={"order_id": i}) as s:
                span = otel_trace.get_current_span()
                if sleep:
                    time.sleep(sleep)
                s.output = {"order_id": i, "status": "ok"}
            log.write(f"{span.get_span_context().span_id:016x} {span.end_time}\n")

    task = 0
    while True:
        agent(task)
        task += 1


def _stored_span_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)  # recovers the WAL the killed writer left
    try:
        return {r[0] for r in conn.execute("SELECT span_id FROM spans")}
    finally:
        conn.close()


def _side_text(side: Path) -> str:
    return side.read_bytes().split(b"\0", 1)[0].decode() if side.exists() else ""


def kill_once(tmp: Path, steps: int, sleep: float, log_kind: str, max_lag: str | None, low: float, high: float,
              rng: random.Random) -> dict:
    db, side = tmp / "kill.db", tmp / "ended.txt"
    for path in (db, side, Path(f"{db}-wal"), Path(f"{db}-shm")):
        path.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(db), str(side),
                             "--steps", str(steps), "--sleep", str(sleep), "--log", log_kind,
                             *(["--max-lag", max_lag] if max_lag is not None else [])])
    try:
        deadline = time.monotonic() + 60
        while not _side_text(side).startswith("ready"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the traced child did not start (exit code {proc.poll()})")
            time.sleep(0.01)
        time.sleep(rng.uniform(low, high))
        kill_ns = time.time_ns()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    ended = []
    for line in _side_text(side).splitlines()[1:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():  # the last line may be cut by the kill
            ended.append((parts[0], int(parts[1])))
    stored = _stored_span_ids(db)
    old = [sid for sid, end in ended if end < kill_ns - GRACE_NS]
    recent = [sid for sid, end in ended if end >= kill_ns - GRACE_NS]
    lost_ends = [end for sid, end in ended if sid not in stored]
    ran_s = (kill_ns - ended[0][1]) / 1e9 if ended else 0.0
    return {
        "ended": len(ended),
        "ended_over_1s_before": len(old),
        "lost_over_1s_before": sum(sid not in stored for sid in old),
        "lost_within_last_1s": sum(sid not in stored for sid in recent),
        "stored_spans": len(stored),
        "spans_per_s": len(ended) / ran_s if ran_s > 0 else 0.0,
        # how long before the kill the oldest lost span ended: how far behind the store was
        "oldest_lost_s": (kill_ns - min(lost_ends)) / 1e9 if lost_ends else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10, help="tool steps per run")
    parser.add_argument("--sleep", type=float, default=0.001, help="seconds of agent work per step")
    parser.add_argument("--after", default="1.5,4", help="kill after a random time in LOW,HIGH seconds")
    parser.add_argument("--log", choices=("file", "mmap"), default="file", help="how the child logs span ends")
    parser.add_argument("--max-lag", help="configure(max_lag=) in the child: seconds, or 'none' for no "
                        "backpressure (default: hotmess's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # internal: the traced process
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.steps, args.sleep, args.log, args.max_lag)
        return
    if args.max_lag is not None and args.max_lag != "none":
        float(args.max_lag)  # refuse a typo here, not in every child

    low, high = (float(x) for x in args.after.split(","))
    rng = random.Random(args.seed)
    kills = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            kills.append(kill_once(Path(tmp), args.steps, args.sleep, args.log, args.max_lag, low, high, rng))
    report = {
        "repeats": args.repeats, "steps_per_run": args.steps, "sleep_s": args.sleep, "log": args.log,
        "max_lag": args.max_lag or "default", "kill_after_s": [low, high], "kills": kills,
        "ended_over_1s_before": sum(k["ended_over_1s_before"] for k in kills),
        "lost_over_1s_before": sum(k["lost_over_1s_before"] for k in kills),
        "lost_within_last_1s": sum(k["lost_within_last_1s"] for k in kills),
        "spans_per_s": statistics.median(k["spans_per_s"] for k in kills),
        "oldest_lost_s": max(k["oldest_lost_s"] for k in kills),
    }
    report["target_met"] = report["lost_over_1s_before"] == 0 and report["ended_over_1s_before"] > 0
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    print(f"{args.repeats} SIGKILLs after {low}-{high} s of a traced loop ({args.steps} steps/run, "
          f"{args.sleep * 1000:g} ms/step, max_lag {report['max_lag']})")
    for i, k in enumerate(kills):
        print(f"  kill {i + 1:2d}: {k['ended']:6d} spans ended ({k['spans_per_s']:,.0f}/s), "
              f"{k['ended_over_1s_before']:6d} of them over 1 s before; lost: {k['lost_over_1s_before']} of those, "
              f"{k['lost_within_last_1s']} of the last second's; oldest lost ended {k['oldest_lost_s']:.2f} s before")
    print(f"  lost spans that ended over 1 s before the kill: {report['lost_over_1s_before']} "
          f"of {report['ended_over_1s_before']} (target: none) -> {'met' if report['target_met'] else 'MISSED'}")


if __name__ == "__main__":
    main()
