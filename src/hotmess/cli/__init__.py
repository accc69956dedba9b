"""The ``hotmess`` command: ``app`` and its options in :mod:`.app`, each command group in its own module."""

from hotmess.cli import (  # noqa: F401  (importing registers the commands)
    analyze,
    demo,
    export,
    goals,
    imports,
    overtime,
    platforms,
    repeat,
    report,
    runs,
    serve,
    tasks,
)
from hotmess.cli.app import app, main

__all__ = ["app", "main"]
