"""``hotmess serve``: the OTLP/HTTP receiver and web UI (:mod:`hotmess.serve`)."""

from __future__ import annotations

from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import DbOption, app, db_path
from hotmess.errors import HotmessError


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (4318 is OTLP/HTTP's).")] = 4318,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="HOTMESS_SERVE_TOKEN", show_default=False,
        help="Every request must carry it (Authorization: Bearer T; a browser: ?token=T once).")] = None,
    max_body: Annotated[int, typer.Option("--max-body", help="Largest request body, in bytes.")] = 16 * 1024 * 1024,
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
    path = db_path(db)
    shown = "[::1]" if host == "::1" else host
    render.err_console.print(
        f"hotmess serve: {render.escape(path)} on http://{render.escape(shown)}:{port}/ "
        f"(OTLP/HTTP traces: OTEL_EXPORTER_OTLP_ENDPOINT=http://{render.escape(shown)}:{port})"
    )
    run(path, host=host, port=port, token=token, max_body=max_body)
