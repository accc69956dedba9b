"""Capture: the OpenTelemetry pipeline, the @trace decorator and the in-run recorders."""

from hotmess.tracer.config import Config, configure, flush, get_config, shutdown, stats
from hotmess.tracer.context import RunRequest, expire_run, requested_run
from hotmess.tracer.decorator import TraceInfo, trace, traced
from hotmess.tracer.recorders import action, goal, outcome, score, step

__all__ = [
    "Config", "RunRequest", "TraceInfo", "action", "configure", "expire_run", "flush", "get_config", "goal",
    "outcome", "requested_run", "score", "shutdown", "stats", "step", "trace", "traced",
]
