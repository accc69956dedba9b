"""Capture: the OpenTelemetry pipeline, the @trace decorator and the in-run recorders."""

from hotmess.tracer.config import Config, configure, flush, get_config, shutdown, stats
from hotmess.tracer.decorator import trace
from hotmess.tracer.recorders import action, goal, outcome, score, step

__all__ = [
    "Config", "action", "configure", "flush", "get_config", "goal", "outcome", "score",
    "shutdown", "stats", "step", "trace",
]
