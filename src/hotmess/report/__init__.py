"""The HTML report: :func:`build_report` turns plain result dicts into one self-contained page.

:mod:`.plots` draws the figures (matplotlib, Agg) as inline SVG; :mod:`.html` lays out the page.
Neither reads a database: ``hotmess report`` reads, analyzes, and hands the results over.
"""

from __future__ import annotations

from .html import build_report

__all__ = ["build_report"]
