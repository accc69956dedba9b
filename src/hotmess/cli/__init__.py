"""The ``hotmess`` command."""

from hotmess.cli.app import app, main

__all__ = ["app", "main"]
