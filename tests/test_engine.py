"""The Dask engine: the demo exported to Parquet and analyzed on a LocalCluster gives the
local ``hotmess analyze``'s and ``hotmess horizon``'s figures (every one within 1e-9, and in
fact the same JSON). One LocalCluster serves the module."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_cli import hotmess_here

import hotmess as hm
from hotmess.errors import HotmessError
from hotmess.results import to_json

pytest.importorskip("pyarrow")
pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from hotmess.engine import analyze as engine_analyze  # noqa: E402
from hotmess.engine import horizon as engine_horizon  # noqa: E402
from hotmess.engine.dask_engine import connect  # noqa: E402

# dask's Parquet reader calls a pandas API that pandas 3.1 deprecates (not ours to fix)
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")

VARIANTS = [
    {},
    {"outcome": "actions"},
    {"outcome": "text"},
    {"decomposition": "checks"},
    {"decomposition": "mse"},
    {"interval": "bootstrap", "n_boot": 500, "seed": 3},
    {"incomplete": "fail", "correction": False},
    {"task": "warranty-620"},
    {"task": "warranty-620", "outcome": "actions", "decomposition": "checks"},  # only its steps read
    {"by": "agent"},
    {"by": "instance", "outcome": "text"},  # every task's runs split across the groups
    {"by": "gen_ai.operation.name", "interval": "bootstrap", "n_boot": 300, "seed": 1},  # an attribute
]


@pytest.fixture(scope="module")
def demo(engine_demo: tuple[Path, Path]) -> tuple[Path, Path]:
    """The demo's database and its export (conftest's, made once for the engine modules)."""
    return engine_demo


@pytest.fixture(scope="module")
def client():
    c = connect(n_workers=2, processes=False)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def assert_close(got, want, path="$"):
    """Every number equal within 1e-9, everything else equal."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for k in want:
            assert_close(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, int | float) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), path
    else:
        assert got == want, path


@pytest.mark.parametrize("kwargs", VARIANTS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_engine_gives_the_local_analysis(demo, client, kwargs):
    db, out = demo
    with hm.open(db) as store:
        local = to_json(store.analyze(**kwargs))
    distributed = to_json(engine_analyze(out, client=client, **kwargs))
    assert_close(distributed, local)
    assert distributed == local  # and in fact the very same JSON: one implementation, same order


def test_cli_engine_json_is_the_cli_json(demo, client):
    """Through ``--scheduler`` (the module's cluster: a new LocalCluster per command costs
    seconds; tests/test_engine_s3.py runs the command with its own cluster of processes)."""
    db, out = demo
    local = json.loads(hotmess_here("analyze", "--db", str(db), "--json").stdout)
    distributed = json.loads(hotmess_here("analyze", "--engine", "dask", "--source", str(out), "--json",
                                          "--scheduler", client.scheduler.address).stdout)
    assert distributed == local


def _reports(calls: list[tuple[str, int, int | None]], unit: str) -> list[tuple[int, int | None]]:
    """The ``(done, total)`` reported in ``unit``, checked to climb to all of a fixed total."""
    reports = [(done, total) for u, done, total in calls if u == unit]
    assert reports, f"nothing reported in {unit!r}: {sorted({u for u, _, _ in calls})}"
    totals = {total for _, total in reports}
    assert len(totals) == 1 and reports[-1] == (totals.pop(),) * 2 and reports[-1][0] > 1, reports
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)
    return reports


def test_progress_reports_the_graph_as_it_runs_and_changes_no_figure(demo, client):
    """Every pass in its unit; the figures those of the local run (drift's and goals' are checked
    against it without a callback in their modules: the callback only watches)."""
    from hotmess.engine import drift as engine_drift
    from hotmess.engine import goals as engine_goals

    db, out = demo
    calls: list[tuple[str, int, int | None]] = []

    def progress(unit: str, done: int, total: int | None) -> None:
        calls.append((unit, done, total))

    with hm.open(db) as store:
        local = to_json(store.analyze(outcome="actions"))
    assert to_json(engine_analyze(out, client=client, outcome="actions", progress=progress)) == local
    _reports(calls, "Dask tasks")
    engine_drift(out, client=client, progress=progress)
    _reports(calls, "Dask tasks: runs"), _reports(calls, "Dask tasks: windows")
    engine_goals(out, client=client, method="text", progress=progress)
    _reports(calls, "Dask tasks: goal texts"), _reports(calls, "Dask tasks: goals")


