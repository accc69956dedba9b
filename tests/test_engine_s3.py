"""The engine reading its Parquet layout from object storage: the demo's export put in an S3
bucket (moto's S3 server on a loopback port, spoken to over HTTP by s3fs, as a real bucket
is), read by the workers with only the standard AWS environment variables set; the same JSON
as the local analysis."""

from __future__ import annotations

import json
import logging

import pytest
from test_cli import hotmess_here
from test_engine import client, demo  # noqa: F401  (the module's fixtures)

import hotmess as hm
from hotmess.errors import HotmessError
from hotmess.results import to_json

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from hotmess.engine import analyze as engine_analyze  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")
BUCKET = "hotmess-exports"


@pytest.fixture(scope="module")
def bucket(demo):  # noqa: F811
    """The demo's export uploaded to s3://hotmess-exports/prod, and the environment that reaches it."""
    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "hotmess", "AWS_SECRET_ACCESS_KEY": "hotmess-secret",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        _, out = demo
        fs.put(str(out), f"{BUCKET}/prod", recursive=True)
        assert fs.glob(f"{BUCKET}/prod/steps/day=*/*.parquet")
        yield f"s3://{BUCKET}/prod"
    server.stop()


def test_the_engine_reads_a_bucket(demo, client, bucket):  # noqa: F811
    """Runs and tool steps (outcome=actions reads both parts) from the bucket; every command
    reads its source through the same Source, so one analysis here stands for all."""
    db, _ = demo
    with hm.open(db) as store:
        local = to_json(store.analyze(outcome="actions", by="agent"))
    assert to_json(engine_analyze(bucket + "/", client=client, outcome="actions", by="agent")) == local


def test_drift_from_a_bucket(demo, client, bucket):  # noqa: F811
    from hotmess.engine import drift as engine_drift

    db, _ = demo
    with hm.open(db) as store:
        local = to_json(store.drift(window="1d", n_perm=200))
    assert to_json(engine_drift(bucket, client=client, window="1d", n_perm=200)) == local


def test_the_cli_with_worker_processes_reads_a_bucket(demo, bucket):  # noqa: F811
    """The command a team runs: a LocalCluster of worker processes, each reading the bucket with
    the credentials and endpoint of its environment."""
    db, _ = demo
    local = json.loads(hotmess_here("analyze", "--db", str(db), "--json").stdout)
    remote = json.loads(hotmess_here("analyze", "--engine", "dask", "--source", bucket, "--json").stdout)
    assert remote == local


def test_what_is_not_there_is_named(client, bucket):  # noqa: F811
    with pytest.raises(HotmessError, match=f"s3://{BUCKET}/elsewhere: no runs/ directory"):
        engine_analyze(f"s3://{BUCKET}/elsewhere", client=client)
    with pytest.raises(HotmessError, match="s3://no-such-bucket/prod: no runs/ directory"):
        engine_analyze("s3://no-such-bucket/prod", client=client)
    with pytest.raises(HotmessError, match="nosuch://x/y: .*nosuch"):
        engine_analyze("nosuch://x/y", client=client)
