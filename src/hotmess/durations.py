"""How long something took, as people read it: ``412µs``, ``3.4ms``, ``2.31s``, ``4m12s``.

One form for the terminal and the web UI. Agents' steps range from microseconds (a cached tool)
to minutes (a slow model), so a fixed unit shows most of them as 0.000 s or as a long number.
"""

from __future__ import annotations

__all__ = ["duration_text", "seconds_text"]


def seconds_text(seconds: float) -> str:
    """``seconds`` in the largest unit that keeps it above 1 (µs, ms, s, then minutes)."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def duration_text(start_ns: int | None, end_ns: int | None) -> str:
    """The time from ``start_ns`` to ``end_ns`` (nanoseconds); "" when either is unknown."""
    if not start_ns or not end_ns:
        return ""
    return seconds_text((end_ns - start_ns) / 1e9)
