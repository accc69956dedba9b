"""The conventions' rules on the shapes instrumentors write (the real instrumentors' traces are in
test_instrumentors.py; these are the shapes they do not happen to produce there)."""

from __future__ import annotations

import json

from hotmess.vocab import conventions as C


def test_a_dotted_task_attr_reaches_into_json_attributes():
    attrs = {"metadata": json.dumps({"task_id": "t-7", "deep": {"id": 3}}), "app.task": "flat"}
    assert C.lookup(attrs, "metadata.task_id") == "t-7"
    assert C.lookup(attrs, "metadata.deep.id") == 3
    assert C.lookup(attrs, "app.task") == "flat"  # a dotted attribute name is itself first
    assert C.lookup(attrs, "metadata.nope") is None and C.lookup(attrs, "other.x") is None
    assert C.lookup({"metadata": "not json"}, "metadata.task_id") is None


def test_openllmetry_wrapped_arguments_unwrap_to_the_named_arguments():
    wrapped = {"input_str": "{'order_id': '1'}", "tags": [], "metadata": {"checkpoint_ns": "tools:9f"},
               "inputs": {"order_id": "1"}, "kwargs": {"tool_call_id": "call-0"}}
    attrs = {"gen_ai.tool.call.arguments": json.dumps(wrapped)}
    assert C.tool_arguments(attrs) == {"order_id": "1"}
    assert C.tool_call_id(attrs) == "call-0"
    older = {"gen_ai.tool.call.arguments": json.dumps({"input_str": "{'order_id': '1', 'n': 2}", "metadata": {}})}
    assert C.tool_arguments(older) == {"order_id": "1", "n": 2}  # a Python literal, read safely
    mine = {"gen_ai.tool.call.arguments": '{"input_str": "x", "verbose": true}'}  # not the wrapper
    assert C.tool_arguments(mine) == '{"input_str": "x", "verbose": true}'


def test_a_bare_single_argument_gets_its_name_from_the_schema_or_the_model_call():
    schema = {"input.value": "42", "tool.parameters": json.dumps({"properties": {"order_id": {"type": "integer"}}})}
    assert C.tool_arguments(schema) == {"order_id": 42}
    steps = [
        {"kind": "llm", "input": None, "output": json.dumps(
            [{"role": "assistant", "tool_calls": [{"id": "c1", "name": "lookup", "arguments": {"order_id": "42"}}]}])},
        {"kind": "tool", "input": "42", "output": None},
    ]
    C.name_tool_arguments(steps, [None, "c1"])
    assert json.loads(steps[1]["input"]) == {"order_id": "42"}


def test_handled_tool_errors_and_tool_message_content():
    error = {"output.value": json.dumps({"type": "tool", "data": {"content": "order 1 has shipped", "status": "error"}})}
    assert C.tool_result(error) == ("order 1 has shipped", "tool error: order 1 has shipped")
    lc = {"gen_ai.tool.call.result": json.dumps({"output": {"lc": 1, "type": "constructor", "id": ["ToolMessage"],
                                                            "kwargs": {"type": "tool", "content": "ok", "status": "success"}}})}
    assert C.tool_result(lc) == ("ok", None)
    assert C.tool_result({"gen_ai.tool.call.result": '{"status": "delivered"}'}) == ('{"status": "delivered"}', None)


def test_final_answers_in_each_shape():
    genai = [{"role": "assistant", "parts": [{"type": "text", "content": "Done."}]}]
    assert C.final_answer(json.dumps(genai)) == "Done."
    calls_only = [{"role": "assistant", "parts": [{"type": "tool_call", "name": "refund", "arguments": {"id": 1}}]}]
    assert C.final_answer(calls_only) == [{"name": "refund", "arguments": {"id": 1}}]
    state = {"messages": [{"type": "human", "data": {"content": "hi", "id": "u-1"}},
                          {"type": "ai", "data": {"content": "Hello!", "id": "u-2"}}]}
    assert C.final_answer(json.dumps(state)) == "Hello!"
    lc = {"outputs": {"messages": [{"lc": 1, "type": "constructor", "id": ["langchain", "AIMessage"],
                                    "kwargs": {"content": "Bye.", "type": "ai"}}]}}
    assert C.final_answer(lc) == "Bye."
    generations = {"generations": [[{"text": "Sure.", "message": None}]]}
    assert C.final_answer(generations) == "Sure."
    assert C.final_answer("plain text") is None and C.final_answer([{"role": "user", "content": "q"}]) is None


def test_run_outcome_prefers_the_root_and_a_crash_has_none():
    state = json.dumps({"messages": [{"type": "ai", "data": {"content": "From the root."}}]})
    last = [json.dumps([{"role": "assistant", "content": "From the last call."}])]
    assert C.run_outcome({"output.value": state}, False, last) == "From the root."
    assert C.run_outcome({}, False, last) == "From the last call."
    assert C.run_outcome({}, True, last) is None  # crashed: the last call is no answer
    assert C.run_outcome({"output.value": state}, True, last) == "From the root."  # it answered anyway
    assert C.run_outcome({"output.value": "just text"}, False, last) == "just text"


def test_the_older_genai_event_form():
    events = [{"name": "gen_ai.user.message", "attributes": {"content": "refund please"}},
              {"name": "gen_ai.choice", "attributes": {"message": json.dumps({"content": "Refunded."})}}]
    assert C.messages({}, "input", events) == [{"role": "user", "content": "refund please"}]
    out = C.messages({}, "output", events)
    assert C.final_answer(out) == "Refunded."


def test_the_agent_name_comes_from_the_agent():
    root = {"openinference.span.kind": "CHAIN", "metadata": json.dumps({"lc_agent_name": "refund-bot"})}
    assert C.agent_name(root, [], "LangGraph") == "refund-bot"
    assert C.agent_name({"openinference.span.kind": "CHAIN"}, [], "my-graph") == "my-graph"
    assert C.agent_name({"openinference.span.kind": "CHAIN"}, [], "AgentExecutor") is None  # a framework default
    assert C.agent_name({}, [{"gen_ai.agent.name": "helper"}], "x") == "helper"
