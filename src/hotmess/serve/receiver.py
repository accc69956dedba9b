"""OTLP/HTTP trace requests → stored runs: the body read (capped, gzip or not), decoded
(protobuf or JSON), mapped as ``import otlp`` maps a file, and committed by the one writer.

The OTLP/HTTP specification (https://opentelemetry.io/docs/specs/otlp/#otlphttp) says what is
answered: 200 with an ``ExportTraceServiceResponse`` (``partial_success`` when some spans were
rejected) in the request's encoding; 400 with a ``google.rpc.Status`` naming what is wrong for
a payload that cannot be decoded; 413 over the size cap; 415 for another content type; 503 with
``Retry-After`` when too many requests wait for the writer (the exporter retries).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

from hotmess.errors import InputError
from hotmess.integrations.otlp_json import OtlpBatch, insert_otlp, parse_otlp_requests
from hotmess.store.database import connect
from hotmess.store.writer import stored_runs

__all__ = ["DEFAULT_MAX_BODY", "BadPayload", "Stored", "TooLarge", "Writer", "decode", "encode_response",
           "encode_status", "gunzip"]

#: Bytes of one request body, compressed or not (``--max-body``).
DEFAULT_MAX_BODY = 16 * 1024 * 1024

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class BadPayload(ValueError):
    """The body is not an OTLP trace request: 400, with this message."""


class TooLarge(ValueError):
    """The body (or what it inflates to) is over the cap: 413."""


def gunzip(body: bytes, cap: int) -> bytes:
    """A gzip body inflated, refusing one that inflates past ``cap`` bytes (a gzip bomb)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, cap + 1)
    except zlib.error as exc:
        raise BadPayload(f"Content-Encoding is gzip but the body is not gzip data ({exc})") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise TooLarge(f"the body inflates to over {cap:,} bytes")
    return out


def decode(body: bytes, content_type: str) -> dict[str, Any]:
    """The request as its OTLP/JSON dict: protobuf decoded and turned into the JSON mapping
    (``MessageToDict``: camelCase names, ids in base64, which the JSON reader accepts)."""
    if content_type == PROTOBUF:
        from google.protobuf.json_format import MessageToDict
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except (DecodeError, ValueError) as exc:
            raise BadPayload(f"not a protobuf ExportTraceServiceRequest: {exc}") from None
        return MessageToDict(request)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadPayload(f"not valid JSON: {exc}") from None
    if type(data) is not dict:
        raise BadPayload(f"expected an OTLP ExportTraceServiceRequest object, got {type(data).__name__}")
    return data


def encode_response(content_type: str, rejected: int, message: str) -> bytes:
    """An ``ExportTraceServiceResponse``, with ``partial_success`` when spans were rejected."""
    if content_type == PROTOBUF:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        response = ExportTraceServiceResponse()
        if rejected or message:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
        return response.SerializeToString()
    if not (rejected or message):
        return b"{}"
    return json.dumps({"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}).encode()


def encode_status(content_type: str, code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (``code`` a gRPC code: 3 invalid argument, 8 exhausted...)."""
    if content_type == PROTOBUF:
        try:
            from google.rpc.status_pb2 import Status
        except ImportError:  # googleapis-common-protos absent: the message as text
            return message.encode()
        return Status(code=code, message=message).SerializeToString()
    return json.dumps({"code": code, "message": message}).encode()


@dataclass
class Stored:
    """What one request stored: spans received, spans rejected (malformed, or of traces with no
    agent at work that are no stored run) and why, runs written (new or merged)."""

    spans: int = 0
    rejected: int = 0
    runs: int = 0
    new: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)[:1000]


class Writer:
    """The one connection that writes, used by one request at a time (a lock), so concurrent
    exporters queue here instead of fighting over SQLite's write lock; ``pending`` counts the
    requests waiting (the server answers 503 past its limit)."""

    def __init__(self, path: str, *, max_pending: int = 64) -> None:
        self.path = path
        self.max_pending = max_pending
        self.pending = 0
        self.generation = 0  # commits made: what the UI's cached analyses are checked against
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection = connect(path, create=True)
        # a commit is on disk before the 200 that acknowledges it (NORMAL could lose the last
        # transactions to a power cut, though not to a killed process)
        self._conn.execute("PRAGMA synchronous = FULL")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def store(self, request: dict[str, Any], where: str = "OTLP/HTTP request") -> Stored:
        """Map and commit one decoded request; returns what was stored once it is durable."""
        try:
            batch, bad = parse_otlp_requests([request], where=where)
        except InputError as exc:
            raise BadPayload(str(exc)) from None
        out = Stored(spans=len(batch.spans) + sum(len(s) for s in batch.unmapped.values()) + len(bad))
        if bad:
            out.rejected += len(bad)
            out.reasons.append(f"{len(bad)} malformed span(s), first: {bad[0]}")
        if not batch.runs and not batch.unmapped:
            return out
        with self._lock:
            self._write(batch, out)
        return out

    def _write(self, batch: OtlpBatch, out: Stored) -> None:
        stored = stored_runs(self._conn, list(batch.unmapped)) if batch.unmapped else {}
        ignored = [t for t in batch.unmapped if t not in stored]
        if ignored:
            n = sum(len(batch.unmapped[t]) for t in ignored)
            out.rejected += n
            out.reasons.append(
                f"{n} span(s) of {len(ignored)} trace(s) with no hotmess.*, gen_ai.*, llm.* or openinference.* "
                "attribute (not an agent's) and no stored run: not stored")
        if not batch.runs and not stored:
            return
        result = insert_otlp(self._conn, batch)
        self.generation += 1
        out.runs, out.new = result.runs, result.new
        if result.left_out_spans:
            out.rejected += result.left_out_spans
            out.reasons.append(f"{result.left_out_spans} span(s) of runs recorded by another source: not merged")
