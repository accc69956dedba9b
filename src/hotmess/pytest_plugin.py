"""pytest plugin: ``pytest --hotmess-repeat N`` runs each agent test N times and says how it fails.

Mark a test of an agent::

    @pytest.mark.hotmess(task_id="capital-of-france", agent="geo-bot")
    def test_capital(agent):                      # the suite's own fixtures, as usual
        assert agent.ask("capital of France?") == "Paris"

``pytest --hotmess-repeat 20`` runs it 20 times (``test_capital[hotmess0]`` ...
``[hotmess19]``; each trial gets fresh function-scoped fixtures, as a parametrized test does).
Each call is one hotmess run under the tracer: task ``task_id`` (default: the test's id), agent
``agent`` (default: the test file's name), instance the trial number. Whatever the test records
(``hotmess.outcome(...)``, steps of a traced agent it calls) is part of that run. A passing
trial is a success with outcome ``"passed"``; a failing one a failure whose outcome, unless the
test recorded its own, is the failure: exception type, first line of its message and where it
was raised (``AssertionError: assert 'Lyon' == 'Paris' (test_geo.py:12)``), so two failures
are the same failure when they say the same thing at the same place.

At the end the terminal summary gives, per test, its success rate and its failure consistency
(the chance that two of its failures are the same failure, as ``hotmess analyze`` computes it)
in words: "fails 30% of the time (6 of 20), always the same way: ..." (one bug to find) or
"..., a different way each time" (a hot mess). ``--hotmess-db PATH`` records the runs in
``PATH`` (default: where hotmess records already: ``$HOTMESS_DB`` or ``./hotmess.db``), for
``hotmess analyze`` afterwards. Without ``--hotmess-repeat`` marked tests run once, untraced.

Registered through the ``pytest11`` entry point, so installing hotmess is enough; ``-p
no:hotmess`` turns it off. Loading it imports the hotmess package (the tracer, about 70 ms);
the analyzers only when ``--hotmess-repeat`` is given. Test functions are called as pytest
calls them (sync functions; a trial per parametrized call, so it composes with
``@pytest.mark.parametrize``); runs are recorded in the process that runs the test.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

MARK = "hotmess"
TRIAL_FIXTURE = "_hotmess_trial"


@dataclass
class _Test:
    name: str  # the test's node id without the trial
    task_id: str
    agent: str
    trials: dict[int, tuple[bool, str]] = field(default_factory=dict)  # trial -> (passed, failure)
    errors: int = 0  # trials whose set-up failed (the test never ran)


@dataclass
class _Session:
    n: int
    db: str | None
    configured: bool = False
    tests: dict[str, _Test] = field(default_factory=dict)


_SESSION = pytest.StashKey[_Session]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hotmess", "hotmess: how agent tests fail")
    group.addoption("--hotmess-repeat", type=int, default=0, metavar="N",
                    help="run each test marked @pytest.mark.hotmess N times under the hotmess tracer and report "
                         "its success rate and whether its failures are the same failure each time")
    group.addoption("--hotmess-db", default=None, metavar="PATH",
                    help="database for the repeated runs (default: $HOTMESS_DB or ./hotmess.db)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hotmess(task_id=None, agent=None): a test of an agent; with --hotmess-repeat N it runs N "
        "times under the hotmess tracer, one run of task_id per trial")
    n = config.getoption("hotmess_repeat")
    if n < 0:
        raise pytest.UsageError(f"--hotmess-repeat must be 0 or more, got {n}")
    if n > 0:
        config.stash[_SESSION] = _Session(n=n, db=config.getoption("hotmess_db"))


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None and session.configured:
        from hotmess.tracer import shutdown

        shutdown()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = metafunc.config.stash.get(_SESSION, None)
    if session is None or metafunc.definition.get_closest_marker(MARK) is None:
        return
    metafunc.fixturenames.append(TRIAL_FIXTURE)
    metafunc.parametrize(TRIAL_FIXTURE, range(session.n), indirect=True, ids=[f"hotmess{k}" for k in range(session.n)])


@pytest.fixture
def _hotmess_trial(request: pytest.FixtureRequest) -> int:
    """The trial number of a repeated hotmess test."""
    return request.param


def _trial_of(item: pytest.Item) -> int | None:
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get(TRIAL_FIXTURE)


def _test_of(session: _Session, item: pytest.Item, trial: int) -> _Test:
    name = item.nodeid
    token = f"hotmess{trial}"
    for old, new in ((f"[{token}]", ""), (f"-{token}]", "]"), (f"[{token}-", "["), (f"-{token}-", "-")):
        if old in name:
            name = name.replace(old, new, 1)
            break
    test = session.tests.get(name)
    if test is None:
        marker = item.get_closest_marker(MARK)
        kwargs = dict(marker.kwargs) if marker is not None else {}
        if marker is not None and marker.args:
            kwargs.setdefault("task_id", marker.args[0])
        task_id = kwargs.get("task_id") or name
        agent = kwargs.get("agent") or os.path.splitext(os.path.basename(str(item.path)))[0]
        test = session.tests[name] = _Test(name=name, task_id=str(task_id), agent=str(agent))
    return test


def _failure(exc: BaseException) -> str:
    """What a failure says and where: ``Type: first line of the message (file.py:LINE)``."""
    lines = str(exc).strip().splitlines()
    text = type(exc).__name__ + (f": {lines[0].strip()}" if lines else "")
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        text += f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})"
    return text


def _traced(session: _Session, test: _Test, trial: int, function: Any) -> Any:
    import hotmess
    from hotmess.tracer.context import current_run
    from hotmess.vocab import attributes as A

    if not session.configured and session.db is not None:
        hotmess.configure(db=session.db)
        session.configured = True

    def settle(passed: bool, exc: BaseException | None) -> str:
        run = current_run()
        failure = "passed" if passed else _failure(exc)
        if run is None:
            return failure
        if not run.success_recorded:
            run.span.set_attribute(A.SUCCESS, passed)
            run.success_recorded = True
        if run.outcome_recorded:  # the test's own outcome: a failure is what the test said it was
            return failure if passed else str(getattr(run.span, "attributes", {}).get(A.OUTCOME, failure))
        hotmess.outcome(failure)
        return failure

    @functools.wraps(function)
    def body(*args: Any, **kwargs: Any) -> Any:
        try:
            value = function(*args, **kwargs)
        except pytest.skip.Exception:
            raise
        except BaseException as exc:
            test.trials[trial] = (False, settle(False, exc))
            raise
        test.trials[trial] = (True, settle(True, None))
        return value

    return hotmess.trace(task_id=test.task_id, instance=str(trial), agent=test.agent)(body)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    session = pyfuncitem.config.stash.get(_SESSION, None)
    trial = _trial_of(pyfuncitem)
    if session is None or trial is None:
        return (yield)
    original = pyfuncitem.obj
    pyfuncitem.obj = _traced(session, _test_of(session, pyfuncitem, trial), trial, original)
    try:
        return (yield)
    finally:
        pyfuncitem.obj = original


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    session = item.config.stash.get(_SESSION, None)
    trial = _trial_of(item)
    if session is not None and trial is not None and call.when == "setup" and call.excinfo is not None \
            and not call.excinfo.errisinstance(pytest.skip.Exception):
        _test_of(session, item, trial).errors += 1


def describe(trials: list[tuple[bool, str]]) -> str:
    """A test's trials in words: its success rate and how its failures repeat.

    >>> describe([(True, "passed")] * 7 + [(False, "AssertionError: 1 != 2 (t.py:3)")] * 3)
    'fails 30% of the time (3 of 10), always the same way: AssertionError: 1 != 2 (t.py:3)'
    """
    n = len(trials)
    failures = [f for passed, f in trials if not passed]
    if not failures:
        return f"passes every time ({n} of {n})"
    share = f"fails every time ({n} of {n})" if len(failures) == n else \
        f"fails {len(failures) / n:.0%} of the time ({len(failures)} of {n})"
    counts = Counter(failures)
    if len(failures) == 1:
        return f"{share}: {failures[0]}"
    from hotmess.analyzers import failure_consistency

    consistency = failure_consistency(failures, [True] * len(failures)).value
    common, times = counts.most_common(1)[0]
    if len(counts) == 1:
        return f"{share}, always the same way: {common}"
    if len(counts) == len(failures):
        return f"{share}, a different way each time ({len(counts)} different failures)"
    if consistency >= 0.5:
        return (f"{share}, mostly the same way (failure consistency {consistency:.2f}): {common} "
                f"({times} of {len(failures)})")
    return f"{share}, in {len(counts)} different ways (failure consistency {consistency:.2f})"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is None or not session.tests:
        return
    import hotmess
    from hotmess.tracer import get_config

    hotmess.flush()
    terminalreporter.section(f"hotmess: {len(session.tests)} agent test{'s' * (len(session.tests) != 1)}, "
                             f"{session.n} runs each")
    for test in session.tests.values():
        trials = [test.trials[k] for k in sorted(test.trials)]
        said = describe(trials) if trials else "never ran"
        if test.errors:
            said += f"; {test.errors} trial{'s' * (test.errors != 1)} failed in set-up (not counted)"
        terminalreporter.write_line(f"{test.name} (task {test.task_id}): {said}")
    db = get_config().db
    terminalreporter.write_line(f"runs recorded in {db}: hotmess analyze --db {db}")
