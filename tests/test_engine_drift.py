"""``drift`` on the Dask engine: the demo exported to Parquet gives the local ``hotmess drift``'s
result (every figure within 1e-9, and in fact the same JSON, permutation p-values included)."""

from __future__ import annotations

import json

import pytest
from test_cli import hotmess_here
from test_engine import assert_close, client, demo  # noqa: F401  (module fixtures)

import hotmess as hm
from hotmess.errors import HotmessError
from hotmess.results import to_json

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
    {"by": "agent"},
    {"by": "agent", "window": "10runs", "outcome": "text"},
    {"n_perm": 200, "seed": 7, "window": "2d"},
    {"by": "task", "window": "1w", "baseline": -1, "alpha": 0.2},
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


def test_cli_drift_on_the_engine(demo):  # noqa: F811
    db, out = demo
    args = ("--json", "--window", "2d", "--n-perm", "200", "--seed", "3")
    local = json.loads(hotmess_here("drift", "--db", str(db), *args).stdout)
    distributed = json.loads(hotmess_here("drift", "--engine", "dask", "--source", str(out), *args).stdout)
    assert distributed == local
    shown = hotmess_here("drift", "--engine", "dask", "--source", str(out), "--window", "1w")
    assert "change" in shown.stdout.lower()
