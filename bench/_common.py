"""Helpers shared by the benchmarks: summaries over repeats, the machine, measured subprocesses."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def summary(samples: list[float]) -> dict:
    """Median, interquartile range and min/max of repeated measurements."""
    xs = sorted(samples)
    if len(xs) >= 4:
        q1, _, q3 = statistics.quantiles(xs, n=4)
    else:
        q1, q3 = xs[0], xs[-1]
    return {"median": statistics.median(xs), "q1": q1, "q3": q3, "min": xs[0], "max": xs[-1], "n": len(xs)}


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, not getrusage's ru_maxrss, which Linux carries over fork
    and exec (a measurement child would report at least its parent's RSS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict:
    """What the numbers were measured on."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "src"))
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "commit": commit + (" (src modified)" if dirty else ""),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


@dataclass
class Measured:
    """One subprocess run: its exit code, stdout, stderr tail, wall time and peak RSS."""

    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    wall_s: float
    peak_mb: float


def run_measured(cmd: list[str], timeout: float, cwd: Path = ROOT) -> Measured:
    """Run cmd, with its own peak RSS (os.wait4: RUSAGE_CHILDREN would mix all children)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)  # its own session: the benchmark's children too

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Measured(
            returncode=None if timed_out.is_set() else proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace")[-4000:],
            wall_s=wall,
            peak_mb=usage.ru_maxrss / 1024,
        )


def fetch_seconds(url: str, timeout: float = 600) -> float:
    """Seconds to GET ``url`` and read the whole answer, which must be a 200."""
    import urllib.request

    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        r.read()
        assert r.status == 200, url
    return time.perf_counter() - t
