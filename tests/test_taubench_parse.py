"""The tau-bench importer's parser, on the real gpt-4o airline file and on small broken files."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from hotmess.errors import InputError
from hotmess.integrations.taubench import (
    TauBenchBatch,
    is_state_changing,
    parse_taubench,
)
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS, Table
from hotmess.tools import canonical_json

REAL = Path("/work/shared/data/tau-bench/gpt-4o-airline.json")
needs_real = pytest.mark.skipif(not REAL.exists(), reason="tau-bench sample file not available")


@pytest.fixture(scope="module")
def raw() -> list[dict]:
    return json.loads(REAL.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def batch() -> TauBenchBatch:
    return parse_taubench(REAL)


def _calls(record: dict) -> list[tuple[dict, dict]]:
    """(tool call, its tool message) pairs: the tool message right after each call's turn."""
    traj = record["traj"]
    pairs = []
    for i, msg in enumerate(traj):
        for call in msg.get("tool_calls") or []:
            result = next(
                m for m in traj[i + 1 :] if m["role"] == "tool" and m["tool_call_id"] == call["id"]
            )
            pairs.append((call, result))
    return pairs


# --- the real file ---------------------------------------------------------------------------


@needs_real
def test_rows_have_exactly_the_table_columns(batch):
    assert len(batch.runs) == 200
    assert all(list(run) == list(RUN_COLUMNS) for run in batch.runs)
    assert all(list(step) == list(STEP_COLUMNS) for step in batch.steps)
    # and they load into the columnar tables the analyzers take
    assert len(Table.from_records(batch.runs, RUN_COLUMNS)) == 200
    assert len(Table.from_records(batch.steps, STEP_COLUMNS)) == len(batch.steps)


@needs_real
def test_fifty_tasks_by_four_trials(batch):
    per_task = Counter(run["task_id"] for run in batch.runs)
    assert len(per_task) == 50 and set(per_task.values()) == {4}
    assert {(r["task_id"], r["instance"]) for r in batch.runs} == {
        (str(t), str(k)) for t in range(50) for k in range(4)
    }
    assert {r["agent"] for r in batch.runs} == {"gpt-4o-airline"}
    assert {r["source"] for r in batch.runs} == {"tau-bench"}
    assert {r["status"] for r in batch.runs} == {"ok"}
    assert {
        (r["start_ns"], r["end_ns"], r["input_tokens"], r["output_tokens"]) for r in batch.runs
    } == {(0, 0, 0, 0)}


@needs_real
def test_success_is_reward_one(batch, raw):
    expected = sum(1 for rec in raw if rec["reward"] == 1.0)
    assert sum(r["success"] for r in batch.runs) == expected
    for run, rec in zip(batch.runs, raw, strict=True):
        assert run["score"] == rec["reward"]
        assert run["success"] == (1.0 if rec["reward"] == 1.0 else 0.0)


@needs_real
def test_ungraded_runs_are_flagged_failures(batch, raw):
    ungraded = {
        (str(r["task_id"]), str(r["trial"])) for r in raw if r["info"]["reward_info"] is None
    }
    assert len(ungraded) == 5
    assert {(f["task_id"], f["trial"]) for f in batch.flagged} == ungraded
    by_id = {r["run_id"]: r for r in batch.runs}
    for flag in batch.flagged:
        run = by_id[flag["run_id"]]
        assert run["success"] == 0.0
        attrs = json.loads(run["attributes"])
        assert attrs["hotmess.graded"] is False
        assert attrs["hotmess.flags"] == ["step_limit"]
        assert attrs["tau_bench.reward_info"] is None
        assert "step limit" in flag["reason"]
        assert raw[flag["index"]]["info"]["reward_info"] is None
    graded = [r for r in batch.runs if r["run_id"] not in {f["run_id"] for f in batch.flagged}]
    for run in graded:
        attrs = json.loads(run["attributes"])
        assert attrs["hotmess.graded"] is True and attrs["hotmess.flags"] == []
        assert set(attrs["tau_bench.reward_info"]) >= {"reward"}
        assert attrs["hotmess.instruction"] and attrs["hotmess.user_id"]


