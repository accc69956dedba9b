"""``hotmess serve``'s UI page times on a large store (a million steps by default).

The store is the one bench/analyze_scale.py generates (50,000 runs of 20 tool steps, 500
tasks), given start times over 30 days by bench/overtime_scale.py's ``prepare``. The server
is the real app (``hotmess.serve.create_app``) under uvicorn on a free loopback port, in this
process's thread; each page is fetched over HTTP ``--repeats`` times and the median reported:

- overview (``/``, an ``analyze --by agent`` kept until the database changes: the first fetch
  computes it and is reported apart as "cold"), the runs table page 1, a deep page (the keyset
  cursor of page 1,000, ``?after=``), an outcome search (``q=``), a step search (``steps=``,
  bounded to 5,000 runs' steps a page) that matches and one that matches nothing (the worst
  case: the page scans its whole budget of 5,000 runs' steps), a time-range filter, one run page, one task page, and
  the generation endpoint the live-update script polls.

    .venv/bin/python bench/serve_pages.py [--runs 50000] [--steps 20] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "src"))
from _common import fetch_seconds  # noqa: E402
from analyze_scale import generate  # noqa: E402  (the shared synthetic store)
from overtime_scale import prepare  # noqa: E402


def start_server(db: Path) -> tuple[str, object]:
    import uvicorn

    from hotmess.serve import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(create_app(str(db)), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=5).read()
            break
        except OSError:
            time.sleep(0.05)
    return url, server


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=600) as r:
        return json.loads(r.read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50_000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "pages.db"
        t = time.perf_counter()
        info = generate(db, args.runs, args.steps)
        prepare(db)
        generated = time.perf_counter() - t
        url, server = start_server(db)
        try:
            first = get_json(url + "/api/runs")
            run_id, task_id = first["runs"][0]["run_id"], first["runs"][0]["task_id"]
            cursor, deep_page = first["next"], 1
            while cursor and deep_page < 1000 and deep_page * 50 < args.runs - 50:  # the cursor of a deep page
                cursor = get_json(url + f"/api/runs?after={quote(cursor)}")["next"]
                deep_page += 1
            cold = fetch_seconds(url + "/")
            pages = {
                "overview": "/",
                "runs page 1": "/runs",
                f"runs page {deep_page + 1} (keyset cursor)": f"/runs?after={quote(cursor or '')}",
                "runs, outcome search": "/runs?q=cancel",
                "runs, step search": "/runs?steps=cancel_order",
                "runs, step search, no match (whole budget)": "/runs?steps=no-such-text-anywhere",
                "runs, time range": "/runs?since=2026-01-05&until=2026-01-06",
                "one run": f"/runs/{quote(run_id)}",
                "one task": f"/tasks/{quote(task_id, safe='')}",
                "generation (live poll)": "/api/generation",
            }
            fetch_seconds(url + pages["one task"])  # its analysis computed once, as for the overview
            rows = []
            for name, path in pages.items():
                times = [fetch_seconds(url + path) for _ in range(args.repeats)]
                rows.append({"page": name, "path": path, "median_s": statistics.median(times),
                             "max_s": max(times)})
        finally:
            server.should_exit = True
    result = {"runs": args.runs, "steps": args.runs * args.steps, "tasks": info.get("tasks"),
              "generate_s": generated, "overview_cold_s": cold, "repeats": args.repeats, "pages": rows}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['steps']:,} steps, {args.runs:,} runs (generated in {generated:.0f} s); "
          f"overview cold {cold:.2f} s; medians of {args.repeats}:")
    for r in rows:
        print(f"  {r['page']:<36} {r['median_s'] * 1000:8.1f} ms  (max {r['max_s'] * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
