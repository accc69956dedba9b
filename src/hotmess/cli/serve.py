"""``hotmess serve``: the OTLP/HTTP receiver and web UI (:mod:`hotmess.serve`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from hotmess.cli import render
from hotmess.cli.app import DbOption, app, db_path
from hotmess.errors import HotmessError


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (4318 is OTLP/HTTP's; 0 picks a free one).")] = 4318,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="HOTMESS_SERVE_TOKEN", show_default=False,
        help="Every request must carry it (Authorization: Bearer T; a browser: ?token=T once).")] = None,
    max_body: Annotated[int, typer.Option("--max-body", help="Largest request body, in bytes.")] = 16 * 1024 * 1024,
    as_json: Annotated[bool, typer.Option("--json", help="Print where it listens as one JSON line, then serve.")] = False,
) -> None:
    """Receive OTLP/HTTP traces on /v1/traces and serve a web UI over the runs, on one port.

    Point any OpenTelemetry SDK at it: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
    """
    try:
        from hotmess.serve import check_bind
        from hotmess.serve import serve as run
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise HotmessError(f"hotmess serve needs its extra: pip install 'hotmess[serve]' ({exc})") from None
    check_bind(host, token)
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise HotmessError(f"hotmess serve needs its extra: pip install 'hotmess[serve]' ({exc.name} is missing)") from None

    def ready(where: dict) -> None:
        if as_json:  # one line, so a script can read the port (--port 0) and go on
            print(json.dumps({"schema_version": 1, **where}), flush=True)
            return
        render.err_console.print(
            f"hotmess serve: {escape(where['db'])} on {escape(where['url'])} (OTLP/HTTP traces: "
            f"OTEL_EXPORTER_OTLP_ENDPOINT={escape(where['otlp_endpoint'])}); Ctrl-C stops it"
        )

    run(db_path(db), host=host, port=port, token=token, max_body=max_body, ready=ready)
