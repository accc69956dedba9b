"""Outcome mappers: exact, actions, text clusters, embedding clusters, user functions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hotmess.analyzers import (
    NONE_KEY,
    MissingDependencyError,
    action_key,
    action_keys,
    canonical_action,
    embedding_clusters,
    exact_key,
    exact_keys,
    is_read_only,
    map_outcomes,
    parse_actions,
    sentence_transformer_embedder,
    text_clusters,
)

# ---------------------------------------------------------------------------- exact


def test_exact_normalises_text():
    keys = exact_keys(["  Hello   World ", "hello world", "HELLO\tWORLD\n"])
    assert list(keys) == ["hello world"] * 3


def test_exact_json_string_value_is_its_normalised_text():
    assert exact_key('"  Hello  World"') == "hello world"
    assert exact_key('"yes"') == exact_key("Yes")


def test_exact_json_is_canonical():
    a = exact_key('{"b": 1.0, "a": [1, 2], "c": {"y": 2, "x": 1}}')
    b = exact_key('{"c":{"x":1,"y":2},"a":[1,2],"b":1}')
    assert a == b == '{"a":[1,2],"b":1,"c":{"x":1,"y":2}}'
    assert exact_key("[1, 2.5]") == "[1,2.5]"
    assert exact_key("42") == exact_key("42.0") == "42"


def test_exact_none():
    assert list(exact_keys([None, "null", float("nan")])) == [NONE_KEY] * 3
    assert exact_key("") == ""  # empty text is an outcome, not a missing one


def test_exact_keys_is_object_array_of_str():
    keys = exact_keys(['{"a": 1}', "x"])
    assert keys.dtype == object and all(isinstance(k, str) for k in keys)


# ---------------------------------------------------------------------------- actions


@pytest.mark.parametrize(
    "name",
    [
        "get_user_details",
        "search_direct_flight",
        "list_all_airports",
        "find",
        "lookupOrder",
        "read_file",
        "fetch-page",
        "query_db",
        "think",
        "calculate",
        "getUser",
        "GET_USER",
    ],
)
def test_default_read_only(name):
    assert is_read_only(name)


@pytest.mark.parametrize(
    "name",
    [
        "book_reservation",
        "cancel_reservation",
        "transfer_to_human_agents",
        "getaway",
        "listen",
        "update_reservation_flights",
        "send_certificate",
        "thinker",
    ],
)
def test_default_state_changing(name):
    assert not is_read_only(name)


def test_action_keys_filters_read_only_and_canonicalises():
    runs = [
        [("get_user", {"id": 1}), ("book", '{"x": 1.0, "a": {"z": 1, "b": 2}}')],
        [
            {"name": "book", "kwargs": {"a": {"b": 2, "z": 1}, "x": 1}},
            {"name": "think", "arguments": "{}"},
        ],
        [{"function": {"name": "book", "arguments": '{"x":1,"a":{"b":2,"z":1}}'}}],
        [],
        None,
    ]
    keys = action_keys(runs)
    assert keys[0] == keys[1] == keys[2] == '[["book",{"a":{"b":2,"z":1},"x":1}]]'
    assert keys[3] == keys[4] == "[]"
    assert json.loads(keys[0]) == [["book", {"a": {"b": 2, "z": 1}, "x": 1}]]


def test_action_keys_order_matters():
    a = action_keys([[("cancel", {"id": 1}), ("book", {"id": 2})]])[0]
    b = action_keys([[("book", {"id": 2}), ("cancel", {"id": 1})]])[0]
    assert a != b


def test_action_keys_read_only_configurable():
    calls = [[("get_user", {}), ("book", {})]]
    assert action_keys(calls, read_only=None)[0] == '[["get_user",{}],["book",{}]]'
    assert action_keys(calls, read_only={"book"})[0] == '[["get_user",{}]]'
    assert action_keys(calls, read_only=lambda n: n.startswith("b"))[0] == '[["get_user",{}]]'
    with pytest.raises(ValueError, match="single string"):
        action_keys(calls, read_only="book")


def test_transfer_to_human_is_an_outcome():
    key = action_key([("get_user", {}), ("transfer_to_human_agents", {"summary": "x"})])
    assert key == '[["transfer_to_human_agents",{"summary":"x"}]]'


def test_canonical_action_errors():
    with pytest.raises(ValueError, match="needs a 'name'"):
        canonical_action({"kwargs": {}})
    with pytest.raises(ValueError, match="tool call must be"):
        canonical_action(42)
    # arguments that are not JSON stay as text
    assert canonical_action(("f", "not json")) == ("f", "not json")


def test_parse_actions():
    assert parse_actions('[{"name": "a", "kwargs": {"x": 1.0}}]') == [("a", {"x": 1})]
    assert parse_actions('[["a", {"x": 1}]]') == [("a", {"x": 1})]
    assert parse_actions("[]") == []
    assert parse_actions('{"name": "a"}') is None
    assert parse_actions("done") is None
    assert parse_actions(None) is None


def test_action_keys_on_tau_bench_reference_actions():
    """The tau-bench file's ground-truth actions key the same as the matching trajectory calls."""
    path = "/work/shared/data/tau-bench/gpt-4o-airline.json"
    try:
        with open(path) as f:
            records = json.load(f)
    except OSError:
        pytest.skip("tau-bench data not available")
    agree = 0
    for record in records:
        reference = action_key(record["info"]["task"]["actions"])
        calls = [tc["function"] for m in record["traj"] for tc in (m.get("tool_calls") or [])]
        key = action_key(calls)
        assert all(not is_read_only(n) for n, _ in json.loads(key))
        agree += key == reference
    # tau-bench rewards the final database state, so exact call-sequence agreement is rarer than
    # reward 1 (84 of 200), but it happens for many runs
    assert 20 <= agree <= 84


