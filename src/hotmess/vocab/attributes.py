"""Span names and attribute keys hotmess writes, and the OTLP importer reads back.

OpenTelemetry's GenAI semantic conventions where they exist; ``hotmess.*`` for the rest.
They are our own string constants on purpose: the GenAI constants in
``opentelemetry-semantic-conventions`` are incubating and may move, and these names are
a public format (databases and OTLP logs written today must still read tomorrow).
"""

from __future__ import annotations

# GenAI semantic conventions
OPERATION = "gen_ai.operation.name"
OP_AGENT = "invoke_agent"
OP_TOOL = "execute_tool"
OP_CHAT = "chat"
AGENT_NAME = "gen_ai.agent.name"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
PROVIDER = "gen_ai.provider.name"

# hotmess's own
RUN = "hotmess.run"  # True on a run's root span
TASK_ID = "hotmess.task.id"
INSTANCE = "hotmess.instance"
STEP_KIND = "hotmess.step.kind"  # llm, tool, agent, goal, step, retriever, chain
GOAL = "hotmess.goal"
INPUT = "hotmess.input"
INSTRUCTION = "hotmess.instruction"  # the task as the agent was given it (tau-bench's instruction)
OUTPUT = "hotmess.output"
OUTCOME = "hotmess.outcome"
SUCCESS = "hotmess.success"
REFERENCE = "hotmess.reference"
SCORE = "hotmess.score"
CHECKS = "hotmess.checks"
TRUNCATED = "hotmess.truncated"  # names of attributes cut to max_attribute_chars
CLOSED_EARLY = "hotmess.closed_early"  # a generator run whose consumer stopped early

# LangChain's own ids of the run a span records (the callback handler's spans)
LANGCHAIN_RUN_ID = "langchain.run.id"
LANGCHAIN_PARENT_RUN_ID = "langchain.run.parent_id"

STEP_KINDS = ("llm", "tool", "agent", "goal", "step", "retriever", "chain")

# gen_ai.operation.name for each step kind, where the conventions have one
OPERATION_FOR_KIND = {"llm": OP_CHAT, "tool": OP_TOOL, "agent": OP_AGENT}
KIND_FOR_OPERATION = {
    OP_CHAT: "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    OP_TOOL: "tool",
    OP_AGENT: "agent",
    "create_agent": "agent",
    "invoke_workflow": "chain",
    "execute_task": "chain",  # OpenLLMetry's LangGraph node spans
    "embeddings": "retriever",
}
