"""hotmess import otlp: OTLP JSON trace files (collector JSON lines, whole-file form) into runs and steps.

The round trip uses the real tracer: a small agent recorded live into one database while an
in-memory exporter on the same provider captures its spans; the test encodes them with the
official OTLP encoder to OTLP JSON, imports that file into a second database, and compares.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_cli import hotmess as hotmess_cli

import hotmess
from hotmess.errors import InputError
from hotmess.integrations.otlp_json import insert_otlp, parse_otlp_json
from hotmess.store.database import connect
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS

encoder = pytest.importorskip("opentelemetry.exporter.otlp.proto.common.trace_encoder")
json_format = pytest.importorskip("google.protobuf.json_format")

DATA = Path(__file__).parent / "data" / "otlp"
OPENINFERENCE = DATA / "openinference.jsonl"
GENAI = DATA / "genai.jsonl"


# ---------------------------------------------------------------------------------------------
# helpers


def table(db: Path, name: str, order: str, skip: tuple[str, ...] = ()) -> list[dict]:
    conn = sqlite3.connect(db)
    try:
        cur = conn.execute(f"SELECT * FROM {name} ORDER BY {order}")
        names = [d[0] for d in cur.description]
        return [{k: v for k, v in zip(names, row, strict=True) if k not in skip} for row in cur]
    finally:
        conn.close()


def runs_of(db: Path) -> list[dict]:
    return table(db, "runs", "run_id")


def steps_of(db: Path) -> list[dict]:
    return table(db, "steps", "run_id, step_index")


def import_file(path: Path | list[Path], db: Path, **kwargs):
    """What ``hotmess import otlp`` does with one file (or several): parse, then store."""
    batch = parse_otlp_json(path, **kwargs)
    conn = connect(db)
    try:
        return batch, insert_otlp(conn, batch)
    finally:
        conn.close()


def b64_to_hex(request: dict) -> dict:
    """protobuf's JSON mapping writes ids as base64; OTLP/JSON (the collector's files) as hex."""
    for rs in request.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64decode(span[key]).hex()
                for link in span.get("links", []):
                    for key in ("traceId", "spanId"):
                        link[key] = base64.b64decode(link[key]).hex()
    return request


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# ---------------------------------------------------------------------------------------------
# the traced agent recorded live and captured for export


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(live database, captured ReadableSpans) of a small traced agent: goals, tool calls
    (one failing), an LLM step with tokens, a nested agent, an explicit outcome, a failed run."""
    tmp = tmp_path_factory.mktemp("live")
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    live = tmp / "live.db"
    hotmess.configure(db=live, tracer_provider=provider, flush_interval=0.05)

    @hotmess.trace(task_id="lookup")
    def helper(city: str) -> str:
        hotmess.action("geocode", {"city": city}, result={"lat": 48.85, "lon": 2.35})
        return f"{city} found"

    @hotmess.trace(agent="planner", instance=lambda task_id, city, trial: trial)
    def agent(task_id: str, city: str, trial: int) -> dict:
        hotmess.goal(f"find flights to {city}")
        with hotmess.step("plan", kind="llm", input=[{"role": "user", "content": f"fly to {city}"}],
                          attributes={"gen_ai.usage.input_tokens": 40 + trial, "gen_ai.usage.output_tokens": 7,
                                      "gen_ai.request.model": "scripted-1",
                                      "app.prompt": "long " * 2000}) as s:  # cut on export
            s.output = {"tool_calls": [{"name": "search_flights", "kwargs": {"to": city}}]}
        hotmess.action("search_flights", {"to": city, "max": 3}, result=["UA 1", "AF 2"])
        helper(city)
        hotmess.goal("book the cheapest")
        if trial == 2:
            hotmess.action("book", {"flight": "AF 2"}, error="sold out")
            raise RuntimeError("could not book")
        hotmess.action("book", {"flight": "UA 1"}, result={"ok": True})
        hotmess.score(0.5 + trial / 10)
        hotmess.outcome({"booked": "UA 1"}, success=True, reference={"booked": "UA 1"})
        return {"ignored": True}

    for trial in range(3):
        for task, city in (("t-paris", "Paris"), ("t-rome", "Rome")):
            with contextlib.suppress(RuntimeError):  # the third trial fails, on purpose
                agent(task, city, trial)
    assert hotmess.flush(timeout=20)
    hotmess.shutdown()
    spans = memory.get_finished_spans()
    assert len(spans) == 6 * 8
    return live, spans