# ---------------------------------------------------------------------------- text clusters


def test_text_clusters_groups_similar_texts_per_task():
    texts = [
        "The flight was booked",
        "flight booked",
        "I cancelled the reservation",
        "The flight was booked",  # same text as the first
        "the flight was booked",  # task 2: same words, other task → its own key space
    ]
    groups = ["t1", "t1", "t1", "t1", "t2"]
    keys = text_clusters(texts, groups, distance_threshold=0.7)
    assert keys[0] == keys[1] == keys[3]
    assert keys[2] != keys[0]
    assert keys[4] != keys[0]  # keys never collide across groups
    assert keys[0].startswith("text:t1:") and keys[4].startswith("text:t2:")


def test_text_clusters_edge_cases():
    # one text in a group, empty texts, identical texts, None, punctuation only
    keys = text_clusters(["only"], ["g"])
    assert list(keys) == ["text:g:0"]
    keys = text_clusters(["same", "same", " SAME "], [1, 1, 1])
    assert len(set(keys)) == 1
    keys = text_clusters(["", "", "!!!", None], [1, 1, 1, 1])
    assert keys[0] == keys[1] and keys[2] != keys[0] and keys[3] == NONE_KEY
    keys = text_clusters(["a", "b"], None, distance_threshold=0.5)
    assert keys[0] != keys[1]  # single-character tokens are kept
    assert len(text_clusters([], [])) == 0


def test_text_clusters_threshold():
    texts = ["red apple pie", "red apple tart", "blue car engine"]
    assert len(set(text_clusters(texts, [0, 0, 0], distance_threshold=0.0))) == 3
    assert len(set(text_clusters(texts, [0, 0, 0], distance_threshold=1.5))) == 1
    with pytest.raises(ValueError, match="distance_threshold"):
        text_clusters(texts, [0, 0, 0], distance_threshold=-1)
    with pytest.raises(ValueError, match="groups has 2 values"):
        text_clusters(texts, [0, 0])


# ---------------------------------------------------------------------------- embeddings


def test_embedding_clusters_on_vectors():
    vectors = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    keys = embedding_clusters(vectors, ["a", "a", "a", "a", "b"], distance_threshold=0.2)
    assert keys[0] == keys[1] == keys[3]
    assert keys[2] != keys[0]
    assert keys[4] == "embedding:b:0"
    with pytest.raises(ValueError, match="2-D"):
        embedding_clusters(np.zeros(3), [0, 0, 0])


def test_embedding_clusters_with_embed_callable_embeds_each_text_once():
    seen = []

    def embed(texts):
        seen.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=float)

    keys = embedding_clusters(
        ["ab", "ab", "abcdefghij", None], [0, 0, 0, 0], embed=embed, distance_threshold=0.01
    )
    assert seen == [["ab", "abcdefghij"]]
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] == NONE_KEY


def test_sentence_transformer_embedder_never_downloads():
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="sentence-transformers"):
            sentence_transformer_embedder("all-MiniLM-L6-v2")
        return
    with pytest.raises(MissingDependencyError, match="never downloads"):
        sentence_transformer_embedder("hotmess-test/no-such-model-anywhere")


# ---------------------------------------------------------------------------- user function


def test_map_outcomes_with_callable():
    keys = map_outcomes(
        ["Paris, France", "paris", "Lyon", None], lambda t: (t or "").split(",")[0].lower()
    )
    assert list(keys) == ["paris", "paris", "lyon", ""]
    keys = map_outcomes(["1", "01", "x"], lambda t: int(t) if t.isdigit() else t)
    assert keys[0] == keys[1] == "int:1" and keys[2] == "x"
    assert list(map_outcomes(["A"], "exact")) == ["a"]
    with pytest.raises(ValueError, match="unhashable"):
        map_outcomes(["a"], lambda t: [t])
    with pytest.raises(ValueError, match="'exact' or a callable"):
        map_outcomes(["a"], "fuzzy")
