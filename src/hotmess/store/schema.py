"""The SQLite schema, its version, and the migrations from every older version.

Runs are keyed by ``run_id``; the (task_id, instance) pair is first-class and indexed, so
repeated trials of one task never collapse into one row on read.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3
APPLICATION = "hotmess"

# Version 1 is kept verbatim: the migration test builds a v1 database from it.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    kind TEXT,
    start_ns INTEGER,
    end_ns INTEGER,
    status_code TEXT,
    status_message TEXT,
    attributes TEXT,
    events TEXT,
    links TEXT,
    resource TEXT,
    scope TEXT,
    PRIMARY KEY (trace_id, span_id)
);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    agent TEXT,
    instance TEXT,
    source TEXT NOT NULL DEFAULT 'trace',
    status TEXT NOT NULL CHECK (status IN ('ok', 'error', 'incomplete')),
    start_ns INTEGER,
    end_ns INTEGER,
    outcome TEXT,
    success INTEGER,
    reference TEXT,
    score REAL,
    error TEXT,
    n_steps INTEGER NOT NULL DEFAULT 0,
    n_tool_calls INTEGER NOT NULL DEFAULT 0,
    n_llm_calls INTEGER NOT NULL DEFAULT 0,
    n_errors INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    attributes TEXT
);
CREATE INDEX runs_task ON runs (task_id, instance);
CREATE TABLE steps (
    run_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    step_index INTEGER NOT NULL,
    depth INTEGER NOT NULL DEFAULT 1,
    kind TEXT NOT NULL,
    name TEXT,
    tool TEXT,
    input TEXT,
    output TEXT,
    goal TEXT,
    error TEXT,
    start_ns INTEGER,
    end_ns INTEGER,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    model TEXT,
    PRIMARY KEY (run_id, span_id)
);
CREATE INDEX steps_run ON steps (run_id, step_index);
"""


def _script(conn: sqlite3.Connection, sql: str) -> None:
    # Statement by statement: executescript() would commit the caller's transaction.
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """v2: runs by agent and by start time (drift windows, --by agent), and the import log."""
    _script(
        conn,
        """
        CREATE INDEX IF NOT EXISTS runs_agent ON runs (agent, task_id);
        CREATE INDEX IF NOT EXISTS runs_start ON runs (start_ns);
        CREATE TABLE IF NOT EXISTS imports (
            source TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            imported_ns INTEGER NOT NULL,
            n_runs INTEGER NOT NULL,
            n_new INTEGER NOT NULL
        );
        """
    )


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    """v3: tasks inferred from the requests (``hotmess tasks infer``), beside the recorded task id,
    never over it; one row per inferred task with what ``hotmess tasks`` lists."""
    _script(
        conn,
        """
        CREATE TABLE IF NOT EXISTS inferred_tasks (
            run_id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS inferred_tasks_task ON inferred_tasks (task_id);
        CREATE TABLE IF NOT EXISTS inferred_task_groups (
            task_id TEXT PRIMARY KEY,
            n_runs INTEGER NOT NULL,
            n_distinct INTEGER NOT NULL,
            example TEXT,
            tightness REAL,
            method TEXT NOT NULL,
            threshold REAL NOT NULL,
            inferred_ns INTEGER NOT NULL
        );
        """
    )


#: MIGRATIONS[v] upgrades a database at version v to v + 1.
MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3}


def create(conn: sqlite3.Connection) -> None:
    _script(conn, SCHEMA_V1)
    conn.execute("INSERT INTO meta VALUES ('application', ?)", (APPLICATION,))
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    migrate(conn, 1)


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Apply every migration from ``version`` up, each in the caller's transaction."""
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](conn)
        version += 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
