"""Real LangSmith runs, made offline: the weather agent of tests/mlflow_agent.py traced as the
SDK's own ``RunTree`` objects (never posted) and serialised with the SDK (``model_dump_json``).

:func:`traced` does what ``@langsmith.traceable`` does for each call: a child ``RunTree`` of
the current one (``create_child``), its inputs the call's named arguments, ended with the
returned value (a non-dict wrapped as ``{"output": value}``) or with the error as the SDK
formats it (``repr(exception)``, a blank line, the traceback). Model calls carry
``ls_model_name`` and ``usage_metadata`` in their metadata, as the SDK's wrappers record them.
"""

from __future__ import annotations

import contextlib
import json
import traceback
from pathlib import Path
from typing import Any

from langsmith.run_trees import RunTree
from mlflow_agent import ANSWER, CITIES, SCRIPT


def traced(parent: RunTree, name: str, run_type: str, fn, metadata: dict | None = None, **inputs: Any) -> Any:
    child = parent.create_child(name=name, run_type=run_type, inputs=inputs,
                                extra={"metadata": {**parent.metadata, **(metadata or {})}})
    try:
        value = fn(**inputs)
    except Exception as exc:
        child.end(error=f"{exc!r}\n\n{traceback.format_exc()}")
        raise
    child.end(outputs=value if isinstance(value, dict) else {"output": value})
    return value


def get_weather(city: str) -> str:
    if city == "crash":
        raise ConnectionError("weather service unreachable")
    return f"sunny in {city}"


def get_time(city: str) -> str:
    return f"noon in {city}"


def chat(messages: list) -> dict:
    last = messages[-1]
    content = last["content"] if last["role"] == "assistant-plan" else "calling a tool"
    return {"choices": [{"message": {"role": "assistant", "content": content}}],
            "usage_metadata": {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}}


def run_agent(task: str, ending: str) -> RunTree:
    city = CITIES[task]
    question = f"What is the weather in {city}?"
    metadata = {"task_id": task} if task != "untagged" else {}
    root = RunTree(name="weather_agent", run_type="chain", inputs={"question": question, "task": task},
                   extra={"metadata": {**metadata, "team": "search"} if metadata else {}}, project_name="weather")
    model = {"ls_model_name": "fake-model-1", "ls_provider": "fake"}
    try:
        messages = [{"role": "system", "content": "You answer weather questions."}, {"role": "user", "content": question}]
        traced(root, "chat", "llm", chat, model, messages=messages)
        if ending == "ok":
            traced(root, "get_weather", "tool", get_weather, city=city)
        elif ending == "wrong":
            traced(root, "get_time", "tool", get_time, city=city)
        else:
            traced(root, "get_weather", "tool", get_weather, city="crash")
        answer = ANSWER[ending].format(city=city)
        traced(root, "chat", "llm", chat, model, messages=[*messages, {"role": "assistant-plan", "content": answer}])
    except Exception as exc:
        root.end(error=f"{exc!r}\n\n{traceback.format_exc()}")
        return root
    root.end(outputs={"output": answer})
    return root


def record(out: Path) -> dict[str, dict]:
    """Run every scripted task, write ``out/runs.jsonl`` (one serialised run per line, children
    before their parent as the SDK ends them) and return trace id → what the run did."""
    truth: dict[str, dict] = {}
    lines = []
    for task, endings in SCRIPT.items():
        for ending in endings:
            with contextlib.suppress(ConnectionError):
                root = run_agent(task, ending)
            lines.extend(child.model_dump_json() for child in root.child_runs)
            lines.append(root.model_dump_json())
            truth[str(root.trace_id)] = {"task": task, "ending": ending, "city": CITIES[task],
                                         "answer": None if ending == "crash" else ANSWER[ending].format(city=CITIES[task])}
    (out / "runs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return truth
