"""hotmess import otlp over several files: a trace whose spans straddle two files (a collector
rotating its file exporter's output, or batching) is one run, whether the files are imported
together or one after the other.

The reference is always the same trace imported from one file; the runs and steps rows (every
column) and the spans rows must come out equal.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import test_otlp_import
from test_cli import hotmess as hotmess_cli
from test_otlp_import import (
    GENAI,
    import_file,
    lines,
    runs_of,
    steps_of,
    table,
    write_collector_file,
)

from hotmess.errors import InputError
from hotmess.store import merge
from hotmess.store.database import connect
from hotmess.store.writer import insert_runs
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS

# (live database, the real SDK's spans) of a small traced agent: 6 runs of 8 spans
recorded = test_otlp_import.recorded

SPLIT = "4bf92f3577b34da6a3ce929d0e0e4736"  # genai.jsonl: root and two steps on line 1, two more steps on line 3


def assert_same_rows(db: Path, reference: Path) -> None:
    """runs, steps and spans of ``db`` equal those of ``reference``, column by column."""
    got, want = runs_of(db), runs_of(reference)
    assert [r["run_id"] for r in got] == [r["run_id"] for r in want]
    for a, b in zip(got, want, strict=True):
        for column in RUN_COLUMNS:
            assert a[column] == b[column], (a["run_id"], column, a[column], b[column])
    got, want = steps_of(db), steps_of(reference)
    assert [(s["run_id"], s["span_id"]) for s in got] == [(s["run_id"], s["span_id"]) for s in want]
    for a, b in zip(got, want, strict=True):
        for column in STEP_COLUMNS:
            assert a[column] == b[column], (a["run_id"], a["span_id"], column, a[column], b[column])
    assert table(db, "spans", "trace_id, span_id") == table(reference, "spans", "trace_id, span_id")


def genai_halves(tmp_path: Path) -> tuple[Path, Path]:
    """genai.jsonl cut in two: ``head`` holds trace 4bf9...'s root and first two steps (and the
    whole trace 1c4e...), ``tail`` its last two steps (and a health check)."""
    src = lines(GENAI)
    head, tail = tmp_path / "head.jsonl", tmp_path / "tail.jsonl"
    head.write_text(src[0] + "\n" + src[3] + "\n")
    tail.write_text(src[2] + "\n")
    return head, tail


@pytest.mark.parametrize("order", ["head-tail", "tail-head"])
def test_one_trace_in_two_files_imported_one_after_the_other_is_the_one_file_run(tmp_path, order):
    """Before the merge, each import built its runs from its own file only and skipped every run
    already stored with all its steps and spans. Tail then head: the tail alone made a wrong run
    (its refund_order tool span picked as root: task 'span:execute_tool refund_order', status
    error, start at the tool, one step at index 0), then the head's root and two steps were
    dropped as 'already stored'. Head then tail: the tail's two steps were dropped: n_steps 2
    instead of 4, no error, the outcome the first LLM reply instead of the last."""
    head, tail = genai_halves(tmp_path)
    reference = tmp_path / "one-file.db"
    import_file(GENAI, reference)
    db = tmp_path / "two-files.db"
    for path in (head, tail) if order == "head-tail" else (tail, head):
        import_file(path, db)
    assert_same_rows(db, reference)


# ---------------------------------------------------------------------------------------------
# spans recorded by the real SDK, cut over three files


CUTS = (0, 20, 36, 48)  # 6 runs of 8 spans in end order (a root last): runs 3 and 5 straddle two files


def three_parts(spans, tmp_path: Path) -> list[Path]:
    return [write_collector_file(spans[a:b], tmp_path / f"part-{i}.jsonl", per_line=3)
            for i, (a, b) in enumerate(zip(CUTS, CUTS[1:], strict=False))]


@pytest.fixture
def reference(recorded, tmp_path) -> Path:
    """The recorded runs imported from one file."""
    db = tmp_path / "one-file.db"
    import_file(write_collector_file(recorded[1], tmp_path / "whole.jsonl"), db)
    return db


def test_several_files_in_one_import_are_the_one_file_import(recorded, reference, tmp_path):
    parts = three_parts(recorded[1], tmp_path)
    db = tmp_path / "many.db"
    batch, result = import_file(parts, db)
    assert (result.runs, result.new, result.merged, batch.rootless, batch.skipped) == (6, 6, 0, 0, 0)
    assert [(f.records, f.spans, len(f.trace_ids)) for f in batch.files] == [(7, 20, 3), (6, 16, 3), (4, 12, 2)]
    assert_same_rows(db, reference)
    logged = table(db, "imports", "rowid")
    assert [(r["path"], r["n_runs"], r["n_new"]) for r in logged] == [(str(p), n, n) for p, n in zip(parts, (3, 3, 2), strict=True)]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_files_imported_one_after_the_other_merge_into_the_one_file_runs(recorded, reference, tmp_path, order):
    parts = three_parts(recorded[1], tmp_path)
    db = tmp_path / "merged.db"
    results = [import_file(parts[i], db)[1] for i in order]
    assert_same_rows(db, reference)
    assert sum(r.new for r in results) == 6 and sum(r.merged for r in results) == 2
    if order == (0, 1, 2):
        assert [(r.runs, r.new, r.merged) for r in results] == [(3, 3, 0), (3, 2, 1), (2, 1, 1)]


def test_a_run_whose_root_has_not_arrived_is_incomplete_until_it_does(recorded, reference, tmp_path):
    first, second, _ = three_parts(recorded[1], tmp_path)
    db = tmp_path / "partial.db"
    batch, _ = import_file(first, db)
    assert batch.rootless == 1
    done = {r["run_id"]: r for r in runs_of(reference)}
    (pending,) = [r for r in runs_of(db) if r["status"] == "incomplete"]
    whole = done[pending["run_id"]]
    # what a run recorded live looks like before its root ends: started, no end, no outcome
    assert (pending["end_ns"], pending["outcome"], pending["success"]) == (None, None, None)
    # hotmess puts the task id on the root only: unknown until the root arrives
    assert (pending["task_id"], whole["task_id"]) == ("", "t-paris") and pending["start_ns"] > whole["start_ns"]
    assert [s["step_index"] for s in steps_of(db) if s["run_id"] == pending["run_id"]] == [0, 1, 2, 3]
    assert pending["n_steps"] == 3  # one of the four is a goal
    _, result = import_file(second, db)
    assert result.merged == 1
    now = {r["run_id"]: r for r in runs_of(db)}[pending["run_id"]]
    assert now == whole and now["status"] == "ok"


def test_reimports_after_a_merge_change_nothing(recorded, reference, tmp_path):
    parts = three_parts(recorded[1], tmp_path)
    db = tmp_path / "again.db"
    for part in parts:
        import_file(part, db)
    before = runs_of(db), steps_of(db), table(db, "spans", "trace_id, span_id")
    for again in (*parts, parts, tmp_path / "whole.jsonl"):
        _, result = import_file(again, db)
        assert (result.new, result.merged, result.steps, result.left_out_spans) == (0, 0, 0, 0)
        assert result.to_dict()["already_stored"] == result.runs
    assert (runs_of(db), steps_of(db), table(db, "spans", "trace_id, span_id")) == before
    assert_same_rows(db, reference)


# ---------------------------------------------------------------------------------------------
# hand-made cases on genai.jsonl


def with_span(line: str, **changes) -> str:
    """``line`` with the first span of trace 4bf9... changed (``endTimeUnixNano="0"``: not ended)."""
    request = json.loads(line)
    for rs in request["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                if span["traceId"] == SPLIT:
                    span.update(changes)
                    return json.dumps(request)
    raise AssertionError("no span of the split trace")


def test_a_root_stored_unended_is_completed_by_its_ended_copy(tmp_path):
    src = lines(GENAI)
    unended = tmp_path / "unended.jsonl"
    unended.write_text(with_span(src[0], endTimeUnixNano="0") + "\n")
    ended = tmp_path / "ended.jsonl"
    ended.write_text(src[0] + "\n" + src[2] + "\n")
    reference = tmp_path / "reference.db"
    import_file(ended, reference)

    db = tmp_path / "runs.db"
    import_file(unended, db)
    (run,) = runs_of(db)
    assert (run["status"], run["end_ns"], run["n_steps"]) == ("incomplete", None, 2)
    _, result = import_file(ended, db)
    assert result.merged == 1
    assert_same_rows(db, reference)
    # in one import, the ended copy wins whichever file comes first
    both = tmp_path / "both.db"
    import_file([ended, unended], both)
    assert_same_rows(both, reference)


HTTP_SPAN = {  # a plain HTTP call under the split trace's tool call: no agent attribute
    "traceId": SPLIT, "spanId": "00f067aa0ba902bc", "parentSpanId": "00f067aa0ba902b9", "name": "GET /orders/1042",
    "kind": 3, "startTimeUnixNano": "1718000000950000000", "endTimeUnixNano": "1718000000990000000",
    "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}}],
}


def test_spans_without_agent_attributes_join_the_stored_run_they_belong_to(tmp_path):
    """A plain HTTP span under a tool call, in a later file whose own trace is another's: it
    is no agent trace by itself, but it is a step of the stored run, as in one file."""
    plain = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [HTTP_SPAN]}]}]})
    src = lines(GENAI)
    head = tmp_path / "head.jsonl"
    head.write_text(src[0] + "\n" + src[2] + "\n")
    tail = tmp_path / "tail.jsonl"
    tail.write_text(plain + "\n" + src[3] + "\n")
    reference = tmp_path / "reference.db"
    import_file([head, tail], reference)
    assert [s["depth"] for s in steps_of(reference) if s["name"] == "GET /orders/1042"] == [2]
    db = tmp_path / "runs.db"
    import_file(head, db)
    _, result = import_file(tail, db)
    assert (result.new, result.merged, result.ignored_traces) == (1, 1, 0)
    assert_same_rows(db, reference)


def test_a_file_of_only_non_agent_spans_of_a_stored_run_is_merged_into_it(tmp_path):
    """A later file holding nothing but a plain HTTP span of a trace imported before: no agent
    trace by itself, yet a step of the stored run, as in one import. (It failed with "nothing
    to import", raised before the database was looked at.) Such a file whose traces are no
    stored run still fails, naming the file."""
    src = lines(GENAI)
    head = tmp_path / "head.jsonl"
    head.write_text(src[0] + "\n" + src[2] + "\n")
    tail = tmp_path / "http-only.jsonl"
    tail.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [HTTP_SPAN]}]}]}) + "\n")
    reference = tmp_path / "reference.db"
    import_file([head, tail], reference)
    db = tmp_path / "runs.db"
    import_file(head, db)
    batch, result = import_file(tail, db)
    assert (batch.runs, batch.ignored_traces) == ([], 1)
    assert (result.runs, result.new, result.merged, result.ignored_traces) == (1, 0, 1, 0)
    assert result.to_dict()["already_stored"] == 0
    assert_same_rows(db, reference)
    assert [(r["path"], r["n_runs"], r["n_new"]) for r in table(db, "imports", "rowid")][-1] == (str(tail), 1, 0)

    # the command says so (run on this source tree: the environment is passed on)
    cli = tmp_path / "cli.db"
    import_file(head, cli)
    proc = subprocess.run([sys.executable, "-c", "from hotmess.cli import main; main()", "import", "otlp", str(tail),
                           "--db", str(cli)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "Imported 0 new runs (5 steps)" in out and "1 stored before got new spans and were rebuilt" in out
    assert_same_rows(cli, reference)

    # spans of traces no stored run has: nothing to import, the database as it was
    before = runs_of(db), steps_of(db), table(db, "spans", "trace_id, span_id"), table(db, "imports", "rowid")
    stray = tmp_path / "stray.jsonl"
    stray.write_text(tail.read_text().replace(SPLIT, "9" * 32))
    for target in (db, tmp_path / "fresh.db"):
        with pytest.raises(InputError, match=f"^{stray}: nothing to import: none of its 1 traces has a hotmess"):
            import_file(stray, target)
    assert (runs_of(db), steps_of(db), table(db, "spans", "trace_id, span_id"), table(db, "imports", "rowid")) == before


def test_spans_of_a_run_from_another_source_are_left_out_and_counted(recorded, tmp_path):
    """A run recorded live (source trace) or imported from tau-bench is never rewritten by an
    OTLP import: spans it already has are duplicates, new ones are left out and counted."""
    live, spans = recorded
    db = tmp_path / "live.db"
    shutil.copy(live, db)
    before = runs_of(db), steps_of(db), table(db, "spans", "trace_id, span_id")
    path = write_collector_file(spans, tmp_path / "exported.jsonl")
    root = next(s for s in spans if s.parent is None)
    extra = json.loads(lines(GENAI)[0])
    extra["resourceSpans"][0]["scopeSpans"][0]["spans"] = [{
        **extra["resourceSpans"][0]["scopeSpans"][0]["spans"][1],
        "traceId": f"{root.context.trace_id:032x}", "spanId": "00000000000000aa", "parentSpanId": f"{root.context.span_id:016x}",
    }]
    with open(path, "a") as f:
        f.write(json.dumps(extra) + "\n")
    batch, result = import_file(path, db)
    assert (result.runs, result.new, result.merged, result.left_out_spans, result.left_out_runs) == (6, 0, 0, 1, {"trace": 1})
    assert (runs_of(db), steps_of(db), table(db, "spans", "trace_id, span_id")) == before

    # a run imported from tau-bench with the same id: every span of the trace is left out
    tau = tmp_path / "tau.db"
    conn = connect(tau)
    insert_runs(conn, [{"run_id": SPLIT, "task_id": "t1", "source": "tau-bench", "status": "ok",
                              **dict.fromkeys(("n_steps", "n_tool_calls", "n_llm_calls", "n_errors", "input_tokens", "output_tokens"), 0)}], [],
                source="tau-bench", path=GENAI)
    conn.close()
    _, result = import_file(GENAI, tau)
    assert (result.new, result.left_out_spans, result.left_out_runs) == (1, 5, {"tau-bench": 1})
    assert {r["run_id"]: r["source"] for r in runs_of(tau)}[SPLIT] == "tau-bench"
    assert [s for s in steps_of(tau) if s["run_id"] == SPLIT] == []
    assert table(tau, "spans", "span_id") and all(s["trace_id"] != SPLIT for s in table(tau, "spans", "span_id"))

    proc = hotmess_cli("import", "otlp", str(path), "--db", str(db))
    out = " ".join(proc.stdout.split())
    assert "1 new span left out: their trace is stored as a run that an OTLP import never rewrites (1 run recorded live by hotmess)" in out
    assert "6 were already stored" in out


def test_a_failed_merge_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    head, tail = genai_halves(tmp_path)
    db = tmp_path / "runs.db"
    import_file(head, db)
    before = runs_of(db), steps_of(db), table(db, "spans", "trace_id, span_id"), table(db, "imports", "rowid")

    def broken(*args, **kwargs):
        raise sqlite3.IntegrityError("disk says no")

    monkeypatch.setattr(merge, "write_rows", broken)  # after the merged run's rows were deleted
    with pytest.raises(Exception, match="nothing imported.*disk says no"):
        import_file(tail, db)
    assert (runs_of(db), steps_of(db), table(db, "spans", "trace_id, span_id"), table(db, "imports", "rowid")) == before


def test_several_files_errors_name_the_file_and_an_unreadable_one_stops_the_import(tmp_path):
    head, tail = genai_halves(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines(GENAI)[0] + "\n{oops\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    db = tmp_path / "runs.db"
    batch, result = import_file([tail, empty, bad, head], db)
    assert [str(e) for e in batch.errors] == [f"{bad}, line 2: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"]
    assert [(f.path, f.records, f.skipped, f.empty) for f in batch.files] == [
        (str(tail), 1, 0, False), (str(empty), 0, 0, True), (str(bad), 2, 1, False), (str(head), 2, 0, False)]
    assert (result.new, batch.skipped, batch.records) == (2, 1, 5)

    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(json.loads(lines(GENAI)[3]), indent=2)[:-20])
    other = tmp_path / "other.db"
    with pytest.raises(InputError, match=f"^{cut}: not valid JSON"):
        import_file([head, cut], other)
    assert not runs_of(other) if other.exists() else True
    with pytest.raises(InputError, match=f"^{empty}: the file is empty"):
        import_file([empty], other)


def test_cli_many_files(tmp_path):
    head, tail = genai_halves(tmp_path)
    db = tmp_path / "cli.db"
    out = " ".join(hotmess_cli("import", "otlp", str(tail), "--db", str(db)).stdout.split())
    assert "1 run without a root span in these files" in out and "stored as incomplete" in out
    again = json.loads(hotmess_cli("import", "otlp", str(head), str(tail), "--db", str(db), "--json").stdout)
    assert (again["runs"], again["new"], again["merged"], again["already_stored"], again["rootless"]) == (2, 1, 1, 0, 0)
    assert [(f["path"], f["spans"], f["traces"]) for f in again["files"]] == [(str(head), 5, 2), (str(tail), 3, 2)]
    out = " ".join(hotmess_cli("import", "otlp", str(tail), str(head), "--db", str(tmp_path / "fresh.db")).stdout.split())
    assert "Imported 2 new runs (5 steps) from 2 files" in out
    assert f"{tail}: 1 record, 3 spans of 2 traces" in out and f"{head}: 2 records, 5 spans of 2 traces" in out
    assert "1 trace left out: no agent at work there" in out
    missing = hotmess_cli("import", "otlp", str(head), str(tmp_path / "nope.jsonl"), "--db", str(db), ok=False)
    assert missing.returncode == 1 and "nope.jsonl: no such file" in missing.stderr


def test_an_agent_called_from_another_service_is_the_root_of_its_run(tmp_path):
    """The agent span's parent (the caller's HTTP span) went to another collector: the agent
    span is still the root, and the run is the one its file gives without that parent."""
    remote = "a1a1a1a1a1a1a1a1"
    src = lines(GENAI)
    called = [
        line.replace('"spanId":"00f067aa0ba902b7","name"', f'"spanId":"00f067aa0ba902b7","parentSpanId":"{remote}","name"')
        for line in src
    ]
    assert called != src
    (tmp_path / "called.jsonl").write_text("\n".join(called) + "\n")
    import_file(tmp_path / "called.jsonl", tmp_path / "called.db")
    import_file(GENAI, tmp_path / "reference.db")
    (run,) = [r for r in runs_of(tmp_path / "called.db") if r["run_id"] == SPLIT]
    (want,) = [r for r in runs_of(tmp_path / "reference.db") if r["run_id"] == SPLIT]
    assert run["status"] != "incomplete"
    assert {c: run[c] for c in RUN_COLUMNS} == {c: want[c] for c in RUN_COLUMNS}
    assert [s for s in steps_of(tmp_path / "called.db") if s["run_id"] == SPLIT] == [
        s for s in steps_of(tmp_path / "reference.db") if s["run_id"] == SPLIT
    ]


def test_a_tool_span_whose_parent_is_missing_waits_for_its_root(tmp_path):
    """Only an agent invocation may stand in for a missing root: a file holding just a trace's
    tool call leaves the run incomplete rather than rooted at the tool."""
    _, tail = genai_halves(tmp_path)
    batch, _ = import_file(tail, tmp_path / "tail.db")
    (run,) = [r for r in runs_of(tmp_path / "tail.db") if r["run_id"] == SPLIT]
    assert run["status"] == "incomplete" and batch.rootless >= 1
