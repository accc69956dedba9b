"""Importers read regular files only, each line and whole file within a cap: a FIFO, a device
or a gzip bomb is refused in one line naming it, and no database is created or changed."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev/zero are POSIX")

GENAI = Path(__file__).parent / "data" / "otlp" / "genai.jsonl"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from hotmess.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", **(env or {})})


@pytest.mark.parametrize("command", ["otlp", "tau-bench", "inspect"])
def test_a_fifo_is_refused_at_once(tmp_path, command):
    fifo = tmp_path / ("log.eval" if command == "inspect" else "log.jsonl")
    os.mkfifo(fifo)
    proc = cli("import", command, str(fifo), "--db", str(tmp_path / "x.db"))
    assert proc.returncode == 1 and "a FIFO, not a regular file" in proc.stderr, proc.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_device_is_refused(tmp_path):
    proc = cli("import", "otlp", "/dev/zero", "--db", str(tmp_path / "x.db"))
    assert proc.returncode == 1 and "/dev/zero: a device, not a regular file" in proc.stderr


def test_a_gzip_bomb_line_is_named_and_skipped_the_rest_imported(tmp_path):
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(b'{"resourceSpans": [' + b" " * 5_000_000 + b"]}\n")
        f.write(GENAI.read_bytes())
    db = tmp_path / "x.db"
    proc = cli("import", "otlp", str(bomb), "--db", str(db), "--json", env={"HOTMESS_MAX_RECORD_BYTES": "100000"})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["new"] == 2 and out["skipped"] == 1
    assert "line 1: a line of 5,000,022 bytes, over the record cap of 100,000" in out["errors"][0]


def test_a_file_read_whole_has_a_cap_too(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps([{"task_id": 0, "pad": "x" * 50_000}]))
    proc = cli("import", "tau-bench", str(big), "--db", str(tmp_path / "x.db"), env={"HOTMESS_MAX_FILE_BYTES": "10000"})
    assert proc.returncode == 1 and "more than 10,000 bytes to read whole (HOTMESS_MAX_FILE_BYTES)" in proc.stderr
    assert not (tmp_path / "x.db").exists()


def test_error_messages_quote_no_secret_and_no_megabytes(tmp_path):
    bad = tmp_path / "bad.jsonl"
    key = "sk-proj-" + "Zq8xW3vB7nM2kL9pR4tY6uI1oE5aS0dF"
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "s",
            "attributes": [{"key": "n", "value": {"intValue": key}}]}
    huge = dict(span, spanId="b7ad6b7169203332", attributes=[{"key": "n", "value": {"intValue": "9" * 100_000 + "x"}}])
    lines = [json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [s]}]}]}) for s in (span, huge)]
    bad.write_text("\n".join(lines) + "\n" + GENAI.read_text())
    proc = cli("import", "otlp", str(bad), "--db", str(tmp_path / "x.db"), "--json")
    assert proc.returncode == 0, proc.stderr
    errors = json.loads(proc.stdout)["errors"]
    assert len(errors) == 2 and key not in proc.stdout and "[REDACTED]" in errors[0]
    assert len(errors[1]) < 800
