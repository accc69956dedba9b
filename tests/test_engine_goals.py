"""``hotmess goals`` on the Dask engine: the demo (and the real tau-bench file) exported to
Parquet give the local goals' JSON, every figure within 1e-9 (the text drift's TF-IDF fit is
summed from the workers' token counts, so it may differ from the local one in the last bit).
The demo and the LocalCluster are test_engine's module fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import TAU, hotmess_here, needs_tau
from test_engine import assert_close, client, demo  # noqa: F401

import hotmess as hm
from hotmess.errors import HotmessError
from hotmess.results import jsonable

pytest.importorskip("pyarrow")
pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from hotmess.analyzers.goal_tasks import run_instructions  # noqa: E402
from hotmess.engine import goals as engine_goals  # noqa: E402
from hotmess.engine.dask_engine import grouped_by_task  # noqa: E402
from hotmess.engine.dask_goals import goal_steps  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")

VARIANTS = [
    {},
    {"method": "text", "align": "progress", "correction": False},
    {"task": "warranty-620", "align": "progress", "skip_read_only": True},
    {"method": "text", "drift_from": "instruction", "skip_read_only": True, "drift_threshold": 0.0},
]


def _ids(kwargs: dict) -> str:
    return ",".join(f"{a}={b}" for a, b in kwargs.items()) or "default"


def local_and_engine(db: Path, out: Path, dask_client, **kwargs) -> tuple[dict, dict]:
    """Both results as JSON, with every drifting run listed (the order of the list is checked),
    after checking that both hold every run, in the local readers' order, with its slope."""
    with hm.open(db) as store:
        local = store.goals(**kwargs)
    distributed = engine_goals(out, client=dask_client, **kwargs)
    assert distributed.goal_drift.run_ids.tolist() == local.goal_drift.run_ids.tolist()
    assert distributed.goal_drift.slopes == pytest.approx(local.goal_drift.slopes, nan_ok=True, abs=1e-12)
    return (jsonable(local.to_dict(drift_limit=None)), jsonable(distributed.to_dict(drift_limit=None)))


@pytest.mark.parametrize("kwargs", VARIANTS, ids=_ids)
def test_engine_gives_the_local_goals(demo, client, kwargs):  # noqa: F811
    db, out = demo
    local, distributed = local_and_engine(db, out, client, **kwargs)
    assert local["n_goals"] > 0 and local["positions"] and local["goal_drift"]["runs"] > 0
    assert_close(distributed, local)
    if kwargs.get("method", "exact") == "exact":
        assert distributed == local  # exact goals: no float summed in another order but per position


def test_cli_goals_on_the_engine(demo, client):  # noqa: F811
    """``--scheduler`` is the module's in-process cluster (a new LocalCluster per command costs
    seconds); ``hotmess goals --engine dask --source DIR`` without it makes one."""
    db, out = demo
    on = ("--engine", "dask", "--source", str(out), "--scheduler", client.scheduler.address)
    for extra in ((), ("--method", "text", "--align", "progress", "--limit", "50")):
        local = json.loads(hotmess_here("goals", "--db", str(db), "--json", *extra).stdout)
        distributed = json.loads(hotmess_here("goals", *on, "--json", *extra).stdout)
        assert_close(distributed, local)
    terminal = hotmess_here("goals", *on).stdout
    assert "goals by step index" in terminal and "Goal drift from each run's first goal" in terminal
    refused = hotmess_here("goals", *on, "--task", "no-such-task", ok=False)
    assert refused.returncode != 0 and "no runs in" in refused.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--method", "embedding"), "--method embedding needs an embedding function"),
    (("--tasks", "inferred"), "--tasks inferred is not available on the engine"),
    (("--method", "exact", "--drift-from", "instruction"), "--drift-from instruction needs --method text"),
])
def test_cli_refusals_are_one_sentence(demo, args, message):  # noqa: F811
    _, out = demo
    refused = hotmess_here("goals", "--engine", "dask", "--source", str(out), *args, ok=False)
    assert refused.returncode != 0 and message in refused.stderr and "Traceback" not in refused.stderr


def test_api_refusals(demo, client):  # noqa: F811
    db, out = demo
    with pytest.raises(HotmessError, match="not available on the engine"):
        engine_goals(out, client=client, method="embedding", embed=lambda texts: [[1.0]] * len(texts))
    with pytest.raises(HotmessError, match="align must be one of"):
        engine_goals(out, client=client, align="sideways")
    with pytest.raises(HotmessError, match="no runs/ directory"):
        engine_goals(db.parent, client=client)
    refused = hotmess_here("goals", "--db", str(db), "--source", str(out), ok=False)
    assert refused.returncode != 0 and "--source and --scheduler go with --engine dask" in refused.stderr


def _union(parts: list[dict]) -> dict:
    return {k: v for part in parts for k, v in part.items()}


def test_instructions_from_parquet_are_the_stored_ones(tmp_path, client):  # noqa: F811
    """A run without an instruction in its attributes has the one of its first LLM step's
    input (OTLP GenAI traces): found in the engine's goal steps as read_instructions finds it."""
    import sqlite3

    from hotmess.store.readers import read_instructions

    data = Path(__file__).parent / "data" / "otlp"
    db, out = tmp_path / "otlp.db", tmp_path / "parquet"
    hotmess_here("import", "otlp", str(data / "genai.jsonl"), str(data / "openinference.jsonl"), "--db", str(db))
    hotmess_here("export", "parquet", "--db", str(db), "--out", str(out))
    conn = sqlite3.connect(db)
    stored = read_instructions(conn)
    conn.close()
    assert "Please refund order 1042, it arrived broken." in stored.values()  # from an LLM step
    grouped = grouped_by_task(client, out, None, run_instructions, goal_steps("instruction"))
    found = _union([box.value for box in client.compute(grouped).result().tolist()])
    assert found == stored
    # without drift from the instruction, no prompt is carried: no instruction from a step
    grouped = grouped_by_task(client, out, None, run_instructions, goal_steps("first"))
    plain = _union([box.value for box in client.compute(grouped).result().tolist()])
    assert "Please refund order 1042, it arrived broken." not in plain.values()
    local, distributed = local_and_engine(db, out, client, method="text", drift_from="instruction")
    assert_close(distributed, local)


@pytest.fixture(scope="module")
def tau(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("engine-tau")
    db, out = base / "tau.db", base / "parquet"
    if TAU.exists():
        hotmess_here("import", "tau-bench", str(TAU), "--db", str(db))
        hotmess_here("export", "parquet", "--db", str(db), "--out", str(out))
    return db, out


@needs_tau
@pytest.mark.parametrize("kwargs", [{}, {"method": "text", "drift_from": "instruction", "align": "progress"}],
                         ids=_ids)
def test_tau_bench_goals_on_the_engine(tau, client, kwargs):  # noqa: F811
    db, out = tau
    local, distributed = local_and_engine(db, out, client, **kwargs)
    assert local["n_tasks"] == 50 and local["has_reference"]
    assert_close(distributed, local)
