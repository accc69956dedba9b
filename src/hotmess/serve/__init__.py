"""``hotmess serve``: an OTLP/HTTP endpoint any OpenTelemetry SDK can export to, and a web UI
over the same database, on one port (Starlette + uvicorn; ``pip install 'hotmess[serve]'``).

Spans received on ``/v1/traces`` go through the mapping of ``hotmess import otlp`` (one trace
is one run, a trace arriving in pieces is merged into one run) and are committed to SQLite
before the request is answered. The UI renders the same results as the CLI and the report.
Neither Starlette nor uvicorn is imported by ``import hotmess``: only by this package.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from hotmess.errors import ParameterError

__all__ = ["DEFAULT_PORT", "check_bind", "create_app", "serve"]

#: OTLP/HTTP's usual port, so ``OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`` finds it.
DEFAULT_PORT = 4318


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Binding anywhere but the loopback interface needs a token (anyone on the network could
    otherwise write runs and read every agent's inputs)."""
    if not is_loopback(host) and not token:
        raise ParameterError(f"--host {host} is reachable from other machines: give a --token "
                             "(or $HOTMESS_SERVE_TOKEN) so that every request must carry it")
    if token is not None and not token.strip():
        raise ParameterError("the token must not be empty")


def create_app(db: str, **options):
    """The ASGI app (see :func:`hotmess.serve.app.create_app`)."""
    from hotmess.serve.app import create_app as make

    return make(db, **options)


def serve(db: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None,
          max_body: int | None = None, log_level: str = "warning",
          ready: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Run the server until interrupted. ``port=0`` picks a free port; ``ready`` is called with
    where it listens (``url``, ``otlp_endpoint``, ``db``) once it can be reached."""
    check_bind(host, token)
    import socket

    import uvicorn

    from hotmess.serve.receiver import DEFAULT_MAX_BODY

    app = create_app(db, token=token, max_body=max_body or DEFAULT_MAX_BODY)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ParameterError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    where = {"url": f"http://{shown}:{bound}/", "otlp_endpoint": f"http://{shown}:{bound}", "db": db,
             "host": host, "port": bound, "token_required": token is not None}
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False))
    if ready is not None:
        ready(where)
    server.run(sockets=[sock])
