"""Hostile input to the importers (tau-bench, OTLP JSON) and to the CLI: whatever the bytes,
the answer is either rows or an InputError naming the file (and the record when there is
one) -- never another exception -- and a failed import leaves the database as it was.

The hand-written cases of each format live beside their parsers (test_taubench_parse.py,
test_otlp_import.py); here are generated cases, deep nesting, huge and odd text, a file of a
million lines, and the database before and after.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_taubench_parse import _record

from hotmess.errors import InputError
from hotmess.integrations.otlp_json import parse_otlp_json
from hotmess.integrations.taubench import parse_taubench
from hotmess.store.database import connect
from hotmess.store.writer import insert_runs

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _answer(parse, path: Path):
    """The parser's result, or the InputError it raised (checked to name the file)."""
    try:
        return parse(path)
    except InputError as err:
        assert err.path == str(path) and str(err).startswith(str(path))
        return err


# --- tau-bench: generated files -----------------------------------------------------------------


@SETTINGS
@given(data=JSON)
def test_taubench_any_json_is_rows_or_an_input_error(tmp_path, data):
    path = tmp_path / "any.json"
    path.write_text(json.dumps(data))
    _answer(parse_taubench, path)


def _paths(value, prefix=()):
    """Every (path) into a JSON value, for mutating one place of a valid record."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _mutated(value, where: tuple, new, drop: bool):
    """``value`` with the place at ``where`` set to ``new``, or removed (from an object)."""
    target = value
    for key in where[:-1]:
        target = target[key]
    if drop and isinstance(target, dict):
        del target[where[-1]]
    else:
        target[where[-1]] = new
    return value


_RECORD_PATHS = [p for p in _paths(_record()) if p]


@SETTINGS
@given(where=st.sampled_from(_RECORD_PATHS), value=JSON, drop=st.booleans())
def test_taubench_one_bad_field_names_the_record(tmp_path, where, value, drop):
    """A valid record, then one field replaced by any JSON value or removed, after a good one."""
    record = _mutated(_record(task_id=9), where, value, drop)
    path = tmp_path / "mutated.json"
    path.write_text(json.dumps([_record(), record]))
    answer = _answer(parse_taubench, path)
    if isinstance(answer, InputError):
        assert str(answer.record).startswith("1")  # the mutated record, not the good one
    else:
        assert len(answer.runs) + len(answer.duplicates) == 2  # task_id 9 -> 3 repeats the first


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_taubench_a_file_cut_short_anywhere_is_an_input_error(tmp_path, cut):
    whole = json.dumps([_record(), _record(trial=2)], indent=1).encode()
    path = tmp_path / "cut.json"
    path.write_bytes(whole[: cut % len(whole)])
    assert isinstance(_answer(parse_taubench, path), InputError)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_taubench_random_bytes(tmp_path, data):
    path = tmp_path / "bytes.json"
    path.write_bytes(data)
    _answer(parse_taubench, path)


# --- tau-bench: the cases generators rarely reach --------------------------------------------------


def _taubench_error(tmp_path: Path, text: str, name: str = "hostile.json") -> InputError:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    answer = _answer(parse_taubench, path)
    assert isinstance(answer, InputError), answer
    return answer


@pytest.mark.parametrize("depth", [700, 950, 100_000])
def test_taubench_deep_nesting_is_a_clear_error_not_a_recursion_error(tmp_path, depth):
    deep = "[" * depth + "]" * depth
    text = json.dumps([_record(), _record(trial=2)]).replace('"source": "user"', f'"source": "user", "x": {deep}')
    err = _taubench_error(tmp_path, text)
    assert "nested too deeply" in err.message
    if not err.message.startswith("not valid JSON"):  # loaded, then too deep to hash: named
        assert err.record == "0 (task 3 trial 1)"


def test_taubench_deep_nesting_inside_tool_arguments_is_kept_as_raw_text(tmp_path):
    deep_args = "[" * 100_000
    path = tmp_path / "args.json"
    path.write_text(json.dumps([_record(arguments=deep_args)]))
    batch = parse_taubench(path)
    tool = next(s for s in batch.steps if s["kind"] == "tool")
    assert "did not parse" in tool["error"] and json.loads(tool["input"]) == {"_raw": deep_args}


@pytest.mark.parametrize(
    ("replace", "expected"),
    [
        (("Please cancel", "Please \\ud800 cancel"), "not valid Unicode (\\ud800"),  # a lone surrogate
        (('"kwargs": {"reservation_id": "ABC123"}', '"kwargs": {"reservation_id": 1e400}'), "not JSON data"),
        (('"reward": 1.0', '"reward": 1e400'), "finite number"),
    ],
    ids=["lone-surrogate", "huge-number-in-kwargs", "huge-reward"],
)
def test_taubench_values_that_cannot_be_stored_name_the_record(tmp_path, replace, expected):
    text = json.dumps([_record()]).replace(*replace, 1)
    assert replace[1] in text
    err = _taubench_error(tmp_path, text)
    assert expected in err.message and err.record == "0 (task 3 trial 1)"


def test_taubench_huge_strings_are_imported(tmp_path):
    record = _record()
    record["traj"][1]["content"] = "é" * 5_000_000
    path = tmp_path / "huge.json"
    path.write_text(json.dumps([record]))
    batch = parse_taubench(path)
    assert len(json.loads(batch.steps[0]["input"])) == 5_000_000


def test_taubench_a_file_of_a_million_lines(tmp_path):
    """Big enough to matter, cheap to read: the error names the line or the record at once."""
    path = tmp_path / "million.json"
    with open(path, "w") as f:
        f.write("[\n" + json.dumps(_record()) + ",\n")
        f.write("  1,\n" * 999_997)
        f.write("  1\n")  # no closing bracket: the file was cut
    assert path.read_bytes().count(b"\n") == 1_000_000
    err = _taubench_error(tmp_path, path.read_text(), "million.json")
    assert "not valid JSON" in err.message and "line 1000001" in err.message  # at the end
    with open(path, "a") as f:
        f.write("]\n")
    err = _taubench_error(tmp_path, path.read_text(), "million.json")
    assert err.record == 1 and "expected a record object" in err.message


# --- OTLP JSON: generated files ---------------------------------------------------------------------

_SPAN = {
    "traceId": "0af7651916cd43dd8448eb211c80319c",
    "spanId": "b7ad6b7169203331",
    "name": "chat",
    "startTimeUnixNano": "1000",
    "endTimeUnixNano": "2000",
    "attributes": [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "hotmess.task.id", "value": {"stringValue": "t1"}},
    ],
}


def _request(*spans: dict) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}]}]}


_GOOD_LINE = json.dumps(_request(_SPAN))
_REQUEST_PATHS = [p for p in _paths(_request(dict(_SPAN))) if p]


@SETTINGS
@given(lines=st.lists(JSON.map(json.dumps), min_size=1, max_size=4))
def test_otlp_any_json_lines_are_rows_or_an_input_error(tmp_path, lines):
    path = tmp_path / "any.jsonl"
    path.write_text("\n".join(lines) + "\n")
    _answer(parse_otlp_json, path)


@SETTINGS
@given(where=st.sampled_from(_REQUEST_PATHS), value=JSON, drop=st.booleans())
def test_otlp_one_bad_field_skips_its_line_and_keeps_the_good_one(tmp_path, where, value, drop):
    bad = _mutated(_request(json.loads(json.dumps({**_SPAN, "traceId": "1" * 32}))), where, value, drop)
    path = tmp_path / "mutated.jsonl"
    path.write_text(_GOOD_LINE + "\n" + json.dumps(bad) + "\n")
    batch = _answer(parse_otlp_json, path)
    assert not isinstance(batch, InputError)  # the good line is always there to import
    assert "0af7651916cd43dd8448eb211c80319c" in {r["run_id"] for r in batch.runs}
    for err in batch.errors:
        assert err.path == str(path) and err.record == "line 2"


@SETTINGS
@given(data=st.binary(max_size=300), gzipped=st.booleans(), cut=st.integers(0, 400))
def test_otlp_random_and_truncated_bytes(tmp_path, data, gzipped, cut):
    path = tmp_path / "bytes.jsonl"
    raw = (_GOOD_LINE + "\n").encode() + data
    path.write_bytes(gzip.compress(raw)[:cut] if gzipped else raw[:cut])
    _answer(parse_otlp_json, path)


def test_otlp_deep_nesting_and_bad_bytes_skip_only_their_lines(tmp_path):
    path = tmp_path / "mixed.jsonl"
    deep_value = '{"arrayValue": ' + '{"values": [{"arrayValue": ' * 3000 + '{"values": []}' + "}]}" * 3000 + "}"
    deep_attr = _GOOD_LINE.replace('{"stringValue": "chat"}', deep_value, 1).replace("b7ad6b7169203331", "b7ad6b7169203332")
    path.write_bytes(
        b"\n".join([_GOOD_LINE.encode(), b"[" * 100_000, deep_attr.encode(), b"\xff\xfe\xfa", b"{\"resourceSpans\": [", b""])
    )
    batch = parse_otlp_json(path)
    assert [r["run_id"] for r in batch.runs] == ["0af7651916cd43dd8448eb211c80319c"]
    assert [e.record for e in batch.errors] == ["line 2", "line 3", "line 4", "line 5"]
    assert all(e.path == str(path) and "not valid JSON" in e.message for e in batch.errors)


def test_otlp_a_lone_surrogate_is_named_or_escaped_not_a_crash(tmp_path):
    path = tmp_path / "surrogate.jsonl"
    path.write_text(_GOOD_LINE.replace('"name": "chat"', '"name": "ch\\ud800at"') + "\n")
    db = tmp_path / "runs.db"
    proc = _cli("import", "otlp", str(path), "--db", str(db))
    assert "unexpected error" not in proc.stderr
    assert proc.returncode == 0 or "line 1" in proc.stderr


# --- the CLI, and the database before and after -----------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HOTMESS_DB"}
    return subprocess.run(
        [sys.executable, "-c", "from hotmess.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120, env={**env, "COLUMNS": "200"},
    )


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mtime, and every name (a -wal or -shm left behind counts).

    Not a directory's mtime: reading a WAL database makes and removes its -shm beside it."""
    return {
        str(p.relative_to(directory)): (b"", 0) if p.is_dir() else (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


@pytest.fixture
def stored(tmp_path) -> Path:
    """A database holding one tau-bench import, closed (no WAL), in its own directory."""
    directory = tmp_path / "db"
    directory.mkdir()
    db = directory / "runs.db"
    good = tmp_path / "good.json"
    good.write_text(json.dumps([_record(), _record(trial=2)]))
    batch = parse_taubench(good)
    conn = connect(db)
    insert_runs(conn, batch.runs, batch.steps, source="tau-bench", path=good)
    conn.close()
    return db


HOSTILE_FILES = {
    "truncated.json": json.dumps([_record(), _record(trial=2)])[:700].encode(),
    "not-utf8.json": json.dumps([_record()]).replace("Cancel", "Annul\u00e9").encode("latin-1"),
    "deep.json": b"[" * 200_000,
    "wrong-type.json": json.dumps([_record(), {**_record(trial=5), "traj": "hello"}]).encode(),
    "missing-key.json": json.dumps([{k: v for k, v in _record().items() if k != "reward"}]).encode(),
    "duplicate.json": json.dumps([_record(), _record(reward=0.0)]).encode(),
    "empty.json": b"",
    "binary.json": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_cli_import_of_a_hostile_file_fails_in_one_line_and_leaves_the_database(stored, tmp_path, name):
    bad = tmp_path / name
    bad.write_bytes(HOSTILE_FILES[name])
    before = _snapshot(stored.parent)
    proc = _cli("import", "tau-bench", str(bad), "--db", str(stored))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and name in lines[0], proc.stderr
    assert _snapshot(stored.parent) == before


def test_cli_import_otlp_of_nothing_importable_leaves_the_database(stored, tmp_path):
    bad = tmp_path / "junk.jsonl"
    bad.write_bytes(b"[" * 100_000 + b"\n{}\n\xff\n")
    before = _snapshot(stored.parent)
    proc = _cli("import", "otlp", str(bad), "--db", str(stored))
    assert proc.returncode == 1 and "junk.jsonl" in proc.stderr and "Traceback" not in proc.stderr
    assert _snapshot(stored.parent) == before


def test_cli_hostile_arguments_are_clear_errors(stored, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    before = _snapshot(tmp_path)
    cases = [
        (("runs", "--db", str(text)), "not a SQLite database"),
        (("runs", "--db", str(tmp_path)), "directory"),
        (("show", "x" * 10_000, "--db", str(stored)), "no run"),
        (("runs", "--db", str(stored), "--task", "'; DROP TABLE runs; --"), "no runs for task"),
        (("import", "tau-bench", str(tmp_path / "absent.json"), "--db", str(stored)), "no such file"),
    ]
    for args, expected in cases:
        proc = _cli(*args)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert expected in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _snapshot(tmp_path) == before  # the text file, the directory listing, the database
    conn = sqlite3.connect(stored)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2  # the "injection" was a task name
    conn.close()


def test_an_import_failing_half_way_rolls_the_whole_file_back(stored, tmp_path):
    """The disk fills while the rows are written: nothing of the file is kept, nothing lost."""
    many = tmp_path / "many.json"
    many.write_text(json.dumps([_record(task_id=i, trial=t) for i in range(50) for t in (1, 2)]))
    batch = parse_taubench(many)
    conn = connect(stored)
    try:
        before = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "steps", "imports")}
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(sqlite3.OperationalError, match="full"):
            insert_runs(conn, batch.runs, batch.steps, source="tau-bench", path=many)
        after = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "steps", "imports")}
        assert after == before
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("PRAGMA max_page_count = 1073741823")
        result = insert_runs(conn, batch.runs, batch.steps, source="tau-bench", path=many)  # room again
        assert result.new == 100
    finally:
        conn.close()


