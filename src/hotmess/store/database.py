"""Opening a hotmess SQLite database: WAL, a busy timeout, schema creation and upgrades."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from hotmess.errors import StoreError
from hotmess.store import schema

BUSY_TIMEOUT_MS = 30_000


def default_path() -> str:
    """``$HOTMESS_DB``, else ``./hotmess.db``."""
    return os.environ.get("HOTMESS_DB") or "hotmess.db"


def connect(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> sqlite3.Connection:
    """Open (and create or upgrade) a hotmess database.

    A file that exists but is not a hotmess database is refused and left untouched;
    with ``create=False`` a missing file, an empty file or a SQLite database without tables
    is an error instead of a new database. (With ``create=True`` an empty file, such as
    ``tempfile.mkstemp`` makes, becomes a new database: it holds nothing to lose.)
    """
    path = Path(path if path is not None else default_path())
    if not path.exists() and not create:
        raise StoreError(f"{path}: no such database (record runs with @hotmess.trace or `hotmess import` first)")
    if path.exists() and path.is_dir():
        raise StoreError(f"{path}: is a directory, not a database file")
    existing = path.exists() and path.stat().st_size > 0
    if path.exists() and not existing and not create:
        raise StoreError(f"{path}: an empty file, not a hotmess database")
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.OperationalError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StoreError(f"{path}: cannot open or create the database here ({reason})") from None
    try:
        if existing:
            # SQLite reads the header itself: a plain open() and close() of the file here would
            # drop every POSIX lock this process holds on it (a recorder's, a server's), and
            # another process could then delete the WAL under them.
            try:
                conn.execute("PRAGMA schema_version").fetchone()
            except sqlite3.DatabaseError:
                raise StoreError(f"{path}: not a SQLite database; refusing to touch it") from None
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _ensure_schema(conn, path, create)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_schema(conn: sqlite3.Connection, path: Path, create: bool = True) -> None:
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable SQLite database ({exc})") from None
    if not tables and not create:
        raise StoreError(f"{path}: a SQLite database with no tables, not a hotmess database")
    if not tables:
        with transaction(conn):
            # Another process may have created it between our look and the lock.
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                schema.create(conn)
        return
    if "meta" not in tables:
        raise StoreError(f"{path}: a SQLite database but not a hotmess one (no meta table); refusing to touch it")
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        version = int(meta.get("schema_version", "0"))
    except (sqlite3.DatabaseError, ValueError, TypeError):  # someone else's meta table
        meta, version = {}, 0
    if meta.get("application") != schema.APPLICATION:
        raise StoreError(f"{path}: a SQLite database but not a hotmess one; refusing to touch it")
    if version > schema.SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by a newer hotmess (schema {version}, this one knows {schema.SCHEMA_VERSION}); upgrade hotmess"
        )
    if version < schema.SCHEMA_VERSION:
        with transaction(conn):
            current = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            schema.migrate(conn, current)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error: a batch lands whole or not at all."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite has already rolled back after some errors (SQLITE_FULL, an I/O error): a
        # second ROLLBACK would fail and hide the error that matters.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
