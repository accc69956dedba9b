"""Tasks inferred from the requests: paraphrases grouped back to their intents, stored beside the
recorded task ids, and analyzed with --tasks inferred, through the tracer, the API and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from test_cli import hotmess_here

import hotmess
from hotmess.analyzers.tasks import DEFAULT_THRESHOLD, infer_tasks, mask_request

PARAPHRASES = Path(__file__).parent / "data" / "paraphrases.json"


def _paraphrases() -> tuple[list[str], list[str]]:
    data = json.loads(PARAPHRASES.read_text())
    data.pop("_about")
    return [t for v in data.values() for t in v], [k for k, v in data.items() for _ in v]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return hotmess_here(*args)


def test_masking_leaves_the_wording_and_hides_what_varies():
    assert mask_request("Where is order 123?") == mask_request("where is order #4567?")
    masked = mask_request("Mail jane.doe@example.com about booking ZFA04Y on 2024-05-03 at 3:30 pm, "
                          "see https://x.example/a?b=1 (id 0b5e6a0e-3c1f-4d5a-9b7e-1f2a3b4c5d6e)")
    for hidden in ("jane", "zfa04y", "2024", "3:30", "https", "0b5e6a0e"):
        assert hidden not in masked
    assert "booking" in masked and "mail" in masked


def test_paraphrases_are_grouped_back_to_their_intents_and_intents_are_not_merged():
    texts, truth = _paraphrases()
    result = infer_tasks(texts)
    assert result.threshold == DEFAULT_THRESHOLD
    assert adjusted_rand_score(truth, list(result.labels)) >= 0.9
    intents_per_group = defaultdict(set)
    for label, intent in zip(result.labels, truth, strict=True):
        intents_per_group[label].add(intent)
    assert all(len(intents) == 1 for intents in intents_per_group.values())
    assert sum(t.n_runs for t in result.tasks) == len(texts)
    # a far lower threshold splits them: the threshold is doing the work
    assert infer_tasks(texts, threshold=0.3).n_tasks > 3 * result.n_tasks


def test_the_neighbour_graph_path_for_large_traffic_groups_as_the_dense_one():
    texts, truth = _paraphrases()
    dense = infer_tasks(texts)
    sparse = infer_tasks(texts, dense_limit=5)
    assert adjusted_rand_score(list(dense.labels), list(sparse.labels)) >= 0.9
    assert adjusted_rand_score(truth, list(sparse.labels)) >= 0.9


def test_same_traffic_gets_the_same_ids_and_missing_requests_get_none():
    texts, _ = _paraphrases()
    a = infer_tasks(texts + [None, "  "])
    b = infer_tasks(list(reversed(texts)))
    assert list(a.labels[:-2]) == list(reversed(list(b.labels)))
    assert a.labels[-1] is None and a.labels[-2] is None and a.n_missing == 2


def test_an_embedding_function_can_do_the_comparing():
    texts, truth = _paraphrases()
    intents = sorted(set(truth))
    by_text = dict(zip(texts, truth, strict=True))
    masked_truth = {mask_request(t): by_text[t] for t in texts}

    def embed(batch: list[str]) -> np.ndarray:  # a perfect "model": one axis per intent
        return np.array([[1.0 if masked_truth[t] == i else 0.0 for i in intents] for t in batch])

    result = infer_tasks(texts, method="embedding", embed=embed, threshold=0.5)
    assert adjusted_rand_score(truth, list(result.labels)) == 1.0
    with pytest.raises(ValueError, match="embed"):
        infer_tasks(texts, method="embedding")
    with pytest.raises(ValueError, match="threshold"):
        infer_tasks(texts, threshold=2.5)


def test_traffic_without_task_ids_gets_per_task_figures_after_tasks_infer(tmp_path):
    texts, truth = _paraphrases()
    db = tmp_path / "prod.db"
    hotmess.configure(db=db, flush_interval=0.05)

    # production-like: the task id is the request itself (as a message hash would be), so every
    # phrasing is its own task; the answer depends on the intent, wrong half the time for refunds
    @hotmess.trace(task_id=lambda request, k: request, agent="support")
    def agent(request: str, k: int) -> str:
        intent = by_text[request]
        hotmess.action("route", args={"queue": intent})
        answer = "refund denied" if intent == "refund" and k % 2 else f"done: {intent}"
        hotmess.outcome(answer, success=answer != "refund denied")
        return answer

    by_text = dict(zip(texts, truth, strict=True))
    for k, text in enumerate(texts):
        agent(text, k)
    assert hotmess.flush(timeout=20)
    hotmess.shutdown()

    store = hotmess.open(db)
    before = store.analyze()
    assert before.n_single_run_tasks == len(texts)  # nothing to measure: every task has one run

    out = json.loads(_cli("tasks", "infer", "--db", str(db), "--json").stdout)
    assert out["n_requests"] == len(texts) and out["n_missing"] == 0
    assert 7 <= out["n_tasks"] <= 10
    listed = json.loads(_cli("tasks", "--db", str(db), "--json").stdout)["tasks"]
    assert sum(t["n_runs"] for t in listed) == len(texts)
    assert {"task_id", "n_runs", "n_distinct", "example", "tightness", "method", "threshold"} <= set(listed[0])

    runs = json.loads(_cli("runs", "--db", str(db), "--json").stdout)["runs"]
    assert all(r["inferred_task_id"].startswith("req:") for r in runs)
    assert {r["task_id"] for r in runs} == set(texts)  # the recorded ids are untouched

    after = json.loads(_cli("analyze", "--db", str(db), "--tasks", "inferred", "--json").stdout)
    tasks = {t["task_id"]: t for t in after["tasks"]}
    refund = next(r["inferred_task_id"] for r in runs if by_text[r["task_id"]] == "refund")
    assert tasks[refund]["n"] == 6 and tasks[refund]["variance"] > 0
    assert after["n_single_run_tasks"] <= 2
    assert after["incoherence"]["value"] is not None
    assert json.loads(_cli("analyze", "--db", str(db), "--json").stdout)["n_single_run_tasks"] == len(texts)

    # goals and report accept the same choice
    goals = json.loads(_cli("goals", "--db", str(db), "--tasks", "inferred", "--json").stdout)
    assert goals["positions"][0]["n_runs"] == len(texts)
    horizon = json.loads(_cli("horizon", "--db", str(db), "--tasks", "inferred", "--groups", "2", "--json").stdout)
    assert horizon["n_tasks"] == after["n_tasks"] and horizon["n_runs"] == len(texts)
    drift = json.loads(_cli("drift", "--db", str(db), "--tasks", "inferred", "--window", "12runs", "--json").stdout)
    assert sum(w["n_runs"] for w in drift["windows"]) == len(texts)
    recorded = json.loads(_cli("drift", "--db", str(db), "--window", "12runs", "--json").stdout)
    assert sum(w["n_tasks"] for w in recorded["windows"]) == len(texts)  # every request its own task
    assert sum(w["n_tasks"] for w in drift["windows"]) < len(texts) / 2
    page = tmp_path / "r.html"
    _cli("report", "--db", str(db), "--tasks", "inferred", "--out", str(page))
    assert refund in page.read_text()

    # inferring again replaces the grouping, never the recorded ids
    again = store.infer_tasks(threshold=0.3)
    assert again.n_tasks > out["n_tasks"]
    assert len(store.tasks()) == again.n_tasks
    assert {r["task_id"] for r in store.runs().to_records()} == set(texts)
    store.close()


def test_tasks_before_inference_and_bad_options_say_what_to_do(tmp_path):
    db = tmp_path / "empty.db"
    hotmess.configure(db=db, flush_interval=0.05)

    @hotmess.trace(task_id="t")
    def agent(question: str) -> str:
        return "a"

    agent("hi")
    assert hotmess.flush(timeout=20)
    hotmess.shutdown()
    assert "hotmess tasks infer" in _cli("tasks", "--db", str(db)).stdout
    bad = subprocess.run([sys.executable, "-c", "from hotmess.cli import main; main()", "analyze",
                          "--db", str(db), "--tasks", "guessed"], capture_output=True, text=True)
    assert bad.returncode == 1 and "recorded, inferred" in bad.stderr