# --- tau-bench --skip-invalid: the good records of a damaged file ----------------------------------


def test_taubench_skip_invalid_keeps_the_good_records_and_names_the_bad(tmp_path):
    broken = _record(trial=2)
    broken["traj"] = "hello"
    deep = _record(trial=3)
    deep["info"]["x"] = json.loads("[" * 700 + "]" * 700)
    half_bad = _record(trial=4)
    half_bad["traj"][2]["tool_calls"][0]["function"]["name"] = None  # fails after its key was read
    records = [_record(), broken, deep, half_bad, _record(trial=4), "not a record"]
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(records))

    with pytest.raises(InputError):
        parse_taubench(path)  # the default: the file is rejected whole
    batch = parse_taubench(path, skip_invalid=True)
    assert [(r["task_id"], r["instance"]) for r in batch.runs] == [("3", "1"), ("3", "4")]
    assert [str(e.record).split()[0] for e in batch.skipped] == ["1", "2", "3", "5"]
    assert all(e.path == str(path) for e in batch.skipped)
    assert "'traj' must be a list" in batch.skipped[0].message
    assert "nested too deeply" in batch.skipped[1].message
    assert batch.duplicates == []  # the bad trial 4 left no trace: the good one is not its "duplicate"

    only_bad = tmp_path / "only-bad.json"
    only_bad.write_text(json.dumps([broken, "x"]))
    with pytest.raises(InputError, match="no valid record: all 2 are malformed"):
        parse_taubench(only_bad, skip_invalid=True)


def test_cli_skip_invalid_imports_the_rest_and_lists_what_was_left_out(stored, tmp_path):
    bad = _record(trial=9)
    bad["reward"] = "high"
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps([_record(task_id=5), bad, _record(task_id=6)]))
    before = _snapshot(stored.parent)
    refused = _cli("import", "tau-bench", str(path), "--db", str(stored))
    assert refused.returncode == 1 and "record 1" in refused.stderr
    assert _snapshot(stored.parent) == before
    done = _cli("import", "tau-bench", str(path), "--db", str(stored), "--skip-invalid", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["runs"], report["new"]) == (2, 2)
    assert len(report["skipped"]) == 1 and "record 1 (task 3 trial 9)" in report["skipped"][0]