def write_collector_file(spans, path: Path, per_line: int = 5) -> Path:
    """The collector's file exporter's shape: one ExportTraceServiceRequest per line, hex ids,
    batches that cut traces across lines."""
    with open(path, "w") as f:
        for i in range(0, len(spans), per_line):
            request = encoder.encode_spans(spans[i : i + per_line])
            f.write(json.dumps(b64_to_hex(json_format.MessageToDict(request))) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# round trip


def test_round_trip_gives_the_same_runs_and_steps(recorded, tmp_path):
    live, spans = recorded
    otlp = write_collector_file(spans, tmp_path / "traces.jsonl")
    imported = tmp_path / "imported.db"
    batch, result = import_file(otlp, imported)
    assert (result.runs, result.new, batch.skipped) == (6, 6, 0)

    live_runs, new_runs = table(live, "runs", "run_id", skip=("source",)), table(imported, "runs", "run_id", skip=("source",))
    assert len(live_runs) == 6
    for a, b in zip(live_runs, new_runs, strict=True):
        for column in RUN_COLUMNS:
            if column != "source":
                assert a[column] == b[column], (column, a[column], b[column])
    live_steps, new_steps = steps_of(live), steps_of(imported)
    assert len(live_steps) == 6 * 7
    for a, b in zip(live_steps, new_steps, strict=True):
        for column in STEP_COLUMNS:
            assert a[column] == b[column], (column, a, b)
    # the lossless spans table too
    assert table(live, "spans", "trace_id, span_id") == table(imported, "spans", "trace_id, span_id")
    assert {r["source"] for r in runs_of(imported)} == {"otlp"}
    # a user attribute over max_attribute_chars is cut on the way to SQLite, live and imported alike
    plan = [json.loads(s["attributes"]) for s in table(imported, "spans", "start_ns") if s["name"] == "plan"][0]
    assert plan["hotmess.truncated"] == ["app.prompt"] and len(plan["app.prompt"]) < 8300
    whole = tmp_path / "whole.db"
    import_file(otlp, whole, max_chars=0)
    plan = [json.loads(s["attributes"]) for s in table(whole, "spans", "start_ns") if s["name"] == "plan"][0]
    assert plan["app.prompt"] == "long " * 2000 and "hotmess.truncated" not in plan

    # what was recorded is there: goals, tool calls, nested agent, outcome, failure
    failed = [r for r in new_runs if r["status"] == "error"]
    assert len(failed) == 2 and all(r["success"] == 0 and "could not book" in r["error"] for r in failed)
    ok = [r for r in new_runs if r["status"] == "ok"][0]
    assert json.loads(ok["outcome"]) == {"booked": "UA 1"} and ok["success"] == 1
    kinds = [s["kind"] for s in new_steps if s["run_id"] == ok["run_id"]]
    assert kinds == ["goal", "llm", "tool", "agent", "tool", "goal", "tool"]
    nested = [s for s in new_steps if s["run_id"] == ok["run_id"] and s["depth"] == 2]
    assert [s["tool"] for s in nested] == ["geocode"]


def test_protobuf_json_whole_file_form_base64_ids_enum_names_and_gzip(recorded, tmp_path):
    live, spans = recorded
    request = encoder.encode_spans(spans)
    pretty = tmp_path / "whole.json"
    pretty.write_text(json_format.MessageToJson(request))  # pretty-printed, base64 ids
    listed = tmp_path / "list.json.gz"
    halves = [json_format.MessageToDict(encoder.encode_spans(part), use_integers_for_enums=True)
              for part in (spans[:20], spans[20:])]
    listed.write_bytes(gzip.compress(json.dumps(halves, indent=1).encode()))
    compact = tmp_path / "compact.json"  # a list on one line: a line of items
    compact.write_text(json.dumps([b64_to_hex(json_format.MessageToDict(encoder.encode_spans(spans)))]))
    for path in (pretty, listed, compact):
        db = tmp_path / f"{path.name}.db"
        batch, result = import_file(path, db)
        assert (result.new, batch.skipped) == (6, 0)
        assert table(db, "runs", "run_id", skip=("source",)) == table(live, "runs", "run_id", skip=("source",))
        assert steps_of(db) == steps_of(live)


def test_reimport_is_idempotent_and_keeps_what_was_stored(recorded, tmp_path):
    _, spans = recorded
    otlp = write_collector_file(spans, tmp_path / "traces.jsonl")
    db = tmp_path / "runs.db"
    import_file(OPENINFERENCE, db)
    before_runs, before_steps = runs_of(db), steps_of(db)
    _, first = import_file(otlp, db)
    _, again = import_file(otlp, db)
    assert (first.new, again.runs, again.new, again.steps) == (6, 6, 0, 0)
    runs = runs_of(db)
    assert len(runs) == 8 and len(steps_of(db)) == len(before_steps) + 42
    assert [r for r in runs if r["source"] == "otlp" and r["run_id"] in {b["run_id"] for b in before_runs}] == before_runs


# ---------------------------------------------------------------------------------------------
# hand-written OpenInference and GenAI files


def msg_hash(text: str) -> str:
    return "msg:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def test_openinference_file(tmp_path):
    db = tmp_path / "oi.db"
    batch, result = import_file(OPENINFERENCE, db)
    assert (result.new, batch.skipped, batch.hashed_task_ids) == (2, 0, 2)
    runs = {r["run_id"]: r for r in runs_of(db)}
    booked, failed = runs["5b8efff798038103d269b633813fc60c"], runs["0af7651916cd43dd8448eb211c80319c"]
    # same first user message: one task, two trials
    assert booked["task_id"] == failed["task_id"] == msg_hash("Book me a flight from SFO to JFK on May 3.")
    assert booked["agent"] == "travel-agent"  # the resource's service.name
    assert (booked["status"], booked["outcome"]) == ("ok", "Booked UA 100 from SFO to JFK on May 3.")
    assert (failed["status"], failed["error"], failed["outcome"]) == ("error", "agent gave up", "Sorry, I could not book that flight.")
    assert booked["success"] is None
    assert (booked["n_steps"], booked["n_tool_calls"], booked["n_llm_calls"], booked["input_tokens"], booked["output_tokens"]) == (4, 2, 2, 442, 45)
    steps = [s for s in steps_of(db) if s["run_id"] == booked["run_id"]]
    assert [(s["kind"], s["tool"]) for s in steps] == [("llm", None), ("tool", "search_flights"), ("tool", "book_flight"), ("llm", None)]
    assert json.loads(steps[1]["input"]) == {"from": "SFO", "to": "JFK", "date": "2024-05-03"}
    assert json.loads(steps[2]["output"]) == {"confirmation": "QX7F2"}
    assert (steps[0]["model"], steps[0]["input_tokens"], steps[0]["output_tokens"]) == ("gpt-4o-2024-08-06", 182, 31)
    assert all(s["depth"] == 1 and s["parent_span_id"] == "eee19b7ec3c1b174" for s in steps)
    bad_tool = [s for s in steps_of(db) if s["run_id"] == failed["run_id"] and s["kind"] == "tool"][0]
    assert bad_tool["error"] == "ValueError: no such flight: UA 999" and failed["n_errors"] == 1


def test_genai_file_task_attr_and_fallbacks(tmp_path):
    db = tmp_path / "genai.db"
    batch, result = import_file(GENAI, db)
    # the health-check trace has no agent attributes; the log line is another signal
    assert (result.new, batch.ignored_traces, batch.skipped, batch.records) == (2, 1, 0, 4)
    runs = {r["run_id"]: r for r in runs_of(db)}
    first, second = runs["4bf92f3577b34da6a3ce929d0e0e4736"], runs["1c4e2f3577b34da6a3ce929d0e0e4736"]
    assert first["task_id"] == msg_hash("Please refund order 1042, it arrived broken.")
    assert second["task_id"] == "span:invoke_agent support-bot"  # no attribute, no user message
    assert first["agent"] == "support-bot"
    # no outcome on the root: the text of the last LLM reply, out of its message wrapper
    assert first["outcome"] == "I have asked a supervisor to approve your refund."
    assert "on its way" in second["outcome"] and second["success"] == 1
    assert (first["n_tool_calls"], first["n_llm_calls"], first["n_errors"], first["input_tokens"], first["output_tokens"]) == (2, 2, 1, 197, 44)
    steps = [s for s in steps_of(db) if s["run_id"] == first["run_id"]]
    assert [(s["kind"], s["tool"]) for s in steps] == [("llm", None), ("tool", "get_order"), ("tool", "refund_order"), ("llm", None)]
    assert json.loads(steps[1]["input"]) == {"order_id": 1042} and json.loads(steps[1]["output"])["status"] == "delivered"
    assert steps[2]["error"] == "PermissionError: refunds over 50 need approval" and steps[2]["output"] is None
    assert steps[0]["model"] == "gpt-4o-mini-2024-07-18" and steps[3]["model"] == "gpt-4o-mini"
    spans = table(db, "spans", "start_ns")
    assert len(spans) == 7 and json.loads(spans[1]["attributes"])["gen_ai.response.finish_reasons"] == ["tool_calls"]

    # --task-attr: found on the root of both traces; --agent overrides
    other = tmp_path / "by-attr.db"
    import_file(GENAI, other, task_attr="app.task", agent="bot-v2")
    assert {(r["task_id"], r["agent"]) for r in runs_of(other)} == {("refund-order", "bot-v2")}
    # a resource attribute, and then any span, are searched too
    env = tmp_path / "by-env.db"
    import_file(GENAI, env, task_attr="deployment.environment")
    assert {r["task_id"] for r in runs_of(env)} == {"prod", "span:invoke_agent support-bot"}
    tool_attr = tmp_path / "by-tool.db"
    import_file(GENAI, tool_attr, task_attr="gen_ai.tool.call.id")
    assert runs_of(tool_attr)[1]["task_id"] == "call_1"


def test_secrets_are_redacted_unless_asked_not_to(tmp_path):
    text = GENAI.read_text().replace("it arrived broken.", "my api_key=sk-live-0123456789abcdefXYZ")
    text = text.replace('"prod"', '"prod password=hunter2hunter2"')  # a resource attribute
    leaky = tmp_path / "leaky.jsonl"
    leaky.write_text(text)
    redacted, raw = tmp_path / "redacted.db", tmp_path / "raw.db"
    import_file(leaky, redacted)
    import_file(leaky, raw, redact=False)
    assert "sk-live-0123456789abcdefXYZ" not in Path(redacted).read_bytes().decode("latin-1")
    assert "hunter2hunter2" not in Path(redacted).read_bytes().decode("latin-1")
    assert "sk-live-0123456789abcdefXYZ" in json.dumps(steps_of(raw))
    assert "hunter2hunter2" in json.dumps(table(raw, "spans", "span_id"))


def test_lone_surrogates_are_escaped_as_the_live_exporter_does(tmp_path):
    line = lines(GENAI)[0].replace('"name":"chat gpt-4o-mini"', '"name":"chat \\ud800gpt"')
    line = line.replace("it arrived broken.", "it arrived broken \\udfff \\ud83d\\ude00")
    path = tmp_path / "surrogate.jsonl"
    path.write_text(line + "\n")
    db = tmp_path / "runs.db"
    import_file(path, db)
    steps = steps_of(db)
    assert steps[0]["name"] == "chat \\ud800gpt"  # the escape as text, like the live exporter's
    # inside a JSON text attribute, the escape stays JSON's own; the pair is one character
    assert "broken \\udfff \U0001f600" in steps[0]["input"]


# ---------------------------------------------------------------------------------------------
# malformed input


def test_malformed_lines_are_named_and_skipped_the_rest_imported(tmp_path):
    good = lines(GENAI)
    missing_trace = json.loads(good[0])
    del missing_trace["resourceSpans"][0]["scopeSpans"][0]["spans"][2]["traceId"]
    wrong_time = json.loads(good[0])
    wrong_time["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = True
    wrong_attrs = json.loads(good[0])
    wrong_attrs["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["attributes"] = "model=gpt"
    bad_int = json.loads(good[0])
    bad_int["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["attributes"][4]["value"] = {"intValue": "many"}
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([
        good[2], good[0][:200], json.dumps(missing_trace), good[1], json.dumps(wrong_time),
        "", json.dumps(wrong_attrs), "[3]", json.dumps(bad_int), good[3], "{}",
    ]) + "\n")
    db = tmp_path / "runs.db"
    import_file(OPENINFERENCE, db)
    before = runs_of(db), steps_of(db)
    batch, result = import_file(path, db)
    messages = {e.record: e.message for e in batch.errors}
    assert all(isinstance(e, InputError) and e.path == str(path) for e in batch.errors)
    assert list(messages) == ["line 2", "line 3", "line 5", "line 7", "line 8 item 0", "line 9", "line 11"]
    assert "not valid JSON" in messages["line 2"]
    assert messages["line 3"] == "resourceSpans[0].scopeSpans[0].spans[2]: missing traceId"
    assert "startTimeUnixNano must be nanoseconds" in messages["line 5"]
    assert "spans[1]: attributes must be a list" in messages["line 7"]
    assert "intValue 'many' is not an integer" in messages["line 9"]
    assert "got int" in messages["line 8 item 0"]
    assert "no resourceSpans" in messages["line 11"]
    assert str(batch.errors[0]).startswith(f"{path}, line 2: ")
    assert batch.skipped == 7 and batch.records == 10
    # the good lines: trace 1c4e... whole; trace 4bf9... only its spans on line 3 of genai.jsonl,
    # whose parent (the root, on a skipped line) is missing: an incomplete run of those steps,
    # which a later import holding the root completes (test_otlp_merge)
    assert (result.runs, result.new, batch.rootless) == (2, 2, 1)
    runs = {r["run_id"]: r for r in runs_of(db)}
    assert runs["1c4e2f3577b34da6a3ce929d0e0e4736"]["n_tool_calls"] == 1
    partial = [s for s in steps_of(db) if s["run_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"]
    assert [(s["kind"], s["depth"]) for s in partial] == [("tool", 1), ("llm", 1)]
    cut = runs["4bf92f3577b34da6a3ce929d0e0e4736"]
    assert (cut["status"], cut["end_ns"], cut["outcome"], cut["error"], cut["n_errors"]) == ("incomplete", None, None, None, 1)
    # what was stored before is untouched
    assert [r for r in runs_of(db) if r["run_id"] in {b["run_id"] for b in before[0]}] == before[0]
    assert [s for s in steps_of(db) if s["run_id"] in {b["run_id"] for b in before[0]}] == before[1]


def test_nothing_importable_raises_and_leaves_the_database(tmp_path):
    db = tmp_path / "runs.db"
    import_file(OPENINFERENCE, db)
    snapshot = runs_of(db), steps_of(db), table(db, "imports", "imported_ns")
    cases = {
        "empty.jsonl": ("\n\n", "empty"),
        "prose.txt": ("hello\nworld\n", "2 of 2 records are malformed"),
        "bad.jsonl": ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "00f067aa0ba902b7"}]}]}]}\n', "missing traceId"),
        "http.jsonl": (lines(GENAI)[1] + "\n", "no spans"),
        "health.jsonl": (
            json.dumps({"resourceSpans": [json.loads(lines(GENAI)[2])["resourceSpans"][1]]}),
            "none of its 1 traces has a hotmess.*",
        ),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(InputError) as info:
            import_file(path, db)
        assert expected in str(info.value) and str(path) in str(info.value)
    broken = tmp_path / "broken.json"  # the pretty-printed whole-file form, cut short
    broken.write_text(json.dumps(json.loads(lines(GENAI)[0]), indent=2)[:-40])
    with pytest.raises(InputError, match=r"broken.json: not valid JSON: .* line \d+ column"):
        import_file(broken, db)
    huge = tmp_path / "huge.jsonl"
    huge.write_text(lines(GENAI)[0].replace('"intValue":"57"', '"intValue":"' + "9" * 30 + '"'))
    with pytest.raises(InputError, match="intValue 9+ is out of the 64-bit range"):
        import_file(huge, db)
    with pytest.raises(InputError, match="cannot read"):
        parse_otlp_json(tmp_path / "missing.jsonl")
    assert (runs_of(db), steps_of(db), table(db, "imports", "imported_ns")) == snapshot


