"""The Database verbs that import from tracing platforms (MLflow, LangSmith, Langfuse, Phoenix):
from their files or their servers, in one transaction, resumable."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotmess.errors import HotmessError
from hotmess.progress import Progress

from .results import ImportReport
from .sources import check_exists, check_source

__all__ = ["PlatformImports"]


class PlatformImports:
    """``import_mlflow``, ``import_langsmith``, ``import_langfuse``, ``import_phoenix``: part of
    :class:`hotmess.api.Database` (which gives ``conn`` and ``path``)."""

    conn: sqlite3.Connection
    path: str


    def import_mlflow(
        self,
        source: str | os.PathLike[str],
        *,
        experiments: list[str] | None = None,
        since: Any = None,
        until: Any = None,
        task_attr: str = "hotmess.task.id",
        agent: str | None = None,
        redact: bool = True,
        max_chars: int = 8192,
        page_size: int = 100,
        resume: bool = False,
        success_key: str | None = None,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import MLflow traces (``hotmess import mlflow``) in one transaction: from a tracking
        store (a tracking URI such as ``sqlite:///mlruns.db``, a directory, or the SQLite file;
        read with MLflow's client, ``hotmess[mlflow]``), or from a file of ``Trace.to_json()``
        traces. One run per trace; traces stored before are left as they are; ``since`` /
        ``until`` bound the request time (of a file's traces, their root's start). See
        :mod:`hotmess.integrations.mlflow_traces`. ``resume`` (a store only, without ``since``):
        ask the store only for traces from the newest one an earlier import read from it on.
        Success: a ``hotmess.success`` tag, else the feedback assessment ``success_key`` names."""
        from hotmess.integrations import mlflow_traces as m

        if agent is not None and not agent.strip():
            raise HotmessError("agent must not be empty")
        if resume and (since is not None or not m.is_tracking_uri(source)):
            raise HotmessError("resume continues reading a tracking store; it takes no since, and no file")
        since = self._resumed(since, resume, lambda conn: m.newest_stored(conn, source))
        if m.is_tracking_uri(source):
            batch = m.read_mlflow_store(source, experiments=experiments, since=since, until=until,
                                        task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars,
                                        page_size=page_size, success_key=success_key)
        else:
            if experiments:
                raise HotmessError("experiments apply to a tracking store, not a file of traces")
            check_exists(source)
            batch = m.parse_mlflow_file(source, task_attr=task_attr, agent=agent, redact=redact,
                                        max_chars=max_chars, progress=progress, since=since, until=until,
                                        success_key=success_key)
        return self._platform_report(batch, progress)

    def _resumed(self, since: Any, resume: bool, newest: Callable[[sqlite3.Connection], Any]) -> Any:
        """Where an import reads from: with ``resume``, the high-water mark ``newest(conn)`` of
        what an earlier import stored (nothing stored yet when the database does not exist:
        ``since``, None); otherwise ``since``."""
        return newest(self.conn) if resume and Path(self.path).exists() else since

    def _platform_report(self, batch: Any, progress: Progress | None) -> ImportReport:
        """Store a tracing platform's batch (nothing, and no database created, when it holds no
        run) and report it."""
        from hotmess.integrations.platform_traces import check_batch, insert_batch

        check_batch(batch)
        result = insert_batch(self.conn, batch, progress=progress)
        details = batch.to_dict()
        return ImportReport(result=result, batch=batch, extra={
            "records": batch.records, "skipped": batch.skipped, "errors": details["errors"][:5],
            "duplicates": batch.duplicates, "hashed_task_ids": batch.hashed_task_ids,
        })

    def import_langsmith(
        self,
        file: str | os.PathLike[str] | None = None,
        *,
        project: str | None = None,
        task_attr: str = "hotmess.task.id",
        agent: str | None = None,
        redact: bool = True,
        max_chars: int = 8192,
        since: Any = None,
        until: Any = None,
        resume: bool = False,
        success_key: str | None = None,
        endpoint: str | None = None,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import LangSmith runs (``hotmess import langsmith``) in one transaction: a file of
        serialised ``RunTree`` / ``Run`` objects (JSON lines or a list), or a ``project`` on a
        LangSmith server (``LANGSMITH_ENDPOINT`` / ``LANGSMITH_API_KEY``, read with the official
        client, ``hotmess[langsmith]``). One run per trace, steps from its child runs; only
        traces starting in ``[since, until)`` when given; success from the root's feedback
        named ``success_key``. ``resume`` (a project only, without ``since``): read only from
        the newest run an earlier import read from that project on. See
        :mod:`hotmess.integrations.langsmith_runs`."""
        from hotmess.integrations import langsmith_runs as m
        from hotmess.integrations.platform_traces import newest_stored

        check_source(file, project, "project", agent, since, resume)
        if project is None:
            batch = m.parse_langsmith_file(file, task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars,
                                           progress=progress, since=since, until=until, success_key=success_key)
        else:
            since = self._resumed(since, resume, lambda conn: newest_stored(
                conn, m.SOURCE, m.SERVER_ATTR, m.server_label(project, endpoint)))
            batch = m.read_langsmith_server(project, since=since, until=until, endpoint=endpoint,
                                            task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars,
                                            success_key=success_key)
        return self._platform_report(batch, progress)

    def import_langfuse(
        self,
        file: str | os.PathLike[str] | None = None,
        *,
        host: str | None = None,
        task_attr: str = "hotmess.task.id",
        agent: str | None = None,
        redact: bool = True,
        max_chars: int = 8192,
        since: Any = None,
        until: Any = None,
        resume: bool = False,
        success_key: str | None = None,
        page_size: int = 50,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import Langfuse traces (``hotmess import langfuse``) in one transaction: a file of
        observations, pages of them or traces with their observations (the public API's JSON),
        or a Langfuse server (``host``, else ``LANGFUSE_HOST``; keys ``LANGFUSE_PUBLIC_KEY`` /
        ``LANGFUSE_SECRET_KEY``) when no file is given. One run per trace; only traces starting
        in ``[since, until)`` when given; success from the trace's score named ``success_key``.
        ``resume`` (a server only, without ``since``): read only from the newest trace an
        earlier import read from that server on. See :mod:`hotmess.integrations.langfuse_traces`."""
        from hotmess.integrations import langfuse_traces as m
        from hotmess.integrations.platform_traces import newest_stored

        server = host is not None or file is None
        check_source(file, "server" if server else None, "host", agent, since, resume)
        if not server:
            batch = m.parse_langfuse_file(file, task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars,
                                          progress=progress, since=since, until=until, success_key=success_key)
        else:
            since = self._resumed(since, resume, lambda conn: newest_stored(
                conn, m.SOURCE, m.SERVER_ATTR, m.host_of(host)))
            batch = m.read_langfuse_server(host, since=since, until=until, task_attr=task_attr, agent=agent,
                                           redact=redact, max_chars=max_chars, success_key=success_key,
                                           page_size=page_size)
        return self._platform_report(batch, progress)

    def import_phoenix(
        self,
        source: str | os.PathLike[str] | None = None,
        *,
        endpoint: str | None = None,
        project: str = "default",
        since: Any = None,
        until: Any = None,
        resume: bool = False,
        task_attr: str = "hotmess.task.id",
        agent: str | None = None,
        redact: bool = True,
        max_chars: int = 8192,
        page_size: int = 1000,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import Arize Phoenix spans (``hotmess import phoenix``) in one transaction: a file
        (``source``: the spans dataframe as Parquet or JSON lines, or REST spans pages) or a
        server (``endpoint``: ``GET /v1/projects/{project}/spans`` read with its cursor, the key
        from ``PHOENIX_API_KEY``). One run per trace; traces stored before are left as they are;
        only traces whose root starts in ``[since, until)`` when given. ``resume`` (a server
        only, without ``since``): ask only for spans from the newest run an earlier import read
        from that project on. See :mod:`hotmess.integrations.phoenix_spans`."""
        from hotmess.integrations import phoenix_spans as p

        check_source(source, endpoint, "Phoenix server endpoint", agent, since, resume)
        if endpoint is not None:
            p.check_endpoint(endpoint)
            since = self._resumed(since, resume, lambda conn: p.newest_stored(conn, endpoint, project))
            batch = p.read_phoenix_server(endpoint, project=project, since=since, until=until, task_attr=task_attr,
                                          agent=agent, redact=redact, max_chars=max_chars, page_size=page_size)
        else:
            batch = p.parse_phoenix_file(source, task_attr=task_attr, agent=agent, redact=redact,
                                         max_chars=max_chars, progress=progress, since=since, until=until)
        return self._platform_report(batch, progress)