def test_cli_on_a_terminal_draws_the_engine_progress_and_prints_the_same_json(demo, tmp_path):
    """A real process on a pseudo-terminal (as test_cli_commands' bars, which also check that
    --quiet and a pipe draw none), sent to a scheduler it can reach (TCP: the module's cluster
    is in-process only)."""
    from distributed import Client, LocalCluster
    from test_cli_commands import _in_a_terminal

    db, out = demo
    local = json.loads(hotmess_here("analyze", "--db", str(db), "--outcome", "actions", "--json").stdout)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                      dashboard_address=":0") as cluster, Client(cluster):
        on = ("--engine", "dask", "--source", str(out), "--scheduler", cluster.scheduler_address,
              "--outcome", "actions", "--json")
        shown = _in_a_terminal("analyze", *on, stdout=tmp_path / "shown.json")
        assert "analyze" in shown and "Dask tasks" in shown and "━" in shown, shown
        assert json.loads((tmp_path / "shown.json").read_text()) == local


def test_engine_refuses_what_it_cannot_do(demo, client, tmp_path):
    _, out = demo
    with pytest.raises(HotmessError, match="by='no.such.key' is neither a runs column"):
        engine_analyze(out, client=client, by="no.such.key")
    with pytest.raises(HotmessError, match="by='no.such.key' is neither a runs column"):
        engine_horizon(out, client=client, by="no.such.key")
    with pytest.raises(HotmessError, match="inferred"):
        engine_analyze(out, client=client, tasks="inferred")
    with pytest.raises(HotmessError, match="no runs/ directory"):
        engine_analyze(tmp_path, client=client)
    with pytest.raises(HotmessError, match="no runs"):
        engine_analyze(out, client=client, task="no-such-task")
    with pytest.raises(HotmessError, match="engine must be one of"):
        engine_analyze(out, engine="spark")
    result = hotmess_here("analyze", "--source", str(out), ok=False)
    assert result.returncode != 0 and "--engine" in result.stderr


HORIZON_VARIANTS = [
    {},
    {"outcome": "actions", "length": "tool_calls"},
    {"outcome": "text", "groups": 3, "seed": 5, "n_boot": 300, "correction": False},
    {"by": "agent", "n_boot": 300},
    {"by": "instance", "groups": 2, "n_boot": 100},
]


@pytest.mark.parametrize("kwargs", HORIZON_VARIANTS,
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_engine_gives_the_local_horizon(demo, client, kwargs):
    db, out = demo
    with hm.open(db) as store:
        local = to_json(store.horizon(**kwargs))
    splits = [g["median_split"] for g in local["groups"].values() if "median_split" in g] if "by" in kwargs \
        else [local["median_split"]]
    assert splits and any(s["n_tasks"] > 0 for s in splits)  # the split is exercised, not skipped
    distributed = to_json(engine_horizon(out, client=client, **kwargs))
    assert_close(distributed, local)
    assert distributed == local


def test_cli_horizon_on_the_engine(demo, client):
    db, out = demo
    on = ("--engine", "dask", "--source", str(out), "--scheduler", client.scheduler.address)
    local = json.loads(hotmess_here("horizon", "--db", str(db), "--json", "--n-boot", "200").stdout)
    distributed = json.loads(hotmess_here("horizon", *on, "--json", "--n-boot", "200").stdout)
    assert distributed == local
    by_agent = ("horizon", "--by", "agent", "--json", "--n-boot", "100")
    assert json.loads(hotmess_here(*by_agent, *on).stdout) \
        == json.loads(hotmess_here(*by_agent, "--db", str(db)).stdout)