def test_spans_repeated_across_lines_count_once_and_odd_trees_are_ordered(tmp_path):
    """A collector retry repeats a span; a missing parent makes an orphan; two parentless
    spans: the earliest is the root, the other a depth-1 step."""
    def span(span_id, parent, start, **attrs):
        return {
            "traceId": "ab" * 16, "spanId": span_id, "parentSpanId": parent or "", "name": f"s{span_id[-1]}",
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 10),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
        }

    def line(*spans):
        return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})

    root = span("0000000000000001", None, 100, **{"openinference.span.kind": "AGENT"})
    child = span("0000000000000002", "0000000000000001", 110, **{"openinference.span.kind": "LLM"})
    grandchild = span("0000000000000003", "0000000000000002", 110, **{"openinference.span.kind": "TOOL", "tool.name": "t"})
    orphan = span("0000000000000004", "00000000000000ff", 105)
    second_root = span("0000000000000005", None, 120)
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join([line(grandchild, orphan), line(root, child), line(second_root, grandchild)]))
    batch = parse_otlp_json(path)
    assert len(batch.runs) == 1 and len(batch.spans) == 5
    assert [(s["span_id"][-1], s["step_index"], s["depth"]) for s in batch.steps] == [
        ("4", 0, 1), ("2", 1, 1), ("3", 2, 2), ("5", 3, 1),
    ]
    assert batch.runs[0]["task_id"] == "span:s1"


