"""Recorders never raise into the agent: bad arguments are recorded as what they are, with a
one-time warning, and the agent's own exceptions pass through unchanged."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from conftest import run_records, spans_rows, steps_of

import hotmess


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    __repr__ = __str__


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


def test_bad_arguments_are_recorded_never_raised(db):
    @hotmess.trace(task_id="t")
    def agent() -> str:
        hotmess.goal(Unprintable())
        hotmess.action(Unprintable(), args={"a": 1})
        hotmess.score("n/a")
        hotmess.outcome("done", success=np.array([True, False]))
        return "returned"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert agent() == "returned"
    said = " ".join(str(w.message) for w in caught)
    assert "hotmess.goal(): str() of a Unprintable failed" in said
    assert "hotmess.score(): str is not a finite number" in said
    assert "hotmess.outcome(): success must be true or false, not a ndarray" in said
    runs, steps = run_records(db)
    (run,) = runs
    assert run["status"] == "ok" and json.loads(run["outcome"]) == "done" and run["success"] is None
    assert run["score"] is None
    (root,) = spans_rows(db, "WHERE parent_span_id IS NULL")
    assert root["attributes"]["hotmess.score.raw"] == "n/a"
    mine = steps_of(steps, run["run_id"])
    assert [s["kind"] for s in mine] == ["goal", "tool"]
    assert mine[0]["goal"] == "<unprintable Unprintable>" and mine[1]["name"] == "execute_tool <unprintable Unprintable>"


@pytest.mark.parametrize("value", [None, 10**400, float("nan"), float("inf"), "0.5"])
def test_scores_that_are_no_finite_number_are_kept_as_text(db, value):
    @hotmess.trace(task_id="t")
    def agent() -> None:
        hotmess.score(value)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent()
    runs, _ = run_records(db)
    assert runs[0]["score"] is None and runs[0]["status"] == "ok"


def test_numpy_scores_and_verdicts_are_numbers_and_booleans(db):
    @hotmess.trace(task_id="t")
    def agent() -> None:
        hotmess.score(np.float32(0.25))
        hotmess.outcome("x", success=np.bool_(True))

    agent()
    runs, _ = run_records(db)
    assert runs[0]["score"] == 0.25 and runs[0]["success"] == 1


def test_an_exception_whose_str_raises_passes_through_unchanged(db):
    @hotmess.trace(task_id="t")
    def agent() -> None:
        with hotmess.step("risky"):
            raise UnprintableError()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UnprintableError):
            agent()
    runs, steps = run_records(db)
    assert runs[0]["status"] == "error" and runs[0]["error"].startswith("UnprintableError")
    (step,) = steps_of(steps, runs[0]["run_id"])
    assert step["error"].startswith("UnprintableError")
