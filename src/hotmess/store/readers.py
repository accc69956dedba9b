"""Readers: runs and steps out of SQLite as columnar tables for the analyzers and the CLI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from hotmess.progress import Progress, counted
from hotmess.store.tasks import INFERRED_TASK_SQL, task_expression
from hotmess.tables import ANALYSIS_STEP_COLUMNS, RUN_COLUMNS, STEP_COLUMNS, Table
from hotmess.vocab.instructions import step_instruction, stored_run_instruction


def _where(clauses: list[tuple[str, Any]]) -> tuple[str, list[Any]]:
    parts, params = [], []
    for sql, value in clauses:
        if value is None:
            continue
        parts.append(sql)
        params.extend(value if isinstance(value, list | tuple) else [value])
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


def _checked(columns: Sequence[str] | None, allowed: dict[str, str]) -> list[str]:
    """Column names go into SQL text, so only known ones are accepted."""
    names = list(columns or allowed)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; known: {', '.join(allowed)}")
    return names


def _table(cursor: Iterable[tuple], columns: dict[str, str], names: Sequence[str]) -> Table:
    data = list(zip(*cursor, strict=True)) or [()] * len(names)
    return Table({n: data[i] for i, n in enumerate(names)}, {n: columns[n] for n in names})


def _read(
    conn: sqlite3.Connection, select: str, rest: str, order: str, params: list[Any],
    columns: dict[str, str], names: Sequence[str], progress: Progress | None, unit: str,
) -> Table:
    """``SELECT {select}{rest}{order}`` as a table; with ``progress``, the rows are counted first
    (``SELECT count(*){rest}``) and reported as they are read."""
    total = None if progress is None else conn.execute(f"SELECT count(*){rest}", params).fetchone()[0]
    cursor = conn.execute(f"SELECT {select}{rest}{order}", params)
    return _table(counted(cursor, progress, unit, total, every=4096), columns, names)


#: Columns read_runs can add to the stored ones: the task inferred from the run's request.
DERIVED_RUN_COLUMNS: dict[str, str] = {"inferred_task_id": "O"}


def read_runs(
    conn: sqlite3.Connection,
    *,
    task_id: str | None = None,
    agent: str | None = None,
    run_ids: Sequence[str] | None = None,
    include_incomplete: bool = True,
    columns: Sequence[str] | None = None,
    tasks: str = "recorded",
    progress: Progress | None = None,
) -> Table:
    """The runs table (``RUN_COLUMNS``), ordered by task, then start time, then instance.

    ``tasks="inferred"`` makes ``task_id`` the task inferred from each run's request by
    ``hotmess tasks infer`` (a run without one keeps its recorded id), for the filter and the
    order too; ``columns`` may add ``inferred_task_id``.
    """
    allowed = {**RUN_COLUMNS, **DERIVED_RUN_COLUMNS}
    names = _checked(columns, RUN_COLUMNS) if columns is None else _checked(columns, allowed)
    task = task_expression(tasks)
    sql = {"task_id": f"{task} AS task_id", "inferred_task_id": f"{INFERRED_TASK_SQL} AS inferred_task_id"}
    where, params = _where(
        [
            (f"{task} = ?", task_id),
            ("agent = ?", agent),
            ("status != 'incomplete'", None if include_incomplete else []),
        ]
    )
    if run_ids is not None:
        # One bound parameter however many ids (no chunks, so one ORDER BY over all of them).
        where = (where + " AND " if where else " WHERE ") + "run_id IN (SELECT value FROM json_each(?))"
        params = params + [json.dumps(list(run_ids))]
    order = f" ORDER BY {task}, start_ns, instance, run_id"
    select = ", ".join(sql.get(n, n) for n in names)
    return _read(conn, select, f" FROM runs{where}", order, params, allowed, names,
                 progress, "runs read")


def read_steps(
    conn: sqlite3.Connection,
    *,
    run_ids: Sequence[str] | None = None,
    task_id: str | None = None,
    kinds: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    tasks: str = "recorded",
    progress: Progress | None = None,
) -> Table:
    """The steps table (``STEP_COLUMNS``), ordered by run, then step order (``task_id`` filters
    on the recorded or the inferred task, as ``tasks`` says)."""
    names = _checked(columns, STEP_COLUMNS)
    select = ", ".join(f"s.{n}" for n in names)
    clauses: list[tuple[str, Any]] = [
        (f"{task_expression(tasks, 'r')} = ?", task_id),
        (f"s.kind IN ({', '.join('?' * len(kinds))})" if kinds else "", list(kinds) if kinds else None),
    ]
    if run_ids is not None:
        clauses.append(("s.run_id IN (SELECT value FROM json_each(?))", json.dumps(list(run_ids))))
    order = " ORDER BY s.run_id, s.step_index, s.start_ns"
    where, params = _where(clauses)
    return _read(conn, select, " FROM steps s JOIN runs r ON r.run_id = s.run_id" + where, order, params,
                 STEP_COLUMNS, names, progress, "steps read")


def find_run(conn: sqlite3.Connection, run_id: str) -> str | None:
    """The full run id for a run id or a unique prefix of one (as git takes commit ids)."""
    exact = conn.execute("SELECT run_id FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if exact:
        return exact[0]
    matches = conn.execute(
        "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? LIMIT 2", (run_id, run_id + "\uffff")
    ).fetchall()
    return matches[0][0] if len(matches) == 1 else None


def read_spans(conn: sqlite3.Connection, trace_id: str) -> list[dict[str, Any]]:
    cur = conn.execute("SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns", (trace_id,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def count_runs(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM runs").fetchone()[0]


def read_for_analysis(
    conn: sqlite3.Connection, *, task_id: str | None = None, with_steps: bool = True,
    tasks: str = "recorded", progress: Progress | None = None,
) -> tuple[Table, Table | None]:
    """The runs, and their tool steps with only the columns analyzers use (memory at 1M steps)."""
    runs = read_runs(conn, task_id=task_id, tasks=tasks, progress=progress)
    steps = (
        read_steps(conn, task_id=task_id, kinds=("tool",), columns=ANALYSIS_STEP_COLUMNS,
                   tasks=tasks, progress=progress)
        if with_steps
        else None
    )
    return runs, steps


#: The step columns the goal analyzers read (``hotmess.analyzers.goals``).
GOAL_STEP_COLUMNS = ("run_id", "step_index", "kind", "name", "tool", "input", "output", "goal")


def read_goal_steps(
    conn: sqlite3.Connection, *, task_id: str | None = None, tasks: str = "recorded",
    progress: Progress | None = None,
) -> Table:
    """The steps that may carry a goal (goal records, tool calls, LLM steps, any step with a
    goal), ordered by run then step order; ``input`` only for tool calls and ``output`` only
    for LLM steps, so tool results are never loaded."""
    where, params = _where([(f"{task_expression(tasks, 'r')} = ?", task_id)])
    where = (where + " AND " if where else " WHERE ") + (
        "(s.kind IN ('goal', 'tool', 'llm') OR s.goal IS NOT NULL)"
    )
    join = " JOIN runs r ON r.run_id = s.run_id" if task_id is not None else ""
    select = (
        "s.run_id, s.step_index, s.kind, s.name, s.tool,"
        " CASE WHEN s.kind = 'tool' THEN s.input END,"
        " CASE WHEN s.kind = 'llm' THEN s.output END, s.goal"
    )
    order = " ORDER BY s.run_id, s.step_index, s.start_ns"
    return _read(conn, select, f" FROM steps s{join}{where}", order, params, STEP_COLUMNS,
                 GOAL_STEP_COLUMNS, progress, "steps read")


def read_instructions(
    conn: sqlite3.Connection, *, task_id: str | None = None, tasks: str = "recorded"
) -> dict[str, str]:
    """Each run's instruction, by run id (runs without one are not keys): from the run's root
    attributes, else its first LLM step's input (the rules are in
    :mod:`hotmess.vocab.instructions`). Only the first LLM step of a run without a root
    instruction is read."""
    where, params = _where([(f"{task_expression(tasks)} = ?", task_id)])
    found: dict[str, str] = {}
    missing: list[str] = []
    for run_id, attributes in conn.execute(f"SELECT run_id, attributes FROM runs{where}", params):
        text = stored_run_instruction(attributes)
        if text is None:
            missing.append(run_id)
        else:
            found[run_id] = text
    if missing:
        first_llm = (
            "SELECT s.run_id, s.input FROM steps s WHERE s.rowid IN ("
            " SELECT (SELECT f.rowid FROM steps f WHERE f.run_id = m.value AND f.kind = 'llm'"
            "  AND f.input IS NOT NULL ORDER BY f.step_index, f.start_ns LIMIT 1)"
            " FROM json_each(?) m)"
        )
        for run_id, step_input in conn.execute(first_llm, (json.dumps(missing),)):
            text = step_instruction(step_input)
            if text is not None:
                found[run_id] = text
    return found


#: The columns of a runs listing (:func:`read_runs_page`).
PAGE_COLUMNS = ("run_id", "task_id", "agent", "instance", "status", "success", "n_steps", "start_ns", "end_ns",
                "outcome", "error")


#: Runs whose steps one page of a step search looks through at most (see :func:`read_runs_page`).
STEP_SCAN_RUNS = 5000


def read_runs_page(
    conn: sqlite3.Connection,
    *,
    agent: str | None = None,
    task_id: str | None = None,
    status: str | None = None,
    search: str | None = None,
    step_search: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    run_ids: Sequence[str] | None = None,
    limit: int = 50,
    after: tuple[int | None, str] | None = None,
    scan: int = STEP_SCAN_RUNS,
) -> tuple[list[dict[str, Any]], tuple[int | None, str] | None]:
    """One page of runs, newest first (the web UI's runs table), and where the next page starts.

    Filtered by agent, task, status, start time (``since_ns <= start_ns < until_ns``) and a set
    of run ids (an outcome cluster's); ``search`` a case-insensitive substring of the outcome or
    the error; ``step_search`` one of any step's input or output. ``after`` is the
    ``(start_ns, run_id)`` of the last run of the page before (keyset paging: a page far down is
    read from the ``runs_start`` index as fast as the first, no OFFSET skipping).

    The step search is bounded, not indexed (substring search has no B-tree index, and an FTS
    table would double the store): a page looks through the steps of at most ``scan`` runs that
    pass the other filters, newest first, each through the ``steps_run`` index, so one request
    reads at most ``scan`` runs' steps however many steps there are. When that budget runs out
    before the page is full, the page is shorter and the cursor returned continues the scan.
    The cursor is ``None`` on the last page.
    """
    def like(text: str) -> str:
        return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

    cursor = None
    if after is not None:  # NULL start times sort last (DESC)
        start, run_id = after
        cursor = (("start_ns IS NULL AND run_id > ?", [run_id]) if start is None else
                  ("(start_ns < ? OR (start_ns = ? AND run_id > ?) OR start_ns IS NULL)", [start, start, run_id]))
    where, params = _where([
        ("agent = ?", agent), ("task_id = ?", task_id), ("status = ?", status),
        ("(outcome LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\')", None if not search else [like(search)] * 2),
        ("start_ns >= ?", since_ns), ("start_ns < ?", until_ns),
        ("run_id IN (SELECT value FROM json_each(?))", None if run_ids is None else json.dumps(list(run_ids))),
        *([cursor] if cursor else []),
    ])
    order = "ORDER BY start_ns DESC, run_id"
    if not step_search:
        sql = f"SELECT {', '.join(PAGE_COLUMNS)} FROM runs{where} {order} LIMIT ?"
        rows = [dict(zip(PAGE_COLUMNS, r, strict=True)) for r in conn.execute(sql, [*params, int(limit) + 1])]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (_key(rows[-1]) if more and rows else None)
    scanned = conn.execute(f"SELECT run_id, start_ns FROM runs{where} {order} LIMIT ?",
                           [*params, int(scan) + 1]).fetchall()
    budget_left = len(scanned) > scan
    scanned = scanned[:scan]
    found = f"""SELECT {', '.join(PAGE_COLUMNS)} FROM runs
        WHERE run_id IN (SELECT value FROM json_each(?)) AND EXISTS (
          SELECT 1 FROM steps s WHERE s.run_id = runs.run_id
          AND (s.input LIKE ? ESCAPE '\\' OR s.output LIKE ? ESCAPE '\\')) {order} LIMIT ?"""
    text = like(step_search)
    rows = [dict(zip(PAGE_COLUMNS, r, strict=True)) for r in conn.execute(
        found, [json.dumps([r[0] for r in scanned]), text, text, int(limit) + 1])]
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, _key(rows[-1])
    if budget_left:  # the page is not full: the next one goes on from the last run looked at
        return rows, (scanned[-1][1], scanned[-1][0])
    return rows, None


def _key(row: dict[str, Any]) -> tuple[int | None, str]:
    return row["start_ns"], row["run_id"]


def read_agents(conn: sqlite3.Connection) -> list[str]:
    """The agents that have runs, sorted: one seek in the ``runs_agent`` index per agent (a
    DISTINCT would read every entry of the index, ~50 ms at a million runs)."""
    return [r[0] for r in conn.execute(
        "WITH RECURSIVE a(agent) AS (SELECT min(agent) FROM runs UNION ALL "
        "SELECT (SELECT min(agent) FROM runs WHERE agent > a.agent) FROM a WHERE a.agent IS NOT NULL) "
        "SELECT agent FROM a WHERE agent IS NOT NULL")]


#: The widths of the buckets :func:`read_runs_over_time` counts runs in.
TIME_BUCKETS = {"hour": 3600 * 10**9, "day": 86400 * 10**9, "week": 7 * 86400 * 10**9}


def read_runs_over_time(conn: sqlite3.Connection, unit: str | None = None) -> tuple[str, dict[int, dict[str, int]]]:
    """Runs started per hour, day or week (UTC; weeks from Thursday 1970-01-01) by status, in one
    grouped pass over the runs table: ``(unit, {bucket index: {status: runs}})``. ``unit`` None:
    hours when the runs span under three days, days under 200 days, else weeks."""
    low, high = conn.execute("SELECT min(start_ns), max(start_ns) FROM runs").fetchone()
    if low is None:
        return unit or "day", {}
    day = TIME_BUCKETS["day"]
    unit = unit or ("hour" if high - low < 3 * day else "day" if high - low < 200 * day else "week")
    counts: dict[int, dict[str, int]] = {}
    for bucket, status, n in conn.execute(
            "SELECT start_ns / ?, status, count(*) FROM runs WHERE start_ns IS NOT NULL GROUP BY 1, 2",
            (TIME_BUCKETS[unit],)):
        counts.setdefault(int(bucket), {})[status] = n
    return unit, counts