@needs_real
def test_steps_follow_message_order(batch, raw):
    for (run, steps), rec in zip(batch.iter_runs(), raw, strict=True):
        expected = []
        for msg in rec["traj"]:
            if msg["role"] == "assistant":
                expected.append(("llm", "chat"))
                expected += [("tool", c["function"]["name"]) for c in msg.get("tool_calls") or []]
        assert [(s["kind"], s["name"]) for s in steps] == expected
        assert [s["step_index"] for s in steps] == list(range(len(steps)))
        assert [s["span_id"] for s in steps] == [f"{run['run_id']}-{i}" for i in range(len(steps))]
        assert {(s["depth"], s["parent_span_id"]) for s in steps} == {(1, None)}
        assert run["n_steps"] == len(steps)
        assert run["n_llm_calls"] == sum(1 for m in rec["traj"] if m["role"] == "assistant")
        assert run["n_tool_calls"] == sum(1 for s in steps if s["kind"] == "tool")
    assert len({s["span_id"] for s in batch.steps}) == len(batch.steps)


@needs_real
def test_user_turns_are_inputs_of_the_next_assistant_step(batch, raw):
    steps = batch.steps_of(batch.runs[0]["run_id"])
    users = [m["content"] for m in raw[0]["traj"] if m["role"] == "user"]
    assert json.loads(steps[0]["input"]) == users[0]
    llm_inputs = [json.loads(s["input"]) for s in steps if s["kind"] == "llm" and s["input"]]
    # the last user turn ("###STOP###") has no assistant step after it
    assert llm_inputs == users[:-1]


@needs_real
def test_tool_steps_hold_parsed_arguments_and_matching_results(batch, raw):
    for (_run, steps), rec in zip(batch.iter_runs(), raw, strict=True):
        tool_steps = [s for s in steps if s["kind"] == "tool"]
        pairs = _calls(rec)
        assert len(tool_steps) == len(pairs)
        for step, (call, result) in zip(tool_steps, pairs, strict=True):
            assert step["tool"] == call["function"]["name"]
            assert json.loads(step["input"]) == json.loads(call["function"]["arguments"])
            assert json.loads(step["output"]) == result["content"]
            is_error = result["content"].startswith("Error")
            assert (step["error"] == result["content"]) if is_error else step["error"] is None


@needs_real
def test_reused_call_ids_pair_with_their_own_results(batch, raw):
    # record 0 reuses call ids: the 'calculate' call has the id of the earlier get_user_details
    traj = raw[0]["traj"]
    ids = [c["id"] for m in traj for c in m.get("tool_calls") or []]
    assert len(ids) > len(set(ids))
    calc = [s for s in batch.steps_of(batch.runs[0]["run_id"]) if s["tool"] == "calculate"][0]
    assert json.loads(calc["output"]) == "255.0"


@needs_real
def test_errors_are_tool_results_starting_with_error(batch, raw):
    error_results = sum(
        1
        for rec in raw
        for m in rec["traj"]
        if m["role"] == "tool" and m["content"].startswith("Error")
    )
    assert error_results > 0
    assert sum(r["n_errors"] for r in batch.runs) == error_results
    assert all(s["error"].startswith("Error") for s in batch.steps if s["error"] is not None)


@needs_real
def test_outcomes_are_effective_state_changing_calls(batch, raw):
    names = Counter()
    for run, rec in zip(batch.runs, raw, strict=True):
        outcome = json.loads(run["outcome"])
        expected = [
            {"name": c["function"]["name"], "kwargs": json.loads(c["function"]["arguments"])}
            for c, result in _calls(rec)
            if is_state_changing(c["function"]["name"])
            and not result["content"].startswith("Error")
        ]
        assert outcome == expected
        assert run["outcome"] == canonical_json(expected)
        names.update(a["name"] for a in outcome)
    assert names and all(is_state_changing(n) for n in names)
    assert not any(
        n.startswith(("get_", "search_", "list_")) or n in ("think", "calculate") for n in names
    )
    assert names["transfer_to_human_agents"] > 0


def test_state_changing_classification():
    for name in (
        "book_reservation",
        "cancel_reservation",
        "update_reservation_flights",
        "send_certificate",
        "transfer_to_human_agents",
        "getaway_plan",
        "listen",
    ):
        assert is_state_changing(name), name
    for name in (
        "get_user_details",
        "search_direct_flight",
        "list_all_airports",
        "find_order",
        "lookup",
        "read_file",
        "fetch_page",
        "query_db",
        "think",
        "calculate",
        "getUser",
        "Get_Reservation",
        "THINK",
    ):
        assert not is_state_changing(name), name


