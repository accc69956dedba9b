"""hotmess: log multi-step agent runs and measure how self-consistent their failures are.

>>> import hotmess
>>> @hotmess.trace(task_id=lambda req: req["id"], agent="refund-bot")   # doctest: +SKIP
... def run_agent(req): ...
"""

from hotmess._version import __version__
from hotmess.tracer import (
    action,
    configure,
    flush,
    goal,
    outcome,
    score,
    shutdown,
    stats,
    step,
    trace,
)

__all__ = [
    "__version__", "action", "configure", "flush", "goal", "outcome", "score", "shutdown",
    "stats", "step", "trace",
]
