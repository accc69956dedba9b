"""The Starlette application of ``hotmess serve``: the OTLP/HTTP receiver and the web UI.

Routes
------
- ``POST /v1/traces``: OTLP/HTTP traces (:mod:`hotmess.serve.receiver`).
- ``GET /`` overview, ``/runs`` runs table, ``/runs/{run_id}`` one run, ``/tasks/{task_id}``
  one task, ``/drift`` drift, ``/horizon``, ``/goals``, ``/compare`` (agents or models),
  ``/activity`` runs over time; each as JSON with ``?format=json`` or under ``/api/...``
  (``/api/overview``, ``/api/runs``, ...), the same shapes as the CLI's ``--json``.
- ``GET /live.js``: the pages' live-update script; ``GET /api/generation``: what it polls,
  a value that changes whenever the database does.
- ``GET /healthz``: ``ok``.

With a token every request needs it: ``Authorization: Bearer T`` (what
``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20T`` makes an exporter send), or, for a
browser, ``?token=T`` once, which sets a cookie (HttpOnly, SameSite=Strict) and redirects.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, Headers, QueryParams
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

import hotmess.api
from hotmess.errors import HotmessError
from hotmess.report import html as report
from hotmess.serve import pages, views
from hotmess.serve.receiver import (
    DEFAULT_MAX_BODY,
    JSON,
    PROTOBUF,
    BadPayload,
    TooLarge,
    Writer,
    decode,
    encode_response,
    encode_status,
    gunzip,
)
from hotmess.store.readers import STEP_SCAN_RUNS, read_agents, read_runs_page

__all__ = ["create_app"]

#: The policy of every page: nothing remote, scripts only from this server (``/live.js``, no
#: inline script), fetches only to it, forms only to it.
CSP = report.CSP + "; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
PER_PAGE = 50
#: The Host headers accepted without a token (the server then listens on loopback only).
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
COOKIE = "hotmess_token"


class TokenAuth:
    """ASGI middleware: with a token, a request without it gets 401."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app, self.token = app, token

    def _ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.token is None:
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if self._ok(bearer) or self._ok(Request(scope).cookies.get(COOKIE)):
            return await self.app(scope, receive, send)
        query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        if scope["method"] == "GET" and self._ok(query.get("token")):
            rest = {k: v for k, v in query.multi_items() if k != "token"}
            path = URL(scope=scope).path
            response: Response = RedirectResponse(path + (f"?{urlencode(rest)}" if rest else ""), 303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
        else:
            response = PlainTextResponse("a token is needed: Authorization: Bearer <token>", 401,
                                         headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


class Readers:
    """One read-only connection per worker thread, opened once by SQLite itself.

    Not :func:`hotmess.store.database.connect` per request: it reads the file's header with a
    plain ``open()``, and closing any descriptor of a file drops every POSIX lock the process
    holds on it, the writer's SHARED lock included; another process closing its connection
    could then take the database for its last user and delete the WAL under the server."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def database(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
        database = hotmess.api.open(conn)
        database.path = self.path
        return database


class Analyses:
    """Analysis results (overview, task, drift) kept until the database changes: keyed by what
    was asked, valid while the database file and its WAL have the size and mtime they had when
    the analysis started (any commit, by this server or another process, changes one of them)."""

    def __init__(self, path: str, size: int = 64, generation: Callable[[], int] = lambda: 0) -> None:
        self.path, self.size, self.generation = path, size, generation
        self._items: dict[tuple, tuple[tuple, Any]] = {}
        self._lock = threading.Lock()

    def version(self) -> tuple:
        """What changes with every commit to the database: a stat of the file and its WAL."""
        out: list[int] = [self.generation()]
        for suffix in ("", "-wal"):
            try:
                st = os.stat(self.path + suffix)  # a stat, never an open (see Readers)
                out += [st.st_mtime_ns, st.st_size]
            except OSError:
                out += [0, 0]
        return tuple(out)

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        version = self.version()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
        value = compute()
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = (version, value)
            while len(self._items) > self.size:
                self._items.pop(next(iter(self._items)))
        return value


def create_app(db: str, *, token: str | None = None, max_body: int = DEFAULT_MAX_BODY,
               max_pending: int = 64) -> Any:
    """The ASGI app serving ``db`` (created if missing); one writer for all requests."""
    writer = Writer(db, max_pending=max_pending)  # opens (creates, checks) the database first
    readers = Readers(db)
    analyses = Analyses(db, generation=lambda: writer.generation)

    async def traces(request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        reply = PROTOBUF if ctype == PROTOBUF else JSON
        if ctype not in (PROTOBUF, JSON):
            return Response(encode_status(JSON, 3, f"unsupported Content-Type {ctype or '(none)'!r}: "
                                          f"OTLP/HTTP is {PROTOBUF} or {JSON}"), 415, media_type=JSON)

        def fail(status: int, code: int, message: str, **headers: str) -> Response:
            return Response(encode_status(reply, code, message), status, media_type=reply, headers=headers)

        if writer.pending >= writer.max_pending:
            return fail(503, 14, "too many requests waiting to be written; retry", **{"Retry-After": "1"})
        try:
            body = await _read_body(request, max_body)
            encoding = request.headers.get("content-encoding", "identity").strip().lower()
            if encoding == "gzip":
                body = gunzip(body, max_body)
            elif encoding not in ("identity", ""):
                return fail(415, 3, f"unsupported Content-Encoding {encoding!r} (gzip or none)")
            writer.pending += 1
            try:
                stored = await run_in_threadpool(lambda: writer.store(decode(body, ctype)))
            finally:
                writer.pending -= 1
        except TooLarge as exc:
            return fail(413, 8, f"request body too large: {exc} (the cap is {max_body:,} bytes)")
        except BadPayload as exc:
            return fail(400, 3, str(exc))
        return Response(encode_response(reply, stored.rejected, stored.message), 200, media_type=reply)

    def generation_of() -> str:
        return "-".join(map(str, analyses.version()))

    def view(render: Callable[..., tuple[Any, Callable[[], str]]], *, api: bool = False):
        async def endpoint(request: Request) -> Response:
            def work() -> Response:
                try:
                    seen = generation_of()  # before reading: a change after it reloads the page
                    data, html = render(request, readers.database(), analyses)
                    if api or request.query_params.get("format") == "json":
                        return Response(json.dumps(data, default=str), media_type=JSON, headers=SECURITY_HEADERS)
                    return HTMLResponse(html().replace('<script src="/live.js"', '<script src="/live.js" '
                                                       f'data-generation="{seen}"', 1), headers=SECURITY_HEADERS)
                except LookupError as exc:
                    return _error(request, api, 404, str(exc.args[0]))
                except (HotmessError, ValueError) as exc:
                    return _error(request, api, 400, str(exc))
            return await run_in_threadpool(work)
        return endpoint

    routes = [
        Route("/v1/traces", traces, methods=["POST"]),
        Route("/healthz", lambda request: PlainTextResponse("ok")),
    ]
    def generation(request: Request) -> Response:
        return Response(json.dumps({"generation": generation_of()}), media_type=JSON,
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})

    routes += [
        Route("/live.js", lambda request: Response(views.LIVE_JS, media_type="text/javascript", headers=SECURITY_HEADERS)),
        Route("/api/generation", generation),
    ]
    for path, render in (("/", _overview), ("/runs", _runs), ("/runs/{run_id:path}", _run),
                         ("/tasks/{task_id:path}", _task), ("/drift", _drift), ("/horizon", views.horizon),
                         ("/goals", views.goals), ("/compare", views.compare), ("/activity", views.activity)):
        routes.append(Route(path, view(render)))
        api_path = "/api/overview" if path == "/" else "/api" + path
        routes.append(Route(api_path, view(render, api=True)))
    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        yield
        writer.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.writer = writer
    if token is None:  # loopback only: a web page whose name resolves to 127.0.0.1 (DNS rebinding) is refused
        return TrustedHostMiddleware(app, allowed_hosts=LOOPBACK_NAMES)
    return TokenAuth(app, token)


async def _read_body(request: Request, cap: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > cap:
        raise TooLarge(f"Content-Length {int(length):,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise TooLarge(f"over {cap:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(request: Request, api: bool, status: int, message: str) -> Response:
    if api or request.query_params.get("format") == "json":
        return Response(json.dumps({"error": message}), status, media_type=JSON, headers=SECURITY_HEADERS)
    return HTMLResponse(pages.message_page("Not found" if status == 404 else "Cannot show this", message),
                        status, headers=SECURITY_HEADERS)


def _refresh(request: Request) -> int | None:
    value = request.query_params.get("refresh")
    return max(2, min(int(value), 3600)) if value and value.isdigit() else None


# ---------------------------------------------------------------------------- views


def _overview(request: Request, db: Any, analyses: Analyses) -> tuple[Any, Callable[[], str]]:
    # kept with the analysis: a count(*) reads the whole runs table (~15 ms at a million runs)
    n_runs = analyses.get(("run count",), lambda: db.conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    if n_runs == 0:
        data = {"schema_version": None, "by": "agent", "groups": {}, "n_runs": 0}
        return data, lambda: pages.message_page(
            "Overview", f"no runs in {db.path} yet: point an OpenTelemetry exporter here "
            f"(OTEL_EXPORTER_OTLP_ENDPOINT={request.base_url}) or record with @hotmess.trace")
    result = analyses.get(("compare", "agent"), lambda: db.analyze(by="agent").to_json())  # /compare's too
    figure = analyses.get(("activity figure",), lambda: views.activity_figure(db.activity().to_json()))
    return result, lambda: pages.overview_page(result, db.path, n_runs, _refresh(request), figure)


def _runs(request: Request, db: Any, analyses: Analyses) -> tuple[Any, Callable[[], str]]:
    q = request.query_params
    params = {k: (q.get(k) or None) for k in ("agent", "task", "status", "q", "steps", "since", "until", "cluster")}
    if params["status"] not in (None, "ok", "error", "incomplete"):
        raise ValueError(f"status must be ok, error or incomplete, not {params['status']!r}")
    if params["cluster"] and not params["task"]:
        raise ValueError("cluster is an outcome cluster of one task: give task= too (the task page links them)")
    per = min(int(q.get("per") or PER_PAGE), 1000) if (q.get("per") or "1").isdigit() else PER_PAGE
    after = _cursor(q.get("after"))
    run_ids = None
    if params["cluster"]:
        run_ids = [r for r, c in _cluster_of_runs(db, params["task"]) if c == params["cluster"]]
    rows, following_key = read_runs_page(
        db.conn, agent=params["agent"], task_id=params["task"], status=params["status"], search=params["q"],
        step_search=params["steps"], since_ns=views.parse_time(params["since"], "since"),
        until_ns=views.parse_time(params["until"], "until"), run_ids=run_ids, limit=per, after=after)
    following = None if following_key is None else \
        f"{following_key[0] if following_key[0] is not None else ''}:{following_key[1]}"
    note = None
    if params["steps"] and following and len(rows) < per:
        note = (f"a step search looks through {STEP_SCAN_RUNS:,} runs a page (newest first); "
                "older runs are searched on the next page")
    data = {"runs": rows, "per_page": per, "next": following,
            "filters": {k: v for k, v in params.items() if v is not None}}
    shown = {**params, "per": q.get("per"), "after": q.get("after")}
    return data, lambda: pages.runs_page(rows, shown, read_agents(db.conn), following, after is not None,
                                         _refresh(request), note)


def _cluster_of_runs(db: Any, task_id: str) -> list[tuple[str, str]]:
    """Each run of the task with its outcome cluster's id: the first 16 hex digits of the SHA-256
    of its exact-outcome key (what ``analyze`` groups by by default), so a URL stays short."""
    return [(run_id, hashlib.sha256(key.encode()).hexdigest()[:16])
            for run_id, key in db.outcome_clusters(task_id).items()]


def _cursor(text: str | None) -> tuple[int | None, str] | None:
    """``START_NS:RUN_ID`` (START_NS empty for a run with no start time), as ``next`` gives it."""
    if not text:
        return None
    start, sep, run_id = text.partition(":")
    if not sep or not run_id or not (start == "" or start.lstrip("-").isdigit()):
        raise ValueError(f"after must be START_NS:RUN_ID, as a page's next link gives it, not {text!r}")
    return (int(start) if start else None), run_id


def _run(request: Request, db: Any, analyses: Analyses) -> tuple[Any, Callable[[], str]]:
    run_id = request.path_params["run_id"]
    try:
        detail = db.run(run_id).to_json()
    except HotmessError as exc:
        raise LookupError(str(exc)) from None
    return detail, lambda: pages.run_page(detail)


def _task(request: Request, db: Any, analyses: Analyses) -> tuple[Any, Callable[[], str]]:
    task_id = request.path_params["task_id"]
    runs = db.runs(task=task_id).to_records()
    if not runs:
        raise LookupError(f"no task {task_id!r} in {db.path}")
    try:  # per agent when several ran it, as the report's clusters are
        several = len({r["agent"] for r in runs}) > 1
        analysis = analyses.get(("task", task_id, several), lambda: db.analyze(
            task=task_id, by="agent" if several else None).to_json())
        note = None
    except HotmessError as exc:
        analysis, note = None, str(exc)
    data = {"task_id": task_id, "analysis": analysis, "note": note,
            "runs": [{k: r.get(k) for k in ("run_id", "agent", "status", "success", "outcome")} for r in runs]}
    outcomes = {r["run_id"]: r.get("outcome") for r in runs}
    sizes: dict[str, list[Any]] = {}
    for run_id, cluster in _cluster_of_runs(db, task_id):
        sizes.setdefault(cluster, [0, outcomes.get(run_id)])[0] += 1
    clusters = [{"cluster": c, "size": n, "example": ex} for c, (n, ex) in
                sorted(sizes.items(), key=lambda kv: (-kv[1][0], str(kv[1][1])))]
    return data, lambda: pages.task_page(task_id, analysis, runs, note, clusters)


def _drift(request: Request, db: Any, analyses: Analyses) -> tuple[Any, Callable[[], str]]:
    window = request.query_params.get("window") or "1d"
    by = request.query_params.get("by") or None
    if by not in (None, "agent"):
        raise ValueError(f"by must be agent, not {by!r}")
    try:
        result: Any = analyses.get(("drift", window, by),
                                   lambda: db.drift(window=window, by=by, n_perm=200).to_json())
    except HotmessError as exc:  # no runs, or a window that is not a duration: said on the page
        result = str(exc)
    data = result if isinstance(result, dict) else {"error": result}
    return data, lambda: pages.drift_page(result, window, by)
