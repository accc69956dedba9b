"""The Inspect AI importer, on real logs that ``inspect_ai.eval`` writes in the test (offline,
the built-in ``mockllm`` model scripted by :mod:`inspect_logs`), compared with what the logs hold."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

inspect_log = pytest.importorskip("inspect_ai.log")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect_ai")

import inspect_logs as L  # noqa: E402

import hotmess  # noqa: E402
from hotmess.errors import InputError  # noqa: E402
from hotmess.integrations.inspect_ai import (  # noqa: E402
    InspectBatch,
    insert_inspect,
    parse_inspect,
    score_value,
)
from hotmess.store.database import connect  # noqa: E402
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS  # noqa: E402
from hotmess.tools import canonical_json  # noqa: E402

#: What the second model answers: s1 always wrong the same way, s2 and s3 always right.
OTHER = {"s1": ["4", "4", "4"], "s2": ["5", "5", "5"], "s3": ["7", "7", "7"]}


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inspect")
    made = {
        "eval": L.make_log(root / "models"),
        "other": L.make_log(root / "models", model="mockllm/other", answers=OTHER, log_format="json"),
        "crash": L.make_log(root / "crash", crash=True),
        "stopped": L.make_log(root / "stopped", crash=True, fail_on_error=True),
        "nested": L.make_nested_log(root / "nested"),
    }
    converted = root / "converted" / made["eval"].with_suffix(".json").name
    converted.parent.mkdir()
    inspect_log.write_eval_log(inspect_log.read_eval_log(made["eval"]), str(converted), format="json")
    made["converted"] = converted
    return made


@pytest.fixture(scope="module")
def batch(logs) -> InspectBatch:
    return parse_inspect(logs["eval"])


@pytest.fixture(scope="module")
def log(logs):
    return inspect_log.read_eval_log(logs["eval"], resolve_attachments=True)


def _db(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "runs.db", create=True)


def _stored(conn: sqlite3.Connection) -> tuple[int, int]:
    return (conn.execute("SELECT count(*) FROM runs").fetchone()[0],
            conn.execute("SELECT count(*) FROM steps").fetchone()[0])


def _events(sample, kind: str) -> list:
    """The sample's events of one kind the agent made (not the scorer's)."""
    scoring = {e.id for e in sample.events if e.event == "span_begin" and e.type in ("scorers", "scorer")}
    return [e for e in sample.events if e.event == kind and e.span_id not in scoring]


# --- the logs are real and were made offline ----------------------------------------------------


def test_logs_were_made_offline_and_hold_samples_by_epochs(logs, log):
    assert log.status == "success" and log.eval.config.epochs == L.EPOCHS
    assert len(log.samples) == len(L.TARGETS) * L.EPOCHS
    assert all(s.error is None for s in log.samples)  # a tiktoken download would have failed them
    usage = [e.output.usage.input_tokens for s in log.samples for e in _events(s, "model")]
    assert usage and all(n > 0 for n in usage)
    assert inspect_log.read_eval_log(logs["other"]).status == "success"


# --- runs ---------------------------------------------------------------------------------------


def test_one_run_per_sample_and_epoch(batch, log):
    assert all(list(r) == list(RUN_COLUMNS) for r in batch.runs)
    assert all(list(s) == list(STEP_COLUMNS) for s in batch.steps)
    assert Counter((r["task_id"], r["instance"]) for r in batch.runs) == Counter(
        (f"{log.eval.task}:{s.id}", str(s.epoch)) for s in log.samples)
    assert Counter(r["task_id"] for r in batch.runs) == {f"arith:{sid}": L.EPOCHS for sid in L.TARGETS}
    assert {(r["source"], r["agent"], r["status"]) for r in batch.runs} == {("inspect", "mockllm/model", "ok")}
    assert len({r["run_id"] for r in batch.runs}) == len(batch.runs)
    assert batch.skipped == [] and batch.flagged == [] and batch.duplicates == []
    assert batch.files[0] | {"path": None} == {"path": None, "task": "arith", "model": "mockllm/model",
                                               "status": "success", "scorer": "match", "samples": 9, "runs": 9,
                                               "skipped": 0}


def test_outcomes_are_the_final_completions(batch, log):
    by_key = {(r["task_id"], r["instance"]): r for r in batch.runs}
    for sample in log.samples:
        run = by_key[(f"arith:{sample.id}", str(sample.epoch))]
        assert run["outcome"] == canonical_json(sample.output.completion)
        assert run["reference"] == canonical_json(sample.target)
        attrs = json.loads(run["attributes"])
        assert attrs["hotmess.instruction"] == sample.input
        assert attrs["gen_ai.request.model"] == "mockllm/model"
        assert attrs["inspect.scores"] == {name: s.value for name, s in sample.scores.items()}
        assert (attrs["inspect.sample_id"], attrs["inspect.epoch"], attrs["inspect.scorer"]) == (
            sample.id, sample.epoch, "match")
        assert run["start_ns"] < run["end_ns"]
    # and the script's answers, trial by trial
    assert {k: json.loads(r["outcome"]) for k, r in by_key.items()} == L.expected_runs()


def test_success_and_score_from_the_scorer(logs, batch, log):
    correct = Counter(f"arith:{s.id}" for s in log.samples if s.scores["match"].value == "C")
    assert Counter(r["task_id"] for r in batch.runs if r["success"] == 1.0) == correct
    assert correct == {"arith:s1": 3, "arith:s2": 1}
    assert {r["score"] for r in batch.runs} == {0.0, 1.0}

    # partial credit: a score of 0.5 is kept as the score, a success only from the threshold
    close = parse_inspect(logs["eval"], scorer="closeness")
    values = {(s.id, str(s.epoch)): s.scores["closeness"].value for s in log.samples}
    assert {(r["task_id"][6:], r["instance"]): r["score"] for r in close.runs} == values
    assert sum(r["success"] for r in close.runs) == sum(v == 1.0 for v in values.values()) == 4
    lenient = parse_inspect(logs["eval"], scorer="closeness", threshold=0.5)
    assert sum(r["success"] for r in lenient.runs) == sum(v >= 0.5 for v in values.values()) == 8
    assert {r["run_id"] for r in lenient.runs} == {r["run_id"] for r in batch.runs}

    with pytest.raises(InputError, match=r"no scorer 'rubric' in this log \(its scorers: match, closeness\)"):
        parse_inspect(logs["eval"], scorer="rubric")
    with pytest.raises(ValueError, match="threshold"):
        parse_inspect(logs["eval"], threshold=float("nan"))


@pytest.mark.parametrize(("value", "expected"), [
    ("C", 1.0), ("correct", 1.0), ("I", 0.0), ("INCORRECT", 0.0), ("P", 0.5), ("N", 0.0), ("yes", 1.0),
    (True, 1.0), (False, 0.0), (0.75, 0.75), (3, 3.0), ("0.25", 0.25), ("maybe", None), ({"a": 1}, None),
    ([1, 0], None), (float("nan"), None),
])
def test_score_values(value, expected):
    assert score_value(value) == expected


def test_pass_hat_k_from_the_scores(tmp_path, logs, log):
    conn = _db(tmp_path)
    insert_inspect(conn, parse_inspect(logs["eval"]))
    result = hotmess.open(conn).analyze()
    c = Counter(s.id for s in log.samples if s.scores["match"].value == "C")
    n = L.EPOCHS
    for k in range(1, n + 1):
        direct = sum(math.comb(c[sid], k) / math.comb(n, k) for sid in L.TARGETS) / len(L.TARGETS)
        assert result.pass_hat_k[k] == pytest.approx(direct)
    assert result.n_tasks == 3 and result.n_runs == 9
    assert result.success_rate == pytest.approx(4 / 9)


# --- steps --------------------------------------------------------------------------------------


def test_tool_and_model_steps_match_the_events(batch, log):
    by_key = {(r["task_id"], r["instance"]): r for r in batch.runs}
    for sample in log.samples:
        run = by_key[(f"arith:{sample.id}", str(sample.epoch))]
        steps = batch.steps_of(run["run_id"])
        tools = [s for s in steps if s["kind"] == "tool"]
        events = _events(sample, "tool")
        assert [(s["tool"], json.loads(s["input"]), json.loads(s["output"])) for s in tools] == [
            (e.function, e.arguments, e.result) for e in events]
        assert [json.loads(s["input"]) for s in tools] == [dict(zip("xy", L.OPERANDS[sample.id], strict=True))]
        models = _events(sample, "model")
        llm = [s for s in steps if s["kind"] == "llm"]
        assert [(s["model"], s["input_tokens"], s["output_tokens"]) for s in llm] == [
            (e.model, e.output.usage.input_tokens, e.output.usage.output_tokens) for e in models]
        first_call = json.loads(llm[0]["input"])
        assert first_call == [{"role": "user", "content": sample.input}]
        answer = json.loads(llm[-1]["output"])
        assert answer == [{"role": "assistant", "content": sample.output.completion}]
        call = json.loads(llm[0]["output"])[0]["tool_calls"][0]
        assert (call["name"], call["arguments"]) == ("add", tools[0] and json.loads(tools[0]["input"]))
        assert [s["step_index"] for s in steps] == list(range(len(steps)))
        assert all(s["start_ns"] > 0 and s["end_ns"] >= s["start_ns"] for s in steps)
        assert [s["start_ns"] for s in steps] == sorted(s["start_ns"] for s in steps)
        assert run["n_steps"] == len(steps) == 3 and run["n_tool_calls"] == 1 and run["n_llm_calls"] == 2
        assert run["input_tokens"] == sum(e.output.usage.input_tokens for e in models)


def test_sub_agents_nest_and_tool_errors_are_recorded(logs):
    nested = parse_inspect(logs["nested"])
    (run,) = nested.runs
    steps = nested.steps_of(run["run_id"])
    shape = [(s["depth"], s["kind"], s["name"]) for s in steps]
    assert shape == [
        (1, "agent", "main"),
        (2, "llm", "chat mockllm/model"), (2, "tool", "helper"),
        (3, "agent", "helper"),
        (4, "llm", "chat mockllm/model"), (4, "tool", "add"), (4, "llm", "chat mockllm/model"), (4, "tool", "add"),
        (4, "llm", "chat mockllm/model"), (4, "tool", "submit"),
        (2, "llm", "chat mockllm/model"), (2, "tool", "submit"),
    ]
    ids = [s["span_id"] for s in steps]
    assert [s["parent_span_id"] for s in steps] == [None, ids[0], ids[0], ids[2], *[ids[3]] * 6, ids[0], ids[0]]
    adds = [s for s in steps if s["tool"] == "add"]
    assert [s["error"] for s in adds] == ["unknown: y must not be negative", None]
    assert json.loads(adds[1]["output"]) == "3"  # Inspect keeps results as text
    assert run["n_errors"] == 1 and run["n_steps"] == 10  # the agent spans are not counted
    assert steps[0]["end_ns"] >= steps[-1]["end_ns"] > 0
    assert run["success"] == 1.0


# --- other formats, many logs, re-imports -------------------------------------------------------


def test_json_logs(logs, batch):
    other = parse_inspect(logs["other"])
    assert Counter(r["task_id"] for r in other.runs if r["success"] == 1.0) == {"arith:s2": 3, "arith:s3": 3}
    assert {r["agent"] for r in other.runs} == {"mockllm/other"}
    assert {json.loads(r["outcome"]) for r in other.runs if r["task_id"] == "arith:s1"} == {"4"}
    # the .json conversion of a .eval log holds the same runs, with the same ids
    converted = parse_inspect(logs["converted"])

    def comparable(b: InspectBatch) -> list[dict]:
        return sorted(({**r, "attributes": {k: v for k, v in json.loads(r["attributes"]).items() if k != "inspect.log"}}
                       for r in b.runs), key=lambda r: r["run_id"])

    assert comparable(converted) == comparable(batch)
    assert sorted(converted.steps, key=lambda s: s["span_id"]) == sorted(batch.steps, key=lambda s: s["span_id"])


def test_a_directory_imports_in_one_transaction_and_compares_models(tmp_path, logs):
    conn = _db(tmp_path)
    both = parse_inspect(logs["eval"].parent)
    assert [f["model"] for f in both.files] == sorted(["mockllm/model", "mockllm/other"], key=lambda m: (
        [f for f in both.files if f["model"] == m][0]["path"]))
    result = insert_inspect(conn, both)
    assert (result.runs, result.new) == (18, 18)
    assert conn.execute("SELECT count(*) FROM imports WHERE source = 'inspect'").fetchone()[0] == 2
    by_model = hotmess.open(conn).analyze(by="gen_ai.request.model")
    assert set(by_model.groups) == {"mockllm/model", "mockllm/other"}
    assert by_model.groups["mockllm/other"].success_rate == pytest.approx(6 / 9)
    assert by_model.groups["mockllm/model"].success_rate == pytest.approx(4 / 9)
    (difference,) = by_model.differences
    assert difference.paired  # over the three tasks both models ran
    # the second model answers each task the same way every time: its error is all bias
    assert by_model.groups["mockllm/other"].incoherence.value == 0.0
    inc = by_model.groups["mockllm/model"].incoherence
    assert 0 < inc.value < 1 and inc.ci_low <= inc.value <= inc.ci_high
    assert difference.value == pytest.approx(inc.value) or difference.value == pytest.approx(-inc.value)


def test_reimporting_adds_nothing(tmp_path, logs):
    conn = _db(tmp_path)
    first = insert_inspect(conn, parse_inspect([logs["eval"], logs["other"]]))
    stored = _stored(conn)
    again = insert_inspect(conn, parse_inspect(logs["eval"].parent))
    converted = insert_inspect(conn, parse_inspect(logs["converted"]))
    assert (first.new, again.new, converted.new) == (18, 0, 0)
    assert _stored(conn) == stored
    # the same runs twice in one import: read once, the second copy listed
    twice = parse_inspect([logs["eval"], logs["converted"], logs["eval"]])
    assert len(twice.runs) == 9 and len(twice.duplicates) == 9
    assert all("was read before from" in d["message"] for d in twice.duplicates)


# --- crashes, logs that stopped early, malformed logs -------------------------------------------


def test_a_crashed_sample_is_a_failed_run_with_its_error(logs):
    crash = parse_inspect(logs["crash"])
    crashed = [r for r in crash.runs if r["status"] == "error"]
    assert [(r["task_id"], r["instance"]) for r in crashed] == [("arith:s2", "2")]
    (run,) = crashed
    assert run["error"] == "RuntimeError: the adder broke"
    assert run["outcome"] is None and run["success"] == 0.0 and math.isnan(run["score"])
    assert [(f["reason"], f["instance"]) for f in crash.flagged] == [("error", "2")]
    assert len(crash.runs) == 9 and crash.skipped == []


def test_a_log_that_stopped_early_imports_what_finished(tmp_path, logs):
    stopped = parse_inspect(logs["stopped"])
    assert inspect_log.read_eval_log(logs["stopped"], header_only=True).status == "error"
    assert {(r["task_id"], r["instance"]) for r in stopped.runs} == {
        ("arith:s1", "1"), ("arith:s1", "2"), ("arith:s2", "1"), ("arith:s2", "2"), ("arith:s3", "1")}
    # s3's second trial was cancelled when the eval stopped: not the agent's failure, not a run
    assert sorted((s["sample_id"], s["epoch"]) for s in stopped.skipped) == [
        ("s1", 3), ("s2", 3), ("s3", 2), ("s3", 3)]
    assert stopped.files[0]["skipped"] == 4
    assert any("stopped early (status error): 5 of 9" in n for n in stopped.notes())

    # a killed process leaves the journal and the samples written so far, no header
    killed = tmp_path / "killed.eval"
    gone = {"header.json", "summaries.json", "reductions.json", "samples/s3_epoch_3.json", "samples/s1_epoch_3.json"}
    _rewrite(logs["eval"], killed, lambda name, data: None if name in gone else data)
    partial = parse_inspect(killed)
    assert len(partial.runs) == 7
    assert sorted((s["sample_id"], s["epoch"], s["status"]) for s in partial.skipped) == [
        ("s1", 3, "started"), ("s3", 3, "started")]


def _rewrite(src: Path, dst: Path, change) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)


def _bad_epoch(name: str, data: bytes) -> bytes:
    if name != "samples/s2_epoch_2.json":
        return data
    sample = json.loads(data)
    sample["epoch"] = "two"
    return json.dumps(sample).encode()


@pytest.mark.parametrize(("label", "make", "where"), [
    ("member not JSON", lambda src, dst: _rewrite(src, dst, lambda n, d: b"{oops" if n == "samples/s2_epoch_2.json"
                                                  else d),
     r"bad\.eval, member samples/s2_epoch_2\.json \(sample 's2', epoch 2\): Inspect cannot read it \(JSONDecodeError"),
    ("member does not validate", lambda src, dst: _rewrite(src, dst, _bad_epoch),
     r"bad\.eval, member samples/s2_epoch_2\.json \(sample 's2', epoch 2\): does not validate as an Inspect log: "
     r"epoch: Input should be a valid integer"),
    ("truncated zip", lambda src, dst: dst.write_bytes(src.read_bytes()[:3000]), r"bad\.eval, header: Inspect cannot read it"),
    ("empty file", lambda src, dst: dst.write_bytes(b""), r"bad\.eval, header: Inspect cannot read it"),
])
def test_a_malformed_log_is_refused_naming_it_and_the_database_is_unchanged(tmp_path, logs, label, make, where):
    conn = _db(tmp_path)
    insert_inspect(conn, parse_inspect(logs["other"]))
    before = _stored(conn)
    bad = tmp_path / "bad.eval"
    make(logs["eval"], bad)
    with pytest.raises(InputError, match=where) as caught:
        parse_inspect([logs["other"], bad])
    assert caught.value.path == str(bad)
    assert _stored(conn) == before


def test_malformed_json_logs_and_paths(tmp_path, logs):
    data = json.loads(logs["other"].read_text())
    data["samples"][4]["epoch"] = "two"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"bad\.json, samples\[4\] \(the log's sample 4\): does not validate"):
        parse_inspect(bad)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(InputError, match=r"broken\.json: Inspect cannot read it"):
        parse_inspect(tmp_path / "broken.json")
    with pytest.raises(InputError, match="no such file or directory"):
        parse_inspect(tmp_path / "missing.eval")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not an Inspect log: expected a .eval or .json file"):
        parse_inspect(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no Inspect logs in this directory"):
        parse_inspect(tmp_path / "empty")


# --- options ------------------------------------------------------------------------------------


def test_redaction_agent_and_progress(logs, batch):
    calls = []
    renamed = parse_inspect(logs["eval"], agent="adder-v2", redact=lambda text: text.replace("What", "WHAT"),
                            progress=lambda unit, done, total: calls.append((unit, done, total)))
    assert {r["agent"] for r in renamed.runs} == {"adder-v2"}
    assert [r["run_id"] for r in renamed.runs] == [r["run_id"] for r in batch.runs]
    assert {json.loads(r["attributes"])["hotmess.instruction"][:4] for r in renamed.runs} == {"WHAT"}
    assert calls[0] == ("samples", 0, 9) and calls[-1] == ("samples", 9, 9)
    cut = parse_inspect(logs["eval"], max_chars=20)
    assert max(len(s["input"]) for s in cut.steps) < 60 and any("truncated" in s["input"] for s in cut.steps)


def test_hotmess_imports_without_inspect_and_names_the_extra(logs):
    code = (
        "import sys; sys.modules['inspect_ai'] = None\n"
        "import hotmess, hotmess.api\n"
        "from hotmess.integrations.inspect_ai import InspectNotInstalled, parse_inspect\n"
        "try:\n"
        f"    parse_inspect({str(logs['eval'])!r})\n"
        "except InspectNotInstalled as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "refused: importing Inspect AI logs needs inspect-ai: pip install 'hotmess[inspect]'" in out.stdout


def test_directory_listing_is_inspects(tmp_path, logs):
    d = tmp_path / "logs"
    d.mkdir()
    shutil.copy(logs["eval"], d / logs["eval"].name)
    (d / "logs.json").write_text("{}")  # Inspect's manifest, not a log
    (d / "notes.json").write_text("{}")
    assert len(parse_inspect(d).runs) == 9


def test_a_directory_imports_in_one_command_and_compares_models(tmp_path, logs):
    from test_cli import hotmess as cli

    db = tmp_path / "cli.db"
    out = " ".join(cli("import", "inspect", str(logs["eval"].parent), "--db", str(db)).stdout.split())
    assert "Imported 18 new runs" in out and "analyze --by gen_ai.request.model" in out
    again = json.loads(cli("import", "inspect", str(logs["eval"].parent), "--db", str(db), "--json").stdout)
    assert again["new"] == 0 and again["already_stored"] == 18 and again["schema_version"] == 1
    per_model = json.loads(cli("analyze", "--db", str(db), "--by", "gen_ai.request.model", "--json").stdout)
    inc = per_model["groups"]["mockllm/model"]["incoherence"]
    assert 0 < inc["value"] < 1 and inc["ci_low"] <= inc["value"] <= inc["ci_high"]
    missing = cli("import", "inspect", str(tmp_path / "nope"), "--db", str(tmp_path / "never.db"), ok=False)
    assert missing.returncode == 1 and "nope: no such file or directory" in missing.stderr
    assert not (tmp_path / "never.db").exists()
