"""The vocabulary every layer shares, and nothing else: attribute names (:mod:`.attributes`),
a span as plain data (:mod:`.records`), turning values into bounded, scrubbed text
(:mod:`.serialize`), where a run's instruction and first user message are (:mod:`.instructions`),
and what third-party instrumentors put where (:mod:`.conventions`).

It imports no other hotmess package but :mod:`hotmess.redact`, so the tracer, the store and the
integrations can all build on it without importing each other.
"""