@needs_real
def test_state_changing_agrees_with_the_actions_mapper(raw):
    outcomes = pytest.importorskip("hotmess.analyzers.outcomes")
    names = {c["function"]["name"] for rec in raw for c, _ in _calls(rec)}
    names |= {"getUser", "getaway", "Get_X", "THINK", "lookup", "transfer_to_human_agents"}
    assert {n: is_state_changing(n) for n in names} == {
        n: not outcomes.is_read_only(n) for n in names
    }


@needs_real
def test_reference_is_the_ground_truth_actions(batch, raw):
    for run, rec in zip(batch.runs, raw, strict=True):
        assert json.loads(run["reference"]) == rec["info"]["task"]["actions"]


@needs_real
def test_run_ids_are_stable_unique_content_hashes(batch):
    again = parse_taubench(str(REAL))
    ids = [r["run_id"] for r in batch.runs]
    assert ids == [r["run_id"] for r in again.runs]
    assert [s["span_id"] for s in batch.steps] == [s["span_id"] for s in again.steps]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"tb-[0-9a-f]{32}", i) for i in ids)


def test_agent_name_is_part_of_the_id(tmp_path):
    path = _write(tmp_path, "my-agent.json", [_record()])
    default = parse_taubench(path)
    named = parse_taubench(path, agent="other")
    assert default.runs[0]["agent"] == "my-agent" and named.runs[0]["agent"] == "other"
    assert default.runs[0]["run_id"] != named.runs[0]["run_id"]


# --- small hand-written files ----------------------------------------------------------------


def _record(
    task_id=3, trial=1, reward=1.0, arguments='{"reservation_id": "ABC123"}', reward_info=True
):
    return {
        "task_id": task_id,
        "trial": trial,
        "reward": reward,
        "info": {
            "task": {
                "user_id": "u1",
                "instruction": "Cancel reservation ABC123.",
                "actions": [{"name": "cancel_reservation", "kwargs": {"reservation_id": "ABC123"}}],
                "outputs": [],
            },
            "reward_info": {"reward": reward, "info": {"r_actions": reward}, "actions": []}
            if reward_info
            else None,
            "source": "user",
        },
        "traj": [
            {"role": "system", "content": "policy"},
            {"role": "user", "content": "Please cancel ABC123."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "cancel_reservation", "arguments": arguments},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "name": "cancel_reservation",
                "content": "{}",
            },
            {"role": "assistant", "content": "Done."},
            {"role": "user", "content": "Thanks ###STOP###"},
        ],
    }


def _write(tmp_path: Path, name: str, data) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _error(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        parse_taubench(path)
    assert str(path) in str(info.value)
    return info.value


def test_small_valid_file(tmp_path):
    batch = parse_taubench(_write(tmp_path, "ok.json", [_record(), _record(trial=2, reward=0.0)]))
    assert [r["success"] for r in batch.runs] == [1.0, 0.0]
    run = batch.runs[0]
    assert run["task_id"] == "3" and run["instance"] == "1"
    assert json.loads(run["outcome"]) == [
        {"name": "cancel_reservation", "kwargs": {"reservation_id": "ABC123"}}
    ]
    assert [(s["kind"], s["name"]) for s in batch.steps_of(run["run_id"])] == [
        ("llm", "chat"),
        ("tool", "cancel_reservation"),
        ("llm", "chat"),
    ]
    assert batch.flagged == [] and batch.duplicates == []


def test_missing_file(tmp_path):
    err = _error(tmp_path / "absent.json")
    assert "cannot read" in err.message and err.record is None


def test_not_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"task_id": 1,\n  "trial": }]', encoding="utf-8")
    err = _error(path)
    assert err.message.startswith("not valid JSON") and "line 2" in err.message


def test_nan_is_not_json(tmp_path):
    path = tmp_path / "nan.json"
    path.write_text(
        json.dumps([_record()]).replace('"reward": 1.0', '"reward": NaN', 1), encoding="utf-8"
    )
    assert "NaN" in _error(path).message


