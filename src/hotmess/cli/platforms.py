"""``hotmess import mlflow|langsmith|langfuse``: production traces from tracing platforms."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotmess.cli import render
from hotmess.cli.app import DbOption, JsonOption, db_path, import_app, stages
from hotmess.cli.imports import next_steps
from hotmess.errors import HotmessError

TaskAttrOption = Annotated[str, typer.Option(
    "--task-attr", help="Where the task id is: a trace tag or metadata key (task_id, tags.task_id, "
    "metadata.task_id) or a span attribute path (else: a hash of the first user message).")]
AgentOption = Annotated[str | None, typer.Option("--agent", help="Agent name for these runs (default: the root span's name).")]
NoRedactOption = Annotated[bool, typer.Option("--no-redact", help="Store values as they are (default: secrets are redacted, as when tracing).")]
MaxCharsOption = Annotated[int, typer.Option("--max-chars", min=0, help="Cut texts longer than this, as when tracing; 0 keeps them whole.")]
SinceOption = Annotated[str | None, typer.Option("--since", help="Only traces from this time on (ISO date or date-time, UTC; or epoch seconds).")]
UntilOption = Annotated[str | None, typer.Option("--until", help="Only traces before this time.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Read only the traces from the newest one an earlier import read from this server on.")]
SuccessKeyOption = Annotated[str | None, typer.Option(
    "--success-key", help="The feedback or score read as the run's success (default: the first of success, "
    "correctness, correct, pass, passed; boolean or 0-1, success when >= 0.5).")]

_SHOWN_ERRORS = 5


def _check_agent(agent: str | None) -> None:
    if agent is not None and not agent.strip():
        raise typer.BadParameter("must not be empty", param_hint="--agent")


def _print(report, db: Path | None, label: str) -> None:
    result, batch = report.result, report.batch
    render.print_import(result, db_path(db), source=label)
    out = render.console
    if batch.skipped:
        out.print(f"[yellow]{batch.skipped} of {render.plural(batch.records, batch.unit)} malformed and skipped:[/]")
        for error in batch.errors[:_SHOWN_ERRORS]:
            out.print(f"  {render.escape(str(error))}")
        if batch.skipped > _SHOWN_ERRORS:
            out.print(f"  … and {batch.skipped - _SHOWN_ERRORS} more")
    if batch.outside:
        out.print(f"[dim]{render.plural(batch.outside, 'trace')} left out: they start outside --since/--until[/]")
    if batch.duplicates:
        out.print(f"[dim]{render.plural(batch.duplicates, 'trace')} read twice, kept once[/]")
    if batch.hashed_task_ids:
        out.print(f"[dim]{render.plural(batch.hashed_task_ids, 'run')} without a task id: task id = hash of the "
                  "first user message (msg:…); name one with --task-attr[/]")
    render.print_next_steps(next_steps(batch.runs, production=True), db_path(db))


@import_app.command("mlflow")
def import_mlflow_command(
    source: Annotated[str, typer.Argument(
        help="An MLflow tracking URI (sqlite:///mlruns.db, http://127.0.0.1:5000), a tracking directory or "
             "SQLite file, read with MLflow's client; or a file of Trace.to_json() traces (JSON lines or a list).")],
    db: DbOption = None,
    experiment: Annotated[list[str] | None, typer.Option("--experiment", help="Experiment name or id to read (repeatable; default: all).")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Read only the traces from the newest one an earlier import read from this store on.")] = False,
    success_key: SuccessKeyOption = None,
    task_attr: TaskAttrOption = "hotmess.task.id",
    agent: AgentOption = None,
    no_redact: NoRedactOption = False,
    max_chars: MaxCharsOption = 8192,
    as_json: JsonOption = False,
) -> None:
    """Import MLflow traces: one run per trace, steps from its spans (LLM, tool, agent, chain).

    Reads a tracking store page by page (never writing to it) or a file of exported traces,
    in one transaction; traces imported before are left as they are, malformed ones skipped and named.
    """
    import hotmess
    from hotmess.integrations.mlflow_traces import shown_uri

    _check_options(agent, since, until)

    label = shown_uri(source) if "://" in source else Path(source).name
    with stages(f"importing {label}") as progress, hotmess.open(db_path(db), create=True) as store:
        report = store.import_mlflow(source, experiments=experiment or None, since=since, until=until,
                                     resume=resume, success_key=success_key, task_attr=task_attr, agent=agent, redact=not no_redact, max_chars=max_chars,
                                     progress=progress)
    if as_json:
        render.print_json(report.to_json())
        return
    _print(report, db, label)


@import_app.command("langsmith")
def import_langsmith_command(
    file: Annotated[Path | None, typer.Argument(
        help="LangSmith runs as the SDK serialises them (RunTree / Run JSON), one per line or a JSON list "
             "(gzip ok); or none, with --project.")] = None,
    db: DbOption = None,
    project: Annotated[str | None, typer.Option("--project", help="Read this project's runs from the LangSmith server "
                                                "(LANGSMITH_ENDPOINT, LANGSMITH_API_KEY) instead of a file.")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    resume: ResumeOption = False,
    success_key: SuccessKeyOption = None,
    task_attr: TaskAttrOption = "hotmess.task.id",
    agent: AgentOption = None,
    no_redact: NoRedactOption = False,
    max_chars: MaxCharsOption = 8192,
    as_json: JsonOption = False,
) -> None:
    """Import LangSmith runs: one run per trace (trace_id), steps from its child runs (llm, tool, chain).

    From a file, or a project on the server (read page by page, never written to). One transaction;
    traces imported before are left as they are, malformed records skipped and named.
    """
    _import_file("import_langsmith", file, db, server={"project": project}, since=since, until=until,
                 resume=resume, success_key=success_key, task_attr=task_attr, agent=agent,
                 redact=not no_redact, max_chars=max_chars, as_json=as_json)


@import_app.command("langfuse")
def import_langfuse_command(
    file: Annotated[Path | None, typer.Argument(
        help="Langfuse API JSON: observations, pages of them ({\"data\": [...]}) or traces with their "
             "observations; one per line or a JSON list (gzip ok). None: read the server.")] = None,
    db: DbOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Read the Langfuse server at this URL (default "
                                             "LANGFUSE_HOST; keys LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY).")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    resume: ResumeOption = False,
    success_key: SuccessKeyOption = None,
    task_attr: TaskAttrOption = "hotmess.task.id",
    agent: AgentOption = None,
    no_redact: NoRedactOption = False,
    max_chars: MaxCharsOption = 8192,
    as_json: JsonOption = False,
) -> None:
    """Import Langfuse traces: one run per trace, steps from its observations (GENERATION, TOOL, SPAN, ...).

    From a file, or the server (no file: --host or LANGFUSE_HOST; read page by page, never written to).
    One transaction; traces imported before are left as they are, malformed records skipped and named.
    """
    _import_file("import_langfuse", file, db, server={"host": host} if host or file is None else {},
                 since=since, until=until, resume=resume, success_key=success_key, task_attr=task_attr,
                 agent=agent, redact=not no_redact, max_chars=max_chars, as_json=as_json)


def _check_options(agent: str | None, since: str | None, until: str | None) -> None:
    """The options every platform import shares, checked before anything is read."""
    from hotmess.integrations.platform_traces import parse_time

    _check_agent(agent)
    parse_time(since, "--since")
    parse_time(until, "--until")


def _import_file(
    method: str, file: Path | None, db: Path | None, *, server: dict[str, str | None], since: str | None,
    until: str | None, resume: bool, success_key: str | None, task_attr: str, agent: str | None, redact: bool,
    max_chars: int, as_json: bool,
) -> None:
    """``hotmess import langsmith|langfuse [FILE]``: one ``Database`` call, then the summary.
    ``server`` is the option naming a server (``{"project": ...}``), empty for a file."""
    import hotmess

    _check_options(agent, since, until)
    named = {k: v for k, v in server.items() if v is not None}
    if file is not None and named:
        raise HotmessError(f"give a file or --{next(iter(named))}, not both")
    if file is None and not server:
        raise HotmessError("give a file, or --project")
    if file is None and "project" in server and not named:
        raise HotmessError("give a file, or --project NAME to read a LangSmith server")
    if file is not None and not file.exists():  # before the database is created
        raise HotmessError(f"{file}: no such file")
    if resume and (file is not None or since is not None):
        raise HotmessError("--resume continues reading a server; it takes no --since, and no file")
    label = file.name if file is not None else "the server"
    with stages(f"importing {label}") as progress, hotmess.open(db_path(db), create=True) as store:
        report = getattr(store, method)(file, **server, task_attr=task_attr, agent=agent, redact=redact,
                                        max_chars=max_chars, since=since, until=until, resume=resume,
                                        success_key=success_key, progress=progress)
    if as_json:
        render.print_json(report.to_json())
        return
    _print(report, db, file.name if file is not None else report.batch.path)


@import_app.command("phoenix")
def import_phoenix_command(
    source: Annotated[Path | None, typer.Argument(
        help="Phoenix's spans dataframe written as Parquet or JSON lines (get_spans_dataframe()), or "
             "REST spans pages (GET /v1/projects/{project}/spans) one per line; omit with --endpoint.")] = None,
    db: DbOption = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="A Phoenix server (http://127.0.0.1:6006) to read "
                                                 "spans from, page by page (API key: PHOENIX_API_KEY).")] = None,
    project: Annotated[str, typer.Option("--project", help="The Phoenix project to read from the server.")] = "default",
    since: SinceOption = None,
    until: UntilOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Read only the spans from the newest trace an earlier "
                                         "import read from this server's project on.")] = False,
    task_attr: TaskAttrOption = "hotmess.task.id",
    agent: AgentOption = None,
    no_redact: NoRedactOption = False,
    max_chars: MaxCharsOption = 8192,
    as_json: JsonOption = False,
) -> None:
    """Import Arize Phoenix spans: one run per trace, steps from its OpenInference spans (LLM, TOOL, AGENT, CHAIN).

    Reads a file or a server (never writing to it) in one transaction; traces imported before are
    left as they are, malformed spans skipped and named.
    """
    import hotmess

    _check_options(agent, since, until)
    if (source is None) == (endpoint is None):
        raise typer.BadParameter("give a FILE or --endpoint (one of them)", param_hint="SOURCE")
    if source is not None and not source.exists():  # before the database is created
        raise HotmessError(f"{source}: no such file")
    label = source.name if source is not None else f"{endpoint} ({project})"
    with stages(f"importing {label}") as progress, hotmess.open(db_path(db), create=True) as store:
        report = store.import_phoenix(source, endpoint=endpoint, project=project, since=since, until=until,
                                      resume=resume, task_attr=task_attr, agent=agent, redact=not no_redact,
                                      max_chars=max_chars, progress=progress)
    if as_json:
        render.print_json(report.to_json())
        return
    _print(report, db, label)
