"""Errors hotmess raises for a user to read: each says what went wrong, where, and what to do."""

from __future__ import annotations


class HotmessError(Exception):
    """Base class: the CLI prints these as one line without a traceback."""


class InputError(HotmessError, ValueError):
    """A file being imported is malformed. Names the file and the record (index or line)."""

    def __init__(self, path: str, record: str | int | None, message: str):
        self.path = str(path)
        self.record = record
        self.message = message
        where = self.path if record is None else f"{self.path}, record {record}"
        super().__init__(f"{where}: {message}")


class StoreError(HotmessError):
    """The database is missing, not a hotmess database, or from a newer hotmess."""
