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

# Imported on first use, so that hotmess imports without langchain-core installed (and kept
# out of __all__, so that ``from hotmess import *`` does too).
_LAZY = {
    "open": "hotmess.api",
    "Database": "hotmess.api",
    "langchain_handler": "hotmess.integrations.langchain",
    "instrument_langchain": "hotmess.integrations.langchain",
    "repeat": "hotmess.harness",
    "arepeat": "hotmess.harness",
    "Budget": "hotmess.harness",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hotmess' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
