"""One canonical_json for importers (strict) and analyzers (lenient): both old behaviours kept.

The two functions it replaced are copied here verbatim as references; the fast path (plain
JSON data straight to ``json``) must give their exact text, since run ids are its hashes.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotmess.analyzers import outcomes
from hotmess.tools import canonical_json, canonical_value

# ---------------------------------------------------------------------------------------------
# the two old functions, as they were


def _old_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(_old_normalize(key), allow_nan=False)
    raise TypeError(f"object keys must be strings or numbers, got {type(key).__name__}")


def _old_normalize(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) <= 2**53:
            return int(value)
        return value
    if isinstance(value, dict):
        return {_old_key(k): _old_normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_old_normalize(v) for v in value]
    raise TypeError(f"not JSON data: {type(value).__name__}")


def old_strict(value: Any) -> str:  # hotmess.integrations.canonical.canonical_json
    return json.dumps(
        _old_normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _old_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): _old_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_old_value(v) for v in value]
    if isinstance(value, np.generic):
        return _old_value(value.item())
    if isinstance(value, np.ndarray):
        return _old_value(value.tolist())
    return str(value)


def old_lenient(value: Any) -> str:  # hotmess.analyzers.outcomes.canonical_json
    return json.dumps(_old_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _outcome(fn, value):  # noqa: ANN001
    try:
        return "ok", fn(value)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, None


# ---------------------------------------------------------------------------------------------
# values: JSON data, and the awkward rest (non-string keys, tuples, big and non-finite floats)

_EDGE_FLOATS = [0.0, -0.0, 1.0, 2.5, 1e16, 1e-7, 2.0**53, -(2.0**53), 2.0**53 + 2, 2.0**53 - 1,
                float("nan"), float("inf"), -float("inf")]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(_EDGE_FLOATS),
)
_plain_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
              st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(_EDGE_FLOATS[:-3])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
_keys = st.one_of(st.text(max_size=4), st.integers(-3, 12), st.booleans(), st.none(),
                  st.sampled_from([1.0, 2.5, -0.0, 10.0]))
_awkward = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_plain_json)
def test_plain_json_data_is_spelled_as_before_in_both_modes(value):
    assert canonical_json(value) == old_strict(value)
    assert canonical_json(value, strict=False) == old_lenient(value)
    assert outcomes.canonical_json(value) == old_lenient(value)


@settings(max_examples=600, deadline=None)
@given(_awkward)
def test_awkward_values_keep_each_old_behaviour(value):
    # strict: the same text, or the same error type (NaN / infinity -> ValueError)
    assert _outcome(canonical_json, value) == _outcome(old_strict, value)
    # lenient: the same text, NaN included
    assert canonical_json(value, strict=False) == old_lenient(value)


def test_the_differences_between_the_two_modes():
    # NaN and infinity: rejected for stored data, written as Python's json does for keys
    with pytest.raises(ValueError):
        canonical_json(float("nan"))
    with pytest.raises(ValueError):
        canonical_json({"a": [float("inf")]})
    assert canonical_json([float("nan"), float("-inf")], strict=False) == "[NaN,-Infinity]"
    # non-string keys: JSON spelling vs str()
    assert canonical_json({True: 1, None: 2, 2.0: 3}) == '{"2":3,"null":2,"true":1}'
    assert canonical_json({True: 1, None: 2, 2.0: 3}, strict=False) == '{"2.0":3,"None":2,"True":1}'
    # integer keys sort as text in both (json itself would sort them as numbers)
    assert canonical_json({10: "a", 9: "b"}) == '{"10":"a","9":"b"}'
    assert canonical_json({10: "a", 9: "b"}, strict=False) == '{"10":"a","9":"b"}'
    # what is not JSON data
    with pytest.raises(TypeError):
        canonical_json({"s": {1, 2}})
    with pytest.raises(TypeError):
        canonical_json({(1, 2): "tuple key"})
    assert canonical_json({"s": b"x"}, strict=False) == '{"s":"b\'x\'"}'
    assert canonical_json({"n": np.float64(2.0), "a": np.arange(2)}, strict=False) == '{"a":[0,1],"n":2}'
    assert canonical_json(OrderedDict(b=1.0, a=2), strict=False) == '{"a":2,"b":1}'
    # 2**53 as a float: an int for stored data, kept a float by the analyzers (as before)
    assert canonical_json(2.0**53) == "9007199254740992"
    assert canonical_json(2.0**53, strict=False) == "9007199254740992.0"
    assert canonical_json(2.0**53 - 1, strict=False) == "9007199254740991"


def test_fast_path_copies_only_what_changes():
    inner = {"x": "y", "z": [1, "2"]}
    value = {"a": inner, "b": [0.5, 1.0]}
    assert canonical_value(inner) == inner
    assert canonical_json(value) == '{"a":{"x":"y","z":[1,"2"]},"b":[0.5,1]}'
    assert value == {"a": inner, "b": [0.5, 1.0]}  # the input is never changed
    assert type(value["b"][1]) is float


def test_subclasses_take_the_full_path():
    class Key(str):
        pass

    class Num(float):
        pass

    assert canonical_json({Key("b"): 1, "a": Num(2.0)}) == '{"a":2,"b":1}'
    assert canonical_json((1.0, (2.0,))) == "[1,[2]]"


REAL = Path("/work/shared/data/tau-bench/gpt-4o-airline.json")


@pytest.mark.skipif(not REAL.exists(), reason="the tau-bench file is not on this machine")
def test_run_id_text_unchanged_on_the_real_tau_bench_file():
    records = json.loads(REAL.read_text())
    for record in records:
        assert canonical_json(record) == old_strict(record)


def test_deep_nesting_raises_recursion_error_on_both_paths():
    ok = json.loads("[" * 400 + "]" * 400)
    assert canonical_json(ok) == "[" * 400 + "]" * 400
    deep = json.loads("[" * 700 + "]" * 700)
    for strict in (True, False):
        with pytest.raises(RecursionError):
            canonical_json(deep, strict=strict)
        with pytest.raises(RecursionError):
            canonical_json({1: deep}, strict=strict)  # the full path
