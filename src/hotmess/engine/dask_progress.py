"""How far along a computation on the cluster is, through a ``progress(unit, done, total)``
callback (:mod:`hotmess.progress`): the tasks of its Dask graph finished, of all of them
(reading the Parquet, the shuffles, each task's figures), as the scheduler counts them.

This is the scheduler's own progress feed, the one ``distributed.progress`` draws in a console,
read into the callback instead of printed. A scheduler that does not answer it (one that
refuses pickled functions, say) costs the bar, never the result.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from hotmess.progress import Progress

logger = logging.getLogger("hotmess")

__all__ = ["before_closing_the_cluster", "computed"]

#: Seconds between two reports from the scheduler.
INTERVAL = 0.2


def computed(client: Any, collection: Any, progress: Progress | None = None, unit: str = "Dask tasks") -> Any:
    """``collection`` (a lazy Dask collection) computed on ``client``'s workers; with
    ``progress``, ``progress(unit, finished, all)`` of the graph's tasks as they finish."""
    future = client.compute(collection)
    if progress is not None:
        try:
            _follow(client, future, progress, unit)
        except Exception as exc:  # noqa: BLE001 - the bar is never worth the result
            logger.debug("hotmess: no progress from the scheduler (%s: %s)", type(exc).__name__, exc)
    return future.result()


def _follow(client: Any, future: Any, progress: Progress, unit: str) -> None:
    """Report the graph behind ``future`` until it is finished or failed (blocks until then)."""
    from distributed.diagnostics.progressbar import ProgressBar
    from distributed.utils import LoopRunner

    class Feed(ProgressBar):
        def _draw_bar(self, remaining: int, all: int, **_: Any) -> None:  # noqa: A002 - the feed's name
            progress(unit, all - remaining, all)

    feed = Feed([future], scheduler=client.scheduler.address, interval=INTERVAL)
    LoopRunner(loop=None).run_sync(feed.listen)


def before_closing_the_cluster() -> None:
    """Wait out the scheduler's end of a feed: it stops at its next tick, when it finds the feed
    closed, and a cluster closed before then logs the feed's cancellation as an error."""
    time.sleep(1.5 * INTERVAL)
