"""Langfuse observations built from the Langfuse SDK's own API models (``langfuse.api.ObservationV2``,
``ObservationsV2Response``) and serialised as its API returns them (camelCase JSON): the weather
agent of tests/mlflow_agent.py, one trace per run.

Each run is an ``AGENT`` root observation with ``GENERATION`` and ``TOOL`` children. A crash is
recorded as the Langfuse SDK records an exception: ``level="ERROR"`` and ``status_message`` the
exception's text, on the failing tool and on the root (which then has no output).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from langfuse.api import ObservationsV2Meta, ObservationsV2Response, ObservationV2
from mlflow_agent import ANSWER, CITIES, SCRIPT

ERROR = "weather service unreachable"


def _observations(task: str, ending: str, trace_id: str, t0: datetime) -> list[ObservationV2]:
    city = CITIES[task]
    question = f"What is the weather in {city}?"
    metadata = {"task_id": task, "team": "search"} if task != "untagged" else {}
    root_id = uuid.uuid4().hex[:16]
    tick = iter(range(100))

    def at() -> datetime:
        return t0 + timedelta(milliseconds=next(tick))

    def obs(**fields) -> ObservationV2:
        return ObservationV2(id=uuid.uuid4().hex[:16], trace_id=trace_id, project_id="proj", **fields)

    messages = [{"role": "system", "content": "You answer weather questions."}, {"role": "user", "content": question}]
    answer = None if ending == "crash" else ANSWER[ending].format(city=city)
    out = []
    out.append(obs(type="GENERATION", name="chat", parent_observation_id=root_id, start_time=at(), end_time=at(),
                   input=messages, output={"role": "assistant", "content": "calling a tool"}, model="fake-model-1",
                   usage_details={"input": 12, "output": 5, "total": 17}))
    tool, arg = {"ok": ("get_weather", city), "wrong": ("get_time", city), "crash": ("get_weather", "crash")}[ending]
    if ending == "crash":
        out.append(obs(type="TOOL", name=tool, parent_observation_id=root_id, start_time=at(), end_time=at(),
                       input={"city": arg}, level="ERROR", status_message=ERROR))
    else:
        result = f"sunny in {arg}" if tool == "get_weather" else f"noon in {arg}"
        out.append(obs(type="TOOL", name=tool, parent_observation_id=root_id, start_time=at(), end_time=at(),
                       input={"city": arg}, output=result))
        out.append(obs(type="GENERATION", name="chat", parent_observation_id=root_id, start_time=at(), end_time=at(),
                       input=[*messages, {"role": "assistant", "content": "calling a tool"}],
                       output={"role": "assistant", "content": answer}, model="fake-model-1",
                       usage_details={"input": 12, "output": 5, "total": 17}))
    root = ObservationV2(id=root_id, trace_id=trace_id, project_id="proj", type="AGENT", name="weather_agent",
                         trace_name="weather_agent", start_time=t0, end_time=at(), input={"question": question},
                         output=answer, metadata=metadata, session_id=f"session-{trace_id[:6]}",
                         tags=["prod"], environment="production", is_root_observation=True,
                         **({"level": "ERROR", "status_message": ERROR} if ending == "crash" else {}))
    return [root, *out]


def record(out: Path) -> dict[str, dict]:
    """Write ``out/pages.jsonl`` (``ObservationsV2Response`` pages of 7 observations, so traces
    cross pages) and ``out/observations.jsonl`` (one observation per line); return trace id →
    what the run did."""
    truth: dict[str, dict] = {}
    everything: list[ObservationV2] = []
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for task, endings in SCRIPT.items():
        for ending in endings:
            trace_id = uuid.uuid4().hex
            everything.extend(_observations(task, ending, trace_id, t0))
            t0 += timedelta(minutes=1)
            truth[trace_id] = {"task": task, "ending": ending, "city": CITIES[task],
                               "answer": None if ending == "crash" else ANSWER[ending].format(city=CITIES[task])}
    pages = [everything[i:i + 7] for i in range(0, len(everything), 7)]
    (out / "pages.jsonl").write_text("\n".join(
        ObservationsV2Response(data=page, meta=ObservationsV2Meta(cursor=f"c{i}")).json() for i, page in enumerate(pages)
    ) + "\n", encoding="utf-8")
    (out / "observations.jsonl").write_text("\n".join(o.json() for o in everything) + "\n", encoding="utf-8")
    (out / "truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return truth
