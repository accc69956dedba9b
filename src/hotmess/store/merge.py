"""Writing an import of traces: new runs, and runs stored before merged with new spans of theirs.

One trace is one run (``run_id`` = the trace id), and a collector spreads a trace over many
files, so an import may bring spans of a run that an earlier import stored. :func:`write_traces`
writes an import's rows inside the caller's transaction
(:func:`hotmess.store.writer.import_transaction`); each trace already stored is handled so:

- its stored spans are read back from the ``spans`` table; the import's spans of it that are
  new (a span id not stored, or the ended copy of a span stored unended) are its fresh spans.
  With none, the trace is a duplicate and nothing changes (importing a file twice adds nothing);
- a run of the importing source with spans stored is merged: its stored spans and the fresh
  ones (an ended copy replacing an unended one; otherwise a span keeps its stored copy) are
  mapped again as one trace by the importer's ``rebuild``, and its run, steps and spans rows
  replaced, so the run is the one importing all its spans at once makes;
- a run of another source (recorded live, ``trace``; ``tau-bench``), or one with no spans
  stored, is never rewritten: its fresh spans are left out and counted.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hotmess.progress import Progress
from hotmess.store.rows import SPAN_END, SPAN_ID, record_from_row
from hotmess.store.writer import delete_runs, stored_spans, write_rows
from hotmess.vocab.records import SpanRecord

__all__ = ["Rebuild", "Written", "write_traces"]

#: How an importer maps one trace's spans to its ``runs`` row and ``steps`` rows.
Rebuild = Callable[[list[SpanRecord]], tuple[dict[str, Any], list[dict[str, Any]]]]


@dataclass(frozen=True)
class Written:
    """What :func:`write_traces` wrote: ``runs`` and ``steps`` rows (new runs and rebuilt
    ones), the stored runs ``merged`` with new spans, and the new spans ``left_out`` because
    their trace is a run that this import does not rewrite (``left_out_runs``: source → runs)."""

    runs: int
    steps: int
    merged: tuple[str, ...] = ()
    left_out_spans: int = 0
    left_out_runs: dict[str, int] = field(default_factory=dict)

    @property
    def new(self) -> int:
        """Runs that were not stored before."""
        return self.runs - len(self.merged)


def write_traces(
    conn: sqlite3.Connection,
    runs: Sequence[dict[str, Any]],
    steps: Sequence[dict[str, Any]],
    spans: Sequence[tuple],
    *,
    stored: Mapping[str, str],
    source: str,
    rebuild: Rebuild,
    more_spans: Mapping[str, list[tuple]] | None = None,
    progress: Progress | None = None,
) -> Written:
    """Write an import's ``runs``, ``steps`` and ``spans`` rows (one run per trace, its run id
    the trace id), merging each trace already stored, as the module docstring says.

    ``stored`` maps the import's trace ids already stored as runs to their source
    (:func:`hotmess.store.writer.stored_runs`); ``source`` is this import's. ``more_spans``
    holds ``spans`` rows of stored traces that are in none of ``runs`` (an importer leaves out a
    trace that is no agent's; its spans may still belong to a stored run). Runs in ``runs``
    that are stored are replaced by their merge, or kept as stored. ``progress`` is told the
    steps and spans stored.
    """
    merged: list[str] = []
    left_out_spans, left_out_runs = 0, Counter[str]()
    if stored:
        incoming: dict[str, list[tuple]] = {t: [] for t in stored}
        for row in spans:
            if row[0] in incoming:
                incoming[row[0]].append(row)
        for trace_id, rows in (more_spans or {}).items():
            incoming[trace_id].extend(rows)
        existing = stored_spans(conn, list(stored))
        rebuilt_runs, rebuilt_steps, rebuilt_spans = [], [], []
        for trace_id, stored_source in stored.items():
            old = {row[SPAN_ID]: row for row in existing[trace_id]}
            fresh = [row for row in incoming[trace_id]
                     if (o := old.get(row[SPAN_ID])) is None or (o[SPAN_END] is None and row[SPAN_END] is not None)]
            if not fresh:
                continue  # a duplicate: every span is stored already
            if stored_source != source or not old:
                left_out_spans += len(fresh)
                left_out_runs[stored_source] += 1
                continue
            old.update((row[SPAN_ID], row) for row in fresh)
            run, run_steps = rebuild([record_from_row(r) for r in old.values()])
            rebuilt_runs.append(run)
            rebuilt_steps.extend(run_steps)
            rebuilt_spans.extend(sorted(old.values(), key=lambda r: r[SPAN_ID]))
            merged.append(trace_id)
        runs = [r for r in runs if r["run_id"] not in stored] + rebuilt_runs
        steps = [s for s in steps if s["run_id"] not in stored] + rebuilt_steps
        spans = [s for s in spans if s[0] not in stored] + rebuilt_spans
        delete_runs(conn, merged)
    write_rows(conn, runs, steps, spans, progress=progress)
    return Written(len(runs), len(steps), tuple(merged), left_out_spans, dict(left_out_runs))
