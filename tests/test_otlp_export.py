"""configure(otlp_endpoint=...) sends every span, redacted, to a real OTLP/HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading

import pytest

import hotmess
from hotmess.store.database import connect
from hotmess.store.readers import read_runs

pb = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")


@pytest.fixture
def receiver():
    received: list[tuple[str, object]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = pb.ExportTraceServiceRequest()
            request.ParseFromString(body)
            received.append((self.path, request))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


def test_spans_reach_the_otlp_endpoint_redacted_and_sqlite_too(receiver, tmp_path):
    endpoint, received = receiver
    db = tmp_path / "runs.db"
    hotmess.configure(db=db, otlp_endpoint=endpoint)

    @hotmess.trace(task_id="login")
    def agent() -> str:
        hotmess.action("login", {"user": "ada", "password": "hunter2secret"})
        return "ok"

    agent()
    hotmess.flush()
    hotmess.shutdown()
    spans = [s for _, r in received for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert {path for path, _ in received} == {"/v1/traces"}
    assert sorted(s.name for s in spans) == ["execute_tool login", "invoke_agent agent"]
    root = next(s for s in spans if s.name == "invoke_agent agent")
    attrs = {a.key: a.value for a in root.attributes}
    assert attrs["hotmess.task.id"].string_value == "login"
    assert not any("hunter2secret" in str(s) for s in spans)
    assert len(read_runs(connect(db, create=False))) == 1