# ---------------------------------------------------------------------------------------------
# the command


def test_cli_terminal_and_json(tmp_path):
    db = tmp_path / "cli.db"
    path = tmp_path / "with-bad-lines.jsonl"
    path.write_text(OPENINFERENCE.read_text() + "{not json\n" + '{"resourceSpans": 3}\n')
    out = " ".join(hotmess_cli("import", "otlp", str(path), "--db", str(db)).stdout.split())  # unwrapped
    assert "Imported 2 new runs (6 steps)" in out
    assert "2 of 4 records (lines) malformed and skipped" in out
    assert ", line 3: not valid JSON" in out and ", line 4: resourceSpans must be a list" in out
    assert "2 runs without a task id attribute: task id = hash of the first user message" in out
    again = json.loads(hotmess_cli("import", "otlp", str(GENAI), "--db", str(db), "--json",
                                   "--task-attr", "app.task", "--agent", "bot").stdout)
    assert again == {
        "schema_version": 1, "path": str(GENAI), "source": "otlp", "runs": 2, "new": 2, "already_stored": 0, "steps": 5,
        "spans": 7, "skipped": 0, "errors": [], "ignored_traces": 1, "hashed_task_ids": 0,
        "merged": 0, "left_out": {"spans": 0, "runs": {}}, "rootless": 0,
        "files": [{"path": str(GENAI), "records": 4, "spans": 8, "skipped": 0, "traces": 3, "empty": False}],
    }
    repeat = json.loads(hotmess_cli("import", "otlp", str(path), "--db", str(db), "--json").stdout)
    assert (repeat["new"], repeat["already_stored"], repeat["skipped"]) == (0, 2, 2)
    assert repeat["errors"][0].endswith(", line 3: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")
    runs = json.loads(hotmess_cli("runs", "--db", str(db), "--json").stdout)["runs"]
    assert len(runs["runs"] if isinstance(runs, dict) else runs) == 4


