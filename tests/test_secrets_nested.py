"""Redaction and the size cap reach every string a span can carry, however nested: kvlists and
arrays of them, attribute keys, event names, scope names, on the live path, on import and on
the OTLP wire. No planted secret reaches the database file, its WAL, `--json` or the wire."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_records, spans_rows
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_secrets import KEYS, assert_nothing_planted, checkpoint, database_bytes

import hotmess
from hotmess.redact import Redactor
from hotmess.tracer.otlp_export import RedactingSpanExporter
from hotmess.vocab.serialize import scrub_attributes, scrub_value

PASSWORD = "Tr0ub4dor-3-horse"
PLANTED = [*KEYS.values(), PASSWORD]


def _any(value):
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any(v) for v in value]}}
    return {"kvlistValue": {"values": [{"key": k, "value": _any(v)} for k, v in value.items()]}}


def _attrs(mapping: dict) -> list[dict]:
    return [{"key": k, "value": _any(v)} for k, v in mapping.items()]


def _otlp_file(path: Path) -> Path:
    """One agent trace whose secrets hide in nested values, keys, event names and the scope."""
    messages = [{"role": "user", "parts": [{"type": "text", "content": f"my key is {KEYS['openai']}"}]}]
    root = {
        "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "invoke_agent bot",
        "kind": 1, "startTimeUnixNano": "1717000000000000000", "endTimeUnixNano": "1717000001000000000",
        "attributes": _attrs({
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bot",
            "gen_ai.input.messages": messages,  # an array of kvlists, as GenAI sends it
            "app.login": {"user": "ann", "password": PASSWORD},
            f"x-{KEYS['github']}": "a key hidden in an attribute name",
            "k" * 100_000: "a huge key",
            "hotmess.truncated": ["app.blob"],  # from outside: not trusted
            "app.blob": "z" * 100_000,
        }),
        "events": [{"timeUnixNano": "1717000000500000000", "name": f"retry with {KEYS['anthropic']}",
                    "attributes": _attrs({"detail": {"token": "abcd12345678"}})}],
        "status": {"code": 1},
    }
    scope = {"name": f"lib {KEYS['aws']}", "version": "1.0"}
    request = {"resourceSpans": [{"resource": {"attributes": _attrs({"service.name": "svc"})},
                                  "scopeSpans": [{"scope": scope, "spans": [root]}]}]}
    path.write_text(json.dumps(request) + "\n")
    return path


def test_an_import_stores_no_nested_secret_and_no_uncapped_key(tmp_path):
    db = tmp_path / "import.db"
    with hotmess.open(db, create=True) as store:
        report = store.import_otlp(_otlp_file(tmp_path / "nested.jsonl"), max_chars=1000)
        assert report.result.new == 1
        detail = store.run(store.runs().to_records()[0]["run_id"]).to_json()
    checkpoint(db)
    data = database_bytes(db)
    assert_nothing_planted(data, PLANTED)
    assert b"abcd12345678" not in data
    assert_nothing_planted(json.dumps(detail).encode(), PLANTED)
    (span,) = spans_rows(db)
    assert max(len(k) for k in span["attributes"]) < 1100  # the 100k key is cut like a value
    assert len(span["attributes"]["app.blob"]) < 1100  # hotmess.truncated from a file exempts nothing
    assert span["attributes"]["app.login"] == {"user": "ann", "password": "[REDACTED]"}


def test_the_live_path_scrubs_event_names_keys_and_foreign_scopes(db):
    from hotmess.tracer.config import get_config

    library = get_config().provider.get_tracer(f"lib {KEYS['aws']}")  # another library, same provider

    @hotmess.trace(task_id="t")
    def agent() -> None:
        with library.start_as_current_span("call") as span:
            span.add_event(f"retry with {KEYS['anthropic']}", {"detail": f"password={PASSWORD}"})
            span.set_attribute(f"x-{KEYS['github']}", "named after a key")
            span.set_attribute("k" * 20_000, "a long key")

    agent()
    run_records(db)
    checkpoint(db)
    assert_nothing_planted(database_bytes(db), PLANTED)
    step = next(s for s in spans_rows(db) if s["name"] == "call")
    assert max(len(k) for k in step["attributes"]) < 9000 and step["scope"] == "lib [REDACTED]"


def test_the_otlp_wire_sends_no_secret_in_names_keys_or_scope():
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(memory, Redactor(), max_chars=1000)))
    tracer = provider.get_tracer(f"lib {KEYS['aws']}", "v " + KEYS["slack"])
    with tracer.start_as_current_span("s") as span:
        span.add_event(f"retry with {KEYS['anthropic']}")
        span.set_attribute(f"x-{KEYS['github']}", ["fine", f"token={KEYS['jwt']}"])
    (sent,) = memory.get_finished_spans()
    text = json.dumps({
        "name": sent.name, "events": [e.name for e in sent.events], "attributes": dict(sent.attributes),
        "scope": [sent.instrumentation_scope.name, sent.instrumentation_scope.version],
    })
    assert_nothing_planted(text.encode(), PLANTED)


_SECRETS = st.sampled_from([*KEYS.values(), f"password={PASSWORD}", f'{{"api_key": "{KEYS["google"]}"}}'])
_LEAF = st.one_of(_SECRETS, st.text(max_size=20), st.integers(), st.booleans(), st.none())
_NESTED = st.recursive(
    _LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=10), _SECRETS), inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=_NESTED, key=st.one_of(st.text(max_size=10), _SECRETS), cap=st.sampled_from([0, 50, 8192]))
def test_no_planted_secret_survives_any_nesting(value, key, cap):
    redactor = Redactor()
    scrubbed, _ = scrub_value(value, cap, redactor)
    attributes = scrub_attributes({key: value}, cap, redactor)
    for out in (scrubbed, attributes):
        text = json.dumps(out, default=str)
        assert_nothing_planted(text.encode(), PLANTED)
