"""``drift`` on the Dask engine: the demo exported to Parquet gives the local ``hotmess drift``'s
result (every figure within 1e-9, and in fact the same JSON, permutation p-values included)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import hotmess_here
from test_engine import assert_close, client, demo  # noqa: F401  (module fixtures)

import hotmess as hm
from hotmess.analyzers.drift import drift
from hotmess.errors import HotmessError
from hotmess.results import to_json
from hotmess.tables import RUN_COLUMNS, STEP_COLUMNS, Table

pytest.importorskip("pyarrow")
pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from hotmess.engine import drift as engine_drift  # noqa: E402

# dask's Parquet reader calls a pandas API that pandas 3.1 deprecates (not ours to fix)
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")

VARIANTS = [
    {},
    {"window": "6runs"},
    {"window": "25runs", "outcome": "text"},
    {"outcome": "actions", "window": "3d"},
    {"by": "agent", "window": "10runs", "outcome": "text"},
    {"by": "task", "window": "1w", "baseline": -1, "alpha": 0.2, "n_perm": 200, "seed": 7},
]


@pytest.mark.parametrize("kwargs", VARIANTS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_engine_gives_the_local_drift(demo, client, kwargs):  # noqa: F811
    db, out = demo
    with hm.open(db) as store:
        local = to_json(store.drift(**kwargs))
    series = local["groups"].values() if "groups" in local else [local]
    assert sum(len(s["windows"]) for s in series) > 1  # windows to compare, not one
    if not kwargs:  # the default exercises the change reports (success before and after)
        assert local["change_points"] and local["windows"][0]["p_value"] is None
    distributed = to_json(engine_drift(out, client=client, **kwargs))
    assert_close(distributed, local)
    assert distributed == local  # and in fact the very same JSON: one implementation, same order


def test_engine_drift_refuses_what_it_cannot_do(demo, client, tmp_path):  # noqa: F811
    _, out = demo
    with pytest.raises(HotmessError, match="inferred"):
        engine_drift(out, client=client, tasks="inferred")
    with pytest.raises(HotmessError, match="outcome must be one of"):
        engine_drift(out, client=client, outcome="embedding")
    with pytest.raises(HotmessError, match="window must be"):
        engine_drift(out, client=client, window="soon")
    with pytest.raises(HotmessError, match="no runs/ directory"):
        engine_drift(tmp_path, client=client)
    with pytest.raises(HotmessError, match="baseline=99 is not a window index"):
        engine_drift(out, client=client, baseline=99)
    with pytest.raises(HotmessError, match="neither a runs column"):
        engine_drift(out, client=client, by="no.such.attribute")


def test_cli_drift_on_the_engine(demo, client):  # noqa: F811
    db, out = demo
    args = ("--json", "--window", "2d", "--n-perm", "200", "--seed", "3")
    local = json.loads(hotmess_here("drift", "--db", str(db), *args).stdout)
    distributed = json.loads(hotmess_here("drift", "--engine", "dask", "--source", str(out), *args,
                                          "--scheduler", client.scheduler.address).stdout)
    assert distributed == local


DAY = 86_400 * 10**9
JAN_1 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
TEXTS = ["refund issued", "the refund was issued", "order cancelled", "cancelled the order", "no idea"]


def awkward_runs() -> Table:
    """Runs the demo lacks, in the order of the SQLite readers: a task-less task, runs that
    never ended (a whole task of them), crashes, runs of a task starting at the same moment
    (instance order against run-id order), an attribute some tasks have and others not; and a
    change of behaviour half-way."""
    rng = np.random.default_rng(4)
    rows = []
    for task in [None, "t1", "t2", "t3", "t4"]:
        for i in range(24):
            start = JAN_1 + (i // 4) * DAY + (i // 2) * 1000  # pairs share a start time
            status = "incomplete" if task == "t4" or i % 11 == 5 else "error" if i % 7 == 3 else "ok"
            late = i >= 12  # the behaviour changes half-way: other outcomes, less success
            ok = float(rng.random() < (0.2 if late else 0.8))
            text = TEXTS[3 + int(rng.integers(2))] if late else TEXTS[int(rng.integers(3))]
            rows.append({
                "run_id": f"{task}-{99 - i:03d}", "task_id": task, "agent": "bot", "instance": f"{i:02d}",
                "status": status, "start_ns": start, "end_ns": 0 if status == "incomplete" else start + 10,
                "outcome": None if status != "ok" else json.dumps(text),
                "success": float("nan") if status == "incomplete" else 0.0 if status == "error" else ok,
                "error": "TimeoutError: slow" if status == "error" else None,
                "attributes": json.dumps({"model": f"m{i % 2}"} if task in ("t1", "t2") else {}),
                "n_steps": 2,
            })
    rows.sort(key=lambda r: (r["task_id"] is not None, r["task_id"] or "", r["start_ns"], r["instance"], r["run_id"]))
    return Table.from_records(rows, RUN_COLUMNS)


@pytest.mark.parametrize("kwargs", [
    {"window": "7runs", "outcome": "text"},
    {"window": "1d"},
    {"window": "4runs", "by": "model", "outcome": "text", "n_perm": 300, "seed": 2},
], ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_engine_drift_of_awkward_runs(client, tmp_path, kwargs):  # noqa: F811
    from hotmess.parquet import write_parquet

    runs = awkward_runs()
    write_parquet(runs, Table.empty(STEP_COLUMNS), tmp_path / "pq")
    local = to_json(drift(runs, None, **kwargs))
    assert local["n_incomplete"] > 24
    series = local["groups"].values() if "groups" in local else [local]
    assert any(s["change_points"] for s in series)  # the sides of a change are summarised too
    distributed = to_json(engine_drift(tmp_path / "pq", client=client, **kwargs))
    assert distributed == local
