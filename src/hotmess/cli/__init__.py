"""The ``hotmess`` command: ``app`` and its options in :mod:`.app`, each command group in its own module."""

import hotmess.cli.platforms  # noqa: F401  (hotmess import mlflow|langsmith|langfuse)
from hotmess.cli import analyze, demo, goals, imports, overtime, repeat, report, runs, tasks  # noqa: F401  (importing registers the commands)
from hotmess.cli.app import app, main

__all__ = ["app", "main"]