def test_cli_errors(tmp_path):
    db = tmp_path / "never.db"
    missing = hotmess_cli("import", "otlp", str(tmp_path / "nope.jsonl"), "--db", str(db), ok=False)
    assert missing.returncode == 1 and "nope.jsonl: no such file" in missing.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    proc = hotmess_cli("import", "otlp", str(empty), "--db", str(db), ok=False)
    assert proc.returncode == 1 and "empty.jsonl: the file is empty" in proc.stderr
    prose = tmp_path / "notes.txt"
    prose.write_text("these are not traces\n")
    proc = hotmess_cli("import", "otlp", str(prose), "--db", str(db), ok=False)
    assert proc.returncode == 1 and ", line 1: not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = hotmess_cli("import", "otlp", str(GENAI), "--db", str(db), "--agent", " ", ok=False)
    assert proc.returncode == 2 and "--agent" in proc.stderr and "must not be empty" in proc.stderr
    assert not db.exists()


def test_openinference_tool_input_is_the_call_not_the_parameter_schema(tmp_path):
    def attr(key, value):
        return {"key": key, "value": {"stringValue": value}}

    span = {
        "traceId": "1" * 32, "spanId": "2" * 16, "name": "get_weather", "kind": 1,
        "startTimeUnixNano": "1717000000000000000", "endTimeUnixNano": "1717000001000000000",
        "attributes": [
            attr("openinference.span.kind", "TOOL"), attr("tool.name", "get_weather"),
            attr("tool.parameters", '{"type": "object", "properties": {"city": {"type": "string"}}}'),
            attr("input.value", '{"city": "Oslo"}'), attr("output.value", "rain"),
        ],
    }
    root = {**span, "spanId": "3" * 16, "name": "agent",
            "attributes": [attr("openinference.span.kind", "AGENT"), attr("input.value", "weather in Oslo?")]}
    span["parentSpanId"] = root["spanId"]
    path = tmp_path / "tool.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [root, span]}]}]}) + "\n")
    batch = parse_otlp_json(path)
    (tool,) = [s for s in batch.steps if s["kind"] == "tool"]
    assert json.loads(tool["input"]) == {"city": "Oslo"}
