"""A local stand-in for a tracing platform's server: ``http.server`` on 127.0.0.1 (a free
port, in a thread) answering each request with a handler's JSON, and recording the requests
(method, path, query, body) so a test can check that nothing was written."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: handler(method, path, query, body) → (status, JSON body)
Handler = Callable[[str, str, dict[str, list[str]], Any], tuple[int, Any]]


class Server:
    def __init__(self, handler: Handler) -> None:
        self.requests: list[tuple[str, str, dict, Any]] = []
        self.authorization: list[str | None] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                query = parse_qs(url.query)
                outer.requests.append((self.command, url.path, query, body))
                outer.authorization.append(self.headers.get("Authorization"))
                status, payload = handler(self.command, url.path, query, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