def test_not_a_list(tmp_path):
    err = _error(_write(tmp_path, "obj.json", {"task_id": 1}))
    assert "list" in err.message and "object" in err.message


def test_record_not_an_object(tmp_path):
    err = _error(_write(tmp_path, "rec.json", [_record(), "oops"]))
    assert err.record == 1 and "record 1" in str(err)


def test_non_utf8(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps([_record()]).replace("Cancel", "Annul\u00e9").encode("latin-1"))
    err = _error(path)
    assert "UTF-8" in err.message and "0xe9" in err.message


def _drop(record: dict, dotted: str) -> dict:
    *parents, last = dotted.split(".")
    target = record
    for key in parents:
        target = target[key]
    del target[last]
    return record


@pytest.mark.parametrize(
    "key", ["task_id", "trial", "reward", "traj", "info", "info.task", "info.task.actions"]
)
def test_missing_key(tmp_path, key):
    err = _error(_write(tmp_path, "missing.json", [_record(), _drop(_record(task_id=7), key)]))
    assert f"missing key '{key}'" in err.message
    assert "record 1" in str(err)
    if key not in ("task_id", "trial"):
        assert err.record == "1 (task 7 trial 1)"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("traj", {"role": "user"}, "a list"),
        ("reward", "1.0", "a number"),
        ("reward", True, "a number"),
        ("trial", None, "an integer"),
        ("task_id", 2.5, "an integer"),
        ("info", [], "an object"),
    ],
)
def test_wrong_type(tmp_path, key, value, expected):
    record = _record()
    record[key] = value
    err = _error(_write(tmp_path, "types.json", [record]))
    assert f"'{key}' must be {expected}" in err.message
    assert "record 0" in str(err)


def test_wrong_nested_types(tmp_path):
    record = _record()
    record["info"]["task"]["actions"] = {"name": "x"}
    assert (
        "'info.task.actions' must be a list" in _error(_write(tmp_path, "a.json", [record])).message
    )
    record = _record()
    record["traj"][2]["tool_calls"][0]["function"]["name"] = None
    err = _error(_write(tmp_path, "b.json", [record]))
    assert "traj[2].tool_calls[0].function.name" in err.message
    assert err.record == "0 (task 3 trial 1)"
    record = _record()
    record["traj"][1] = "hello"
    assert (
        "'traj[1]' must be a message object" in _error(_write(tmp_path, "c.json", [record])).message
    )


def test_duplicate_trial_with_different_content(tmp_path):
    path = _write(tmp_path, "dup.json", [_record(), _record(task_id=4), _record(reward=0.0)])
    err = _error(path)
    assert "duplicate task 3 trial 1" in err.message
    assert "records 0 and 2" in err.message
    assert err.record == "2 (task 3 trial 1)"


def test_identical_duplicate_is_skipped(tmp_path):
    batch = parse_taubench(_write(tmp_path, "same.json", [_record(), _record()]))
    assert len(batch.runs) == 1
    assert batch.duplicates == [{"index": 1, "first_index": 0, "task_id": "3", "trial": "1"}]


def test_malformed_arguments_are_kept_not_fatal(tmp_path):
    bad = '{"reservation_id": "ABC123"'
    batch = parse_taubench(_write(tmp_path, "args.json", [_record(arguments=bad)]))
    tool = [s for s in batch.steps if s["kind"] == "tool"][0]
    assert json.loads(tool["input"]) == {"_raw": bad}
    assert "did not parse" in tool["error"]
    assert batch.runs[0]["n_errors"] == 1


def test_missing_reward_info_flags_the_run(tmp_path):
    batch = parse_taubench(_write(tmp_path, "limit.json", [_record(reward=1.0, reward_info=False)]))
    assert batch.runs[0]["success"] == 0.0
    assert batch.flagged[0]["task_id"] == "3" and batch.flagged[0]["trial"] == "1"
    assert json.loads(batch.runs[0]["attributes"])["hotmess.flags"] == ["step_limit"]


def test_canonical_json():
    assert canonical_json({"b": 1.0, "a": [2.5, "é", -0.0]}) == '{"a":[2.5,"é",0],"b":1}'
    assert canonical_json({"x": [1, 2.0]}) == canonical_json({"x": [1.0, 2]})
    with pytest.raises(ValueError):
        canonical_json(float("nan"))
