"""Real Inspect AI logs, made offline: ``inspect_ai.eval`` on the built-in ``mockllm`` model.

The "agent" is Inspect's own ``use_tools(add()) + generate()`` loop. The scripted model first
calls the ``add`` tool with the sample's operands, then answers with the text :data:`ANSWERS`
gives for that sample and trial (a trial is the n-th time the sample runs: epochs run one after
another, ``max_samples=1``), so what each sample × epoch answered is known here and can be
checked against what the log holds. Targets are in :data:`TARGETS`; ``match()`` grades C / I and
``closeness`` gives partial credit (1, 0.5 when off by one, else 0).

No network: mockllm counts tokens for tool definitions with ``count_text_tokens``, which by
default is tiktoken, which downloads its encoding on first use. The model gets a local counter
(a quarter of the characters) instead, and :func:`no_network` makes any connection attempt
(or name lookup) fail while the evals run, so a download would show as an error.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

TASK = "arith"
TARGETS = {"s1": "3", "s2": "5", "s3": "7"}
OPERANDS = {"s1": (1, 2), "s2": (2, 3), "s3": (3, 4)}
#: What the model answers on each sample, trial by trial (3 epochs).
ANSWERS = {
    "s1": ["3", "3", "3"],  # always right
    "s2": ["5", "6", "6"],  # wrong twice, the same way
    "s3": ["8", "6", "9"],  # wrong every time, each time differently
}
EPOCHS = 3
#: A sample that raises in the tool (for the crash logs): s2's second trial.
CRASH_ON = ("s2", 2)


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Every internet connection and name lookup fails while inside (unix sockets still work)."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):  # type: ignore[no-untyped-def]
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network is off in this test: connect to {address}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(f"network is off in this test: lookup of {host}")

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo  # type: ignore[assignment]


def _model(name: str, answers: dict[str, list[str]]):
    from inspect_ai.model import ModelOutput, get_model

    trials: dict[str, int] = {}
    sample_of = {f"What is {a} + {b}?": sid for sid, (a, b) in OPERANDS.items()}

    def script(messages, tools, tool_choice, config):  # noqa: ARG001 - mockllm's signature
        question = next(m.text for m in messages if m.role == "user")
        sid = sample_of[question]
        if messages[-1].role == "user":  # a new trial of this sample
            trials[sid] = trials.get(sid, 0) + 1
            a, b = OPERANDS[sid]
            return ModelOutput.for_tool_call(name, "add", {"x": a, "y": b}, tool_call_id=f"call-{sid}-{trials[sid]}")
        return ModelOutput.from_content(name, answers[sid][trials[sid] - 1])

    model = get_model(name, custom_outputs=script, memoize=False)

    async def count_text_tokens(text: str) -> int:  # instead of tiktoken, which would download
        return max(1, len(text) // 4)

    model.api.count_text_tokens = count_text_tokens
    return model


def _task(crash: bool):
    from inspect_ai import Task
    from inspect_ai.dataset import Sample
    from inspect_ai.scorer import Score, Target, match, mean, scorer
    from inspect_ai.solver import TaskState, generate, use_tools
    from inspect_ai.tool import tool

    runs: dict[int, int] = {}

    @tool
    def add():
        async def execute(x: int, y: int) -> int:
            """Add two numbers.

            Args:
                x: The first number.
                y: The second number.
            """
            runs[x] = runs.get(x, 0) + 1
            if crash and (x, y) == OPERANDS[CRASH_ON[0]] and runs[x] == CRASH_ON[1]:
                raise RuntimeError("the adder broke")
            return x + y

        return execute

    @scorer(metrics=[mean()])
    def closeness():
        async def score(state: TaskState, target: Target) -> Score:
            try:
                off = abs(int(state.output.completion) - int(target.text))
            except ValueError:
                return Score(value=0.0)
            return Score(value=1.0 if off == 0 else 0.5 if off == 1 else 0.0, answer=state.output.completion)

        return score

    dataset = [Sample(id=sid, input=f"What is {a} + {b}?", target=TARGETS[sid]) for sid, (a, b) in OPERANDS.items()]
    return Task(dataset=dataset, solver=[use_tools(add()), generate()], scorer=[match(), closeness()], name=TASK)


def make_log(
    log_dir: Path, *, model: str = "mockllm/model", answers: dict[str, list[str]] | None = None,
    log_format: str = "eval", crash: bool = False, fail_on_error: bool = False, epochs: int = EPOCHS,
) -> Path:
    """Run the eval (offline) and return the log file it wrote."""
    from inspect_ai import eval as inspect_eval

    with no_network():
        (log,) = inspect_eval(
            _task(crash), model=_model(model, answers or ANSWERS), epochs=epochs, max_samples=1,
            log_dir=str(log_dir), log_format=log_format, display="none", fail_on_error=fail_on_error,
            score_display=False,
        )
    assert log.location, log
    return Path(log.location)


def expected_runs(answers: dict[str, list[str]] | None = None) -> dict[tuple[str, str], str]:
    """(task id, instance) → the completion the script gives, for a log made by :func:`make_log`."""
    return {(f"{TASK}:{sid}", str(k + 1)): text for sid, texts in (answers or ANSWERS).items()
            for k, text in enumerate(texts)}


def make_nested_log(log_dir: Path) -> Path:
    """A ``react()`` agent that hands the sum to a helper ``react()`` agent run as a tool; the
    helper's first ``add`` call fails with a ``ToolError`` the model sees, its second works."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.agent import as_tool, react
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import includes
    from inspect_ai.tool import ToolError, tool

    @tool
    def add():
        async def execute(x: int, y: int) -> int:
            """Add two numbers.

            Args:
                x: The first number.
                y: The second number.
            """
            if y < 0:
                raise ToolError("y must not be negative")
            return x + y

        return execute

    def script(messages, tools, tool_choice, config):  # noqa: ARG001
        names = {t.name for t in tools}
        last = messages[-1]
        if "helper" in names:  # the main agent
            if last.role == "user":
                return ModelOutput.for_tool_call("mockllm/model", "helper", {"input": "add 1 and 2"})
            return ModelOutput.for_tool_call("mockllm/model", "submit", {"answer": "3"})
        if last.role == "user":  # the helper
            return ModelOutput.for_tool_call("mockllm/model", "add", {"x": 1, "y": -2})
        if last.role == "tool" and last.error is not None:
            return ModelOutput.for_tool_call("mockllm/model", "add", {"x": 1, "y": 2})
        return ModelOutput.for_tool_call("mockllm/model", "submit", {"answer": "3"})

    from inspect_ai.model import get_model

    model = get_model("mockllm/model", custom_outputs=script, memoize=False)

    async def count_text_tokens(text: str) -> int:
        return max(1, len(text) // 4)

    model.api.count_text_tokens = count_text_tokens
    helper = react(name="helper", description="Adds numbers.", tools=[add()], model=model)
    main = react(name="main", tools=[as_tool(helper)], model=model)
    task = Task(dataset=[Sample(id="n1", input="What is 1 + 2?", target="3")], solver=main, scorer=includes(),
                name="nested")
    with no_network():
        (log,) = inspect_eval(task, model=model, log_dir=str(log_dir), display="none", score_display=False)
    assert log.location, log
    return Path(log.location)
