"""Goal drift measured from each run's instruction (``drift_from="instruction"``).

Hand-computed cases on small tables; where the instruction comes from for every way runs get
in (``@hotmess.trace``, the LangChain handler, the OTLP JSON importer on the real fixture
files, the tau-bench importer), read back from real SQLite files; and ``hotmess goals
--drift-from instruction`` on the real tau-bench file, checked against a direct computation.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import read_back
from test_cli import TAU, hotmess, needs_tau

import hotmess as hm
from hotmess.analyzers.goals import goal_coherence
from hotmess.integrations.otlp_json import parse_otlp_json
from hotmess.store.database import connect
from hotmess.store.readers import read_goal_steps, read_instructions, read_runs
from hotmess.store.writer import insert_runs
from hotmess.tables import Table
from hotmess.vocab.instructions import instruction_text, run_instruction, step_instruction

OTLP = Path(__file__).parent / "data" / "otlp"


def tables(runs: dict[str, list[str]], instructions: dict[str, str | None] | None = None):
    """Runs ``{run_id: [goal texts]}`` of one task as run and step tables, one explicit goal
    record per goal; with ``instructions``, an ``instruction`` column."""
    run_rows = [{"run_id": r, "task_id": "t", "status": "ok"} for r in runs]
    if instructions is not None:
        for row in run_rows:
            row["instruction"] = instructions.get(row["run_id"])
    step_rows = [
        {"run_id": r, "step_index": i, "kind": "goal", "goal": g}
        for r, goals in runs.items() for i, g in enumerate(goals)
    ]
    run_cols = {"run_id": "O", "task_id": "O", "status": "O"}
    if instructions is not None:
        run_cols["instruction"] = "O"
    step_cols = {"run_id": "O", "step_index": "int64", "kind": "O", "goal": "O"}
    return Table.from_records(run_rows, run_cols), Table.from_records(step_rows, step_cols)


def slope(distances: list[float]) -> float:
    return float(np.polyfit(np.arange(len(distances)), distances, 1)[0])


# ---------------------------------------------------------------------------- the formula


def test_text_distance_is_one_minus_tfidf_cosine_fitted_with_the_instructions():
    runs, steps = tables({"r": ["book flight", "book flight now", "book flight now", "book flight now"]})
    result = goal_coherence(runs, steps, method="text", drift_from="instruction",
                            instructions={"r": "  Book   FLIGHT "})
    # distinct texts: "book flight", "book flight now" (goals) and "book flight" (the
    # instruction, normalised: the same text); n = 2, smooth idf ln(3/2) + 1 for "now", 1 for
    # book and flight. Goal 0 is the instruction's text: distance 0.
    idf_now = np.log(3 / 2) + 1
    d = 1 - 2 / (np.sqrt(2) * np.sqrt(2 + idf_now**2))
    assert result.goal_drift.slopes[0] == pytest.approx(slope([0, d, d, d]))
    # an instruction that is a text of its own joins the fit: n = 3, idf ln(4/2) + 1 for "now"
    other = goal_coherence(runs, steps, method="text", drift_from="instruction",
                           instructions={"r": "flight book"})
    idf_now = np.log(4 / 2) + 1
    d = 1 - 2 / (np.sqrt(2) * np.sqrt(2 + idf_now**2))
    assert other.goal_drift.slopes[0] == pytest.approx(slope([0, d, d, d]))


AWAY_STAY = {
    "away": ["book flight paris", "cancel hotel rome", "cancel hotel rome", "pay invoice"],
    "stay": ["book flight paris", "Book flight Paris", "book flight paris"],
    "none": ["book flight paris", "cancel hotel rome", "pay invoice"],
    "blank": ["book flight paris", "cancel hotel rome", "pay invoice"],
    "short": ["book flight paris", "pay invoice"],
    "no-goal": [],
}
INSTRUCTED = {"away": "Book flight Paris", "stay": "Book flight Paris", "blank": "   ",
              "short": "book flight paris", "no-goal": "book flight paris"}


def test_a_run_moving_away_from_its_instruction_drifts_one_staying_on_it_does_not():
    runs, steps = tables(AWAY_STAY)
    result = goal_coherence(runs, steps, method="text", drift_from="instruction",
                            instructions=INSTRUCTED, drift_threshold=0.1)
    drift = result.goal_drift
    slopes = dict(zip(drift.run_ids.tolist(), drift.slopes.tolist(), strict=True))
    # no token shared with the instruction: distance 1; the same tokens: 0
    assert slopes["away"] == pytest.approx(slope([0, 1, 1, 1])) and slopes["away"] > 0
    assert slopes["stay"] == pytest.approx(0.0, abs=1e-12)
    # no instruction (missing or blank) with 3 goals: left out and counted; 2 goals: not fitted
    assert np.isnan(slopes["none"]) and np.isnan(slopes["blank"]) and np.isnan(slopes["short"])
    assert (drift.runs, drift.runs_without_instruction) == (2, 2)
    assert drift.mean_slope == pytest.approx(slope([0, 1, 1, 1]) / 2)
    assert [d.run_id for d in drift.drifting] == ["away"]
    out = result.to_dict()["goal_drift"]
    assert (out["from"], out["runs"], out["runs_without_instruction"]) == ("instruction", 2, 2)
    assert isinstance(out["mean_slope"], float) and result.warnings == ()
    # the same from an instruction column of the runs table
    runs_col, steps_col = tables(AWAY_STAY, INSTRUCTED)
    column = goal_coherence(runs_col, steps_col, method="text", drift_from="instruction").goal_drift
    assert np.array_equal(column.slopes, drift.slopes, equal_nan=True)
    # from the first goal, as before: "stay" and "away" both start on their first goal
    first = goal_coherence(runs, steps, method="text").to_dict()["goal_drift"]
    assert (first["from"], first["runs_without_instruction"], first["runs"]) == ("first", None, 4)


def test_no_instruction_at_all_is_a_warning_and_no_drift():
    runs, steps = tables(AWAY_STAY)
    result = goal_coherence(runs, steps, method="text", drift_from="instruction", instructions={})
    assert (result.goal_drift.runs, result.goal_drift.runs_without_instruction) == (0, 4)
    assert result.to_dict()["goal_drift"]["mean_slope"] is None
    assert "none of the 4 runs with 3 goals or more has an instruction" in result.warnings[0]


def test_embedding_distance_is_cosine_distance_from_the_instruction():
    directions = {"north": (1.0, 0.0), "east": (0.0, 1.0), "both": (1.0, 1.0), "south": (-1.0, 0.0)}

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([next(v for k, v in directions.items() if k in t) for t in texts])

    runs, steps = tables({"r": ["go north", "go both ways", "go east", "go south"]})
    drift = goal_coherence(runs, steps, method="embedding", embed=embed, drift_from="instruction",
                           instructions={"r": "head north"}).goal_drift
    assert drift.slopes[0] == pytest.approx(slope([0, 1 - 1 / np.sqrt(2), 1, 2]))

    def flat(texts: list[str]) -> np.ndarray:  # other dimensions for the instructions
        return np.ones((len(texts), 2 if any("go" in t for t in texts) else 3))

    with pytest.raises(ValueError, match="3 dimensions for the instructions and 2 for the goals"):
        goal_coherence(runs, steps, method="embedding", embed=flat, drift_from="instruction",
                       instructions={"r": "head north"})


def test_exact_goals_and_missing_instructions_are_refused():
    runs, steps = tables(AWAY_STAY)
    with pytest.raises(ValueError, match="needs method='text' or 'embedding'"):
        goal_coherence(runs, steps, drift_from="instruction", instructions=INSTRUCTED)
    with pytest.raises(ValueError, match="needs instructions="):
        goal_coherence(runs, steps, method="text", drift_from="instruction")
    with pytest.raises(ValueError, match="drift_from must be one of first, instruction"):
        goal_coherence(runs, steps, drift_from="start")
    with pytest.raises(ValueError, match="is int, not text"):
        goal_coherence(runs, steps, method="text", drift_from="instruction", instructions={"away": 3})


# ---------------------------------------------------------------------------- where it is found


def test_instruction_text_rules():
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "parts": [{"type": "text", "content": "Refund "}, {"type": "text", "content": "order 7"}]}]
    assert instruction_text({"messages": messages}) == "Refund order 7"
    assert instruction_text({"messages": [["system", "s"], ["user", "Cancel order 9"]]}) == "Cancel order 9"
    assert instruction_text([{"type": "human", "content": [{"type": "text", "text": "hi"}]}]) == "hi"
    assert instruction_text({"task": {"id": 3, "instruction": "Rebook"}, "trial": 0}) == "Rebook"
    assert instruction_text({"task_id": "t", "question": "Why?", "model": "m"}) == "Why?"
    assert instruction_text({"task_id": "t", "text": "Do it", "style": "terse"}) == "Do it\nterse"
    assert instruction_text({"task_id": "t", "n": 3}) is None and instruction_text("  ") is None
    assert run_instruction({"hotmess.instruction": "From tau", "hotmess.input": '"other"'}) == "From tau"
    assert run_instruction({"hotmess.input": '{"task_id": "t", "prompt": "Go"}'}) == "Go"
    assert run_instruction({"hotmess.input": '{"prompt": "cut at 8192 chara'}) is None
    assert run_instruction({"llm.input_messages.0.message.role": "system",
                            "llm.input_messages.0.message.content": "s",
                            "llm.input_messages.1.message.role": "user",
                            "llm.input_messages.1.message.content": "Book"}) == "Book"
    assert run_instruction({"input.value": "plain text"}) == "plain text"
    assert run_instruction({"gen_ai.operation.name": "invoke_agent"}) is None and run_instruction(None) is None
    assert step_instruction('"Hi, I want to fly."') == "Hi, I want to fly."
    assert step_instruction('[{"role": "system", "content": "policy"}]') is None


def test_traced_runs_instruction_is_the_functions_input_and_drift_is_read_from_sqlite(db):
    @hm.trace(agent="qa")
    def answer(task_id: str, question: str, wander: bool) -> str:
        hm.goal(question)
        hm.goal("search flights to paris" if not wander else "check hotel prices in rome")
        hm.goal(question if not wander else "compare car rentals in lisbon")
        return "done"

    @hm.trace(agent="chat")
    def chat(task_id: str, messages: list) -> str:
        for text in ("book a flight to paris", "book a flight to paris", "book a flight to paris"):
            hm.goal(text)
        return "ok"

    @hm.trace(agent="opaque")
    def opaque(task_id: str, n: int) -> int:
        for text in ("one", "two", "three"):
            hm.goal(text)
        return n

    answer("t", "Book a flight to Paris", wander=False)
    answer("t", "Book a flight to Paris", wander=True)
    chat("t", [{"role": "system", "content": "policy"}, {"role": "user", "content": "Book a flight to Paris"}])
    opaque("t", 3)
    read_back(db)
    conn = connect(db, create=False)
    runs, steps, found = read_runs(conn), read_goal_steps(conn), read_instructions(conn)
    conn.close()
    agent = dict(zip(runs["run_id"].tolist(), runs["agent"].tolist(), strict=True))
    assert sorted((agent[r], text) for r, text in found.items()) == [
        ("chat", "Book a flight to Paris"), ("qa", "Book a flight to Paris"), ("qa", "Book a flight to Paris")]
    drift = goal_coherence(runs, steps, method="text", drift_from="instruction", instructions=found).goal_drift
    slopes = {(agent[r], round(s, 6)) for r, s in zip(drift.run_ids.tolist(), drift.slopes.tolist(), strict=True)
              if agent[r] != "opaque"}
    steady, wandering = sorted(s for a, s in slopes if a == "qa")
    assert wandering > 0.2 and abs(steady) < 0.1 and ("chat", 0.0) in slopes
    assert (drift.runs, drift.runs_without_instruction) == (3, 1)

    # the terminal names what drift is measured from and counts the run left out
    out = " ".join(hotmess("goals", "--db", str(db), "--method", "text", "--drift-from", "instruction").stdout.split())
    assert "Goal drift from each run's instruction: mean slope" in out
    assert "over 3 runs with ≥ 3 goals" in out and "1 run with ≥ 3 goals has no instruction (left out)." in out


def test_langchain_runs_instruction_is_the_first_user_message(db):
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.runnables import RunnableLambda

    handler = hm.langchain_handler(task_id="lc")
    model = FakeListChatModel(responses=["ok", "ok"])
    model.invoke([SystemMessage("be nice"), HumanMessage("Refund order 7 please")], config={"callbacks": [handler]})
    chain = RunnableLambda(lambda x: model.invoke(x["messages"]))
    chain.invoke({"messages": [("system", "sys"), ("user", "Cancel order 9")]}, config={"callbacks": [handler]})
    read_back(db)
    conn = connect(db, create=False)
    assert sorted(read_instructions(conn).values()) == ["Cancel order 9", "Refund order 7 please"]
    conn.close()


def test_otlp_runs_instruction_is_the_first_user_message(tmp_path):
    found = {}
    for name in ("openinference", "genai"):
        db = tmp_path / f"{name}.db"
        batch = parse_otlp_json(OTLP / f"{name}.jsonl")
        conn = connect(db)
        insert_runs(conn, batch.runs, batch.steps, source="otlp", path=OTLP / f"{name}.jsonl", spans=batch.spans)
        found[name] = read_instructions(conn)
        conn.close()
    # OpenInference: the root's input.value; GenAI: the first LLM step's input messages (the
    # root has none); the second GenAI trace has no user message anywhere: no instruction
    assert set(found["openinference"].values()) == {"Book me a flight from SFO to JFK on May 3."}
    assert len(found["openinference"]) == 2
    assert found["genai"] == {"4bf92f3577b34da6a3ce929d0e0e4736": "Please refund order 1042, it arrived broken."}


# ---------------------------------------------------------------------------- tau-bench, the command


@pytest.fixture(scope="module")
def tau_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("tau-instruction") / "tau.db"
    if TAU.exists():
        hotmess("import", "tau-bench", str(TAU), "--db", str(db))
    return db


def _direct_mean_slope(records: list[dict]) -> tuple[float, int]:
    """Drift from the task instruction computed straight from the file: goals are the tool
    calls in order; TF-IDF fitted on the distinct goal texts and instructions."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    def norm(text: str) -> str:
        return " ".join(text.split()).casefold()

    runs = []
    for r in records:
        goals = [norm(json.dumps([c["function"]["name"], json.loads(c["function"]["arguments"])], sort_keys=True))
                 for m in r["traj"] if m.get("role") == "assistant" for c in m.get("tool_calls") or []]
        runs.append((norm(r["info"]["task"]["instruction"]), goals))
    texts = list(dict.fromkeys([g for _, gs in runs for g in gs] + [i for i, gs in runs if gs]))
    vectorizer = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b").fit(texts)
    slopes = []
    for instruction, goals in runs:
        if len(goals) >= 3:
            cosine = (vectorizer.transform(goals) @ vectorizer.transform([instruction]).T).toarray().ravel()
            slopes.append(slope(list(np.clip(1 - cosine, 0, 1))))
    return float(np.mean(slopes)), len(slopes)


@needs_tau
def test_tau_bench_drift_from_the_instruction(tau_db):
    conn = sqlite3.connect(tau_db)
    stored = read_instructions(conn)
    conn.close()
    records = json.loads(TAU.read_text())
    assert len(stored) == 200 and set(stored.values()) == {r["info"]["task"]["instruction"] for r in records}

    out = json.loads(hotmess("goals", "--db", str(tau_db), "--method", "text", "--drift-from", "instruction",
                             "--json").stdout)
    drift = out["goal_drift"]
    mean, n = _direct_mean_slope(records)
    assert (drift["from"], drift["runs"], drift["runs_without_instruction"]) == ("instruction", n, 0)
    assert drift["mean_slope"] == pytest.approx(mean, abs=1e-12)
    assert out["method"] == "text" and out["n_runs"] == 200 and out["positions"]

    proc = hotmess("goals", "--db", str(tau_db), "--drift-from", "instruction", ok=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "hotmess: error: --drift-from instruction needs --method text (an exact goal key never "
        "equals an instruction, so every distance would be 1)"]
    bad = hotmess("goals", "--db", str(tau_db), "--drift-from", "start", ok=False)
    assert bad.returncode == 1 and "--drift-from must be one of first, instruction" in bad.stderr
