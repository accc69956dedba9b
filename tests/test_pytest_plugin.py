"""The pytest plugin, on a small suite of agent tests run by pytester: ``--hotmess-repeat N``."""

from __future__ import annotations

import importlib.metadata
import json
from collections import Counter

import pytest

import hotmess
import hotmess.analyzers  # noqa: F401 - before pytester's in-process runs, which unload what they import
import hotmess.api  # noqa: F401

pytest_plugins = ["pytester"]

CONFTEST = '''
import itertools

import pytest

# what the "agents" answer, call by call (module level: the same sequence whatever the fixtures do)
CAPITALS = itertools.cycle(["Paris"] * 7 + ["Lyon"] * 3)
SUMS = itertools.cycle(["5"] * 7 + ["6", "7", "8"])
COLOURS = itertools.cycle(["blue", "blue", "green", "red"])


@pytest.fixture
def capital_agent():
    return lambda question: next(CAPITALS)


@pytest.fixture
def sum_agent():
    return lambda question: next(SUMS)


@pytest.fixture
def colour_agent():
    return lambda question: next(COLOURS)


@pytest.fixture
def notebook():
    return []  # function-scoped: a fresh one for every trial


SETUPS = itertools.count()


@pytest.fixture
def flaky_setup():
    if next(SETUPS) == 1:
        raise RuntimeError("the sandbox did not start")
'''

TESTS = '''
import pytest

import hotmess


@pytest.mark.hotmess(task_id="capital", agent="geo-bot")
def test_capital(capital_agent, notebook):
    notebook.append("asked")
    assert notebook == ["asked"]  # the fixture is fresh each trial
    assert capital_agent("capital of France?") == "Paris"


@pytest.mark.hotmess(task_id="sum")
def test_sum(sum_agent):
    assert sum_agent("2 + 3") == "5"


@pytest.mark.hotmess(task_id="sky")
def test_sky_records_its_outcome(colour_agent):
    answer = colour_agent("colour of the sky?")
    hotmess.outcome(answer, success=answer == "blue", reference="blue")
    assert answer == "blue"


@pytest.mark.hotmess("steady")
@pytest.mark.parametrize("x", [1, 2])
def test_steady(x, flaky_setup):
    assert x > 0


def test_not_an_agent_test():
    assert True
'''


#: The line of test_capital's answer check in the file pytester writes.
CAPITAL_LINE = TESTS.lstrip("\n").splitlines().index('    assert capital_agent("capital of France?") == "Paris"') + 1


def _plugin() -> list[str]:
    """``-p hotmess.pytest_plugin``, unless the installed hotmess registers it already."""
    eps = importlib.metadata.entry_points(group="pytest11")
    return [] if any(ep.value == "hotmess.pytest_plugin" for ep in eps) else ["-p", "hotmess.pytest_plugin"]


@pytest.fixture
def suite(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_agents=TESTS)
    return pytester


def test_repeated_agent_tests_get_their_verdicts(suite, tmp_path):
    db = tmp_path / "runs.db"
    result = suite.runpytest(*_plugin(), "--hotmess-repeat", "10", "--hotmess-db", str(db), "-p", "no:cacheprovider")
    # 4 marked tests (one parametrized twice) × 10 trials, and the unmarked test once
    result.assert_outcomes(passed=7 + 7 + 6 + 19 + 1, failed=3 + 3 + 4, errors=1)
    out = result.stdout.str()
    assert "hotmess: 5 agent tests, 10 runs each" in out
    lines = {line.split(" (task ")[0]: line for line in out.splitlines() if " (task " in line}
    assert lines["test_agents.py::test_capital"] == (
        "test_agents.py::test_capital (task capital): fails 30% of the time (3 of 10), always the same way: "
        f"AssertionError: assert 'Lyon' == 'Paris' (test_agents.py:{CAPITAL_LINE})")
    assert lines["test_agents.py::test_sum"] == (
        "test_agents.py::test_sum (task sum): fails 30% of the time (3 of 10), a different way each time "
        "(3 different failures)")
    # the test's own outcome is the failure: its answers, green twice and red twice
    assert lines["test_agents.py::test_sky_records_its_outcome"].endswith(
        "fails 40% of the time (4 of 10), in 2 different ways (failure consistency 0.33)")
    assert lines["test_agents.py::test_steady[1]"].endswith("passes every time (10 of 10)")
    assert lines["test_agents.py::test_steady[2]"] == (
        "test_agents.py::test_steady[2] (task steady): passes every time (9 of 9); 1 trial failed in set-up "
        "(not counted)")
    assert f"runs recorded in {db}: hotmess analyze --db {db}" in out
    assert "test_agents.py::test_capital[hotmess7] - AssertionError" in out

    # every trial is a run in the database, under its task, with the trial as its instance
    runs = hotmess.open(db).runs().to_records()
    per_task = Counter(r["task_id"] for r in runs)
    assert per_task == {"capital": 10, "sum": 10, "sky": 10, "steady": 19}
    capital = [r for r in runs if r["task_id"] == "capital"]
    assert sorted(int(r["instance"]) for r in capital) == list(range(10))
    assert {r["agent"] for r in capital} == {"geo-bot"}
    assert {r["agent"] for r in runs if r["task_id"] == "sum"} == {"test_agents"}
    assert Counter((r["success"], json.loads(r["outcome"])) for r in capital) == {
        (1.0, "passed"): 7, (0.0, f"AssertionError: assert 'Lyon' == 'Paris' (test_agents.py:{CAPITAL_LINE})"): 3}
    assert Counter(json.loads(r["outcome"]) for r in runs if r["task_id"] == "sky") == {
        "blue": 6, "green": 2, "red": 2}
    failed = [r for r in capital if r["success"] == 0.0]
    assert {r["status"] for r in failed} == {"error"} and all(r["error"].startswith("AssertionError") for r in failed)
    # and hotmess analyze reads the same: capital's failures are one cluster, sum's three
    analysis = hotmess.open(db).analyze()
    by_task = {t.task_id: t for t in analysis.tasks}
    assert by_task["capital"].failure_consistency == 1.0
    assert by_task["sum"].failure_consistency == 0.0


def test_without_the_option_marked_tests_run_once_untraced(suite, tmp_path):
    result = suite.runpytest(*_plugin(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, errors=1)  # capital, sum and sky pass on their first answers; one set-up fails
    assert "hotmess:" not in result.stdout.str()
    assert not (tmp_path / "runs.db").exists()


def test_a_negative_count_is_a_usage_error(suite):
    result = suite.runpytest(*_plugin(), "--hotmess-repeat", "-1", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--hotmess-repeat must be 0 or more" in result.stderr.str()


def test_describe():
    from hotmess.pytest_plugin import describe

    fail = (False, "AssertionError: x (t.py:1)")
    assert describe([(True, "passed")] * 3) == "passes every time (3 of 3)"
    assert describe([(True, "passed")] * 3 + [fail]) == "fails 25% of the time (1 of 4): AssertionError: x (t.py:1)"
    assert describe([fail] * 2) == "fails every time (2 of 2), always the same way: AssertionError: x (t.py:1)"
    mostly = [fail] * 3 + [(False, "KeyError: 'k' (t.py:2)")]
    assert describe(mostly) == ("fails every time (4 of 4), mostly the same way (failure consistency 0.50): "
                                "AssertionError: x (t.py:1) (3 of 4)")
