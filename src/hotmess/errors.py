"""Errors hotmess raises for a user to read: each says what went wrong, where, and what to do."""

from __future__ import annotations


class HotmessError(Exception):
    """Base class: the CLI prints these as one line without a traceback."""


class InputError(HotmessError, ValueError):
    """A file being imported is malformed. Names the file and the record: ``record`` is an index
    (``7``, ``"7 (task 3 trial 1)"``: "file.json, record 7 ...") or a label that says what it
    counts (``"line 3"``, ``"line 3 item 0"``: "file.jsonl, line 3")."""

    def __init__(self, path: str, record: str | int | None, message: str):
        self.path = str(path)
        self.record = record
        self.message = message = _shown(message)
        if record is None:
            where = self.path
        elif str(record)[:1].isalpha():
            where = f"{self.path}, {record}"
        else:
            where = f"{self.path}, record {record}"
        super().__init__(f"{where}: {message}")


#: The longest message an input error quotes: a malformed value may be megabytes.
_MAX_MESSAGE = 500


def _shown(message: str) -> str:
    """A message that quotes the input: secrets in it redacted (a bad line's value may be an API
    key), and cut, as stored values are; errors reach terminals, logs and ``--json``."""
    from hotmess.redact import Redactor

    message = Redactor()(str(message))
    return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + f"…[{len(message) - _MAX_MESSAGE} more chars]"


class StoreError(HotmessError):
    """The database is missing, not a hotmess database, or from a newer hotmess."""


class AnalysisError(HotmessError, ValueError):
    """The data or a parameter cannot give the figure asked for: an unknown option value, a
    ``by`` that names nothing, too few runs or windows. Raised by the analyzers (pure functions),
    so a library user gets it as a ``ValueError``; the CLI prints it as one line. Any other
    exception out of an analyzer is a bug, and is reported as one."""


class ParameterError(HotmessError, ValueError):
    """A parameter outside what it can be (a threshold that is not a number, an empty name),
    named in the message."""
