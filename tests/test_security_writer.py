"""One bad value never loses a batch: values are coerced to what can be stored where the
writer takes them, and a span whose rows still fail is left out alone, counted and logged,
while the runs around it (other runs of the same batch included) are stored."""

from __future__ import annotations

import logging

from conftest import run_records, spans_rows

import hotmess
from hotmess.tracer.config import get_config


def _good(n: int) -> None:
    @hotmess.trace(task_id="good")
    def agent(i: int) -> int:
        with hotmess.step("work"):
            pass
        return i

    for i in range(n):
        agent(i)


def test_bad_values_are_coerced_and_the_runs_around_them_kept(db):
    @hotmess.trace(task_id="odd")
    def odd() -> str:
        with hotmess.step(None):
            pass
        with hotmess.step("chat", kind="llm", attributes={"gen_ai.request.model": ["gpt-a", "gpt-b"]}):
            pass
        with hotmess.step(b"bytes \xff name"):
            pass
        hotmess.outcome({"nested": [1, {"deep": True}]})
        return "ok"

    _good(50)
    odd()
    _good(50)
    runs, steps = run_records(db)
    assert len(runs) == 101 and hotmess.stats().failed == 0
    names = {s["name"]: s for s in steps if s["name"] != "work"}
    assert set(names) == {"None", "chat", "bytes \\xff name"}  # what the span records, as text
    assert names["chat"]["model"] == '["gpt-a", "gpt-b"]'
    assert next(r for r in runs if r["task_id"] == "odd")["outcome"] == '{"nested": [1, {"deep": true}]}'


def test_a_row_sqlite_refuses_is_left_out_alone_and_counted(db, caplog):
    @hotmess.trace(task_id="overflow")
    def overflowing() -> None:
        span = get_config().provider.get_tracer("other").start_span("too late")
        span.end(end_time=2**70)  # no SQLite integer holds it

    _good(20)
    with caplog.at_level(logging.WARNING, logger="hotmess"):
        overflowing()
        _good(20)
        runs, steps = run_records(db)
    assert len(runs) == 41  # the overflowing run too, without its bad step
    assert hotmess.stats().failed == 1
    assert not [s for s in steps if s["name"] == "too late"]
    assert len(spans_rows(db)) == 40 * 2 + 1  # its root stored, its bad step not
    lost = [r for r in caplog.records if "could not store the span" in r.getMessage()]
    assert len(lost) == 1 and "'too late'" in lost[0].getMessage()


def test_a_redaction_function_that_raises_loses_only_its_span(tmp_path):
    def picky(text: str) -> str:
        if "poison" in text:
            raise RuntimeError("cannot redact this")
        return text

    path = tmp_path / "runs.db"
    hotmess.configure(db=path, flush_interval=0.05, redact=picky)

    @hotmess.trace(task_id="t")
    def agent(word: str) -> None:
        with hotmess.step(word):
            pass

    for word in ("fine", "poison", "also fine"):
        agent(word)
    runs, steps = run_records(path)
    assert sorted(s["name"] for s in steps) == ["also fine", "fine"]
    assert hotmess.stats().failed == 2  # the poisoned step and its run's root (its input holds it)
