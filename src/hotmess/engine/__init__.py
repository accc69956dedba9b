"""The analysis past one machine: the same per-task functions run on a distributed engine.

``hotmess.engine.analyze(source, engine="dask", scheduler=None, ...)`` reads a Parquet
directory or URL (``s3://bucket/prefix``; :mod:`hotmess.parquet`'s layout, written by
``hotmess export parquet``), groups the
runs by task on the workers, computes each task's figures there
(:func:`hotmess.analyzers.analysis.task_figures`, the very function the local
:func:`~hotmess.analyzers.analyze` is built on) and combines the few numbers per task on the
driver (:func:`hotmess.analyzers.analysis.combine`): the same :class:`Analysis`, the same JSON.
:func:`horizon`, :func:`goals` and :func:`drift` do the same with their own per-task functions
and combines (:mod:`.dask_engine`, :mod:`.dask_goals`, :mod:`.dask_drift`).

The engine is Dask distributed (``pip install 'hotmess[dask]'``); nothing of it is imported by
``import hotmess`` or by importing this package, only by calling one of these functions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENGINES", "analyze", "drift", "goals", "horizon"]

#: The engines :func:`analyze` runs on.
ENGINES = ("dask",)


def _check(engine: str) -> None:
    from hotmess.errors import HotmessError

    if engine not in ENGINES:
        raise HotmessError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")


def analyze(source: Any, *, engine: str = "dask", **kwargs: Any) -> Any:
    """The :class:`~hotmess.analyzers.results.Analysis` of the runs under ``source`` computed on
    ``engine``; the keyword arguments are those of :func:`hotmess.engine.dask_engine.analyze`."""
    _check(engine)
    from .dask_engine import analyze as dask_analyze

    return dask_analyze(source, **kwargs)


def horizon(source: Any, *, engine: str = "dask", **kwargs: Any) -> Any:
    """The :class:`~hotmess.analyzers.horizon.Horizon` of the runs under ``source`` computed on
    ``engine``; the keyword arguments are those of :func:`hotmess.engine.dask_engine.horizon`."""
    _check(engine)
    from .dask_engine import horizon as dask_horizon

    return dask_horizon(source, **kwargs)


def drift(source: Any, *, engine: str = "dask", **kwargs: Any) -> Any:
    """The :class:`~hotmess.analyzers.drift.Drift` of the runs under ``source`` computed on
    ``engine``; the keyword arguments are those of :func:`hotmess.engine.dask_drift.drift`."""
    _check(engine)
    from .dask_drift import drift as dask_drift

    return dask_drift(source, **kwargs)


def goals(source: Any, *, engine: str = "dask", **kwargs: Any) -> Any:
    """The :class:`~hotmess.analyzers.goals.GoalCoherence` of the runs under ``source`` computed
    on ``engine``; the keyword arguments are those of :func:`hotmess.engine.dask_goals.goals`."""
    _check(engine)
    from .dask_goals import goals as dask_goals

    return dask_goals(source, **kwargs)
