"""Real MLflow traces, recorded offline: ``python tests/mlflow_agent.py OUTDIR``.

A small weather agent decorated with ``@mlflow.trace`` (an AGENT root, CHAT_MODEL calls, TOOL
calls) runs several tasks several times into a local SQLite tracking store
(``OUTDIR/mlruns.db``). What each run does is scripted by :data:`SCRIPT`, so the endings are
known: ``ok`` (looks up the city, answers right), ``wrong`` (calls the wrong tool, answers
wrong), ``crash`` (the tool raises, the agent crashes). Task ids are trace tags, except for
task ``untagged``, whose runs only share their first user message. The traces are also written
with ``Trace.to_json()`` to ``OUTDIR/traces.jsonl`` (one per line) and ``OUTDIR/traces.json``
(a list), and what each run did to ``OUTDIR/truth.json`` (trace id → ending).

Run in its own process: MLflow's tracing state is global. No network: telemetry is off and
every connection attempt fails while the agent runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

CITIES = {"t1": "Paris", "t2": "Oslo", "t3": "Lima", "untagged": "Rome"}
#: each task's runs, in order: how each one ends
SCRIPT = {
    "t1": ["ok", "ok", "ok"],
    "t2": ["ok", "wrong", "wrong", "ok"],
    "t3": ["crash", "wrong", "ok", "crash"],
    "untagged": ["ok", "wrong", "ok"],
}
ANSWER = {"ok": "It is sunny in {city}.", "wrong": "I could not find the weather for {city}."}


def _no_network(*args, **kwargs):
    raise OSError("no network in tests")


def main(out: Path) -> None:
    socket.socket.connect = _no_network  # type: ignore[method-assign]
    socket.create_connection = _no_network  # type: ignore[assignment]
    import mlflow
    from mlflow.entities import SpanType

    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlruns.db'}")
    mlflow.set_experiment("weather-agent")

    @mlflow.trace(span_type=SpanType.TOOL)
    def get_weather(city: str) -> str:
        if city == "crash":
            raise ConnectionError("weather service unreachable")
        return f"sunny in {city}"

    @mlflow.trace(span_type=SpanType.TOOL)
    def get_time(city: str) -> str:
        return f"noon in {city}"

    @mlflow.trace(span_type=SpanType.CHAT_MODEL, name="chat")
    def chat(messages: list, model: str = "fake-model-1") -> dict:
        mlflow.get_current_active_span().set_attribute(
            "mlflow.chat.tokenUsage", {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17})
        return {"model": model, "choices": [{"message": {"role": "assistant", "content": _reply(messages)}}]}

    def _reply(messages: list) -> str:
        return messages[-1]["content"] if messages[-1]["role"] == "assistant-plan" else "calling a tool"

    @mlflow.trace(span_type=SpanType.AGENT, name="weather_agent")
    def agent(question: str, task: str, ending: str) -> str:
        if task != "untagged":
            mlflow.update_current_trace(tags={"task_id": task}, metadata={"team": "search"})
        city = CITIES[task]
        messages = [{"role": "system", "content": "You answer weather questions."},
                    {"role": "user", "content": question}]
        chat(messages)
        if ending == "ok":
            get_weather(city=city)
        elif ending == "wrong":
            get_time(city=city)
        else:
            get_weather(city="crash")
        answer = ANSWER[ending].format(city=city)
        chat([*messages, {"role": "assistant-plan", "content": answer}])
        return answer

    truth = {}
    for task, endings in SCRIPT.items():
        for ending in endings:
            with contextlib.suppress(ConnectionError):
                agent(f"What is the weather in {CITIES[task]}?", task, ending)
            trace_id = mlflow.get_last_active_trace_id()
            truth[trace_id] = {"task": task, "ending": ending, "city": CITIES[task],
                               "answer": None if ending == "crash" else ANSWER[ending].format(city=CITIES[task])}
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(return_type="list", max_results=1000)
    assert len(traces) == len(truth), (len(traces), len(truth))
    with open(out / "traces.jsonl", "w", encoding="utf-8") as f:
        for trace in traces:
            f.write(trace.to_json() + "\n")
    (out / "traces.json").write_text(json.dumps([json.loads(t.to_json()) for t in traces], indent=1), encoding="utf-8")
    (out / "truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
