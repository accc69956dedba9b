"""The ``hotmess`` command: ``app`` and its options in :mod:`.app`, each command group in its own module."""

from hotmess.cli import analyze, demo, goals, imports, overtime, repeat, report, runs, serve, tasks  # noqa: F401  (importing registers the commands)
from hotmess.cli.app import app, main

__all__ = ["app", "main"]
