"""``hotmess import ...``: benchmark result files and production logs into the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hotmess.cli import render
from hotmess.cli.app import (
    DbOption,
    JsonOption,
    db_path,
    import_app,
    stages,
)
from hotmess.errors import HotmessError


@import_app.command("tau-bench")
def import_taubench_command(
    file: Annotated[Path, typer.Argument(help="A tau-bench results file (JSON list of task/trial records).")],
    db: DbOption = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Agent name for these runs (default: the file's name).")] = None,
    no_redact: Annotated[bool, typer.Option("--no-redact", help="Store values as they are (default: secrets are redacted, as when tracing).")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Leave out malformed records and import the rest (default: a malformed record rejects the file).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Import a tau-bench results file: one run per task trial, steps from its messages."""
    import hotmess

    if not file.exists():  # before the database is created
        raise HotmessError(f"{file}: no such file")
    with stages(f"importing {file.name}") as progress, hotmess.open(db_path(db), create=True) as store:
        report = store.import_taubench(file, agent=agent, redact=not no_redact, skip_invalid=skip_invalid,
                                       progress=progress)
    if as_json:
        render.print_json(report.to_json())
        return
    result, batch = report.result, report.batch
    render.print_import(result, db_path(db), flagged=batch.flagged, next_steps=next_steps(batch.runs))
    if batch.skipped:
        render.console.print(f"[yellow]{render.plural(len(batch.skipped), 'malformed record')} left out:[/]")
        for error in batch.skipped[:_SHOWN_ERRORS]:
            render.console.print(f"  {render.escape(str(error))}")
        if len(batch.skipped) > _SHOWN_ERRORS:
            render.console.print(f"  … and {len(batch.skipped) - _SHOWN_ERRORS} more")


@import_app.command("inspect")
def import_inspect_command(
    paths: Annotated[list[Path], typer.Argument(help="Inspect AI logs (.eval or .json), or directories of them: one import, one transaction.")],
    db: DbOption = None,
    scorer: Annotated[str | None, typer.Option("--scorer", help="The scorer whose value decides success (default: each log's first).")] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="A numeric score counts as success from this value (default 1.0: full credit).")] = 1.0,
    agent: Annotated[str | None, typer.Option("--agent", help="Agent name for these runs (default: each eval's model).")] = None,
    no_redact: Annotated[bool, typer.Option("--no-redact", help="Store values as they are (default: secrets are redacted, as when tracing).")] = False,
    max_chars: Annotated[int, typer.Option("--max-chars", min=0, help="Cut texts longer than this, as when tracing; 0 keeps them whole.")] = 8192,
    as_json: JsonOption = False,
) -> None:
    """Import Inspect AI eval logs: one run per sample and epoch (the epoch is the instance),
    success from the scorer, the model as the agent's model (compare with --by gen_ai.request.model)."""
    import hotmess

    for path in paths:
        if not path.exists():  # before the database is created
            raise HotmessError(f"{path}: no such file or directory")
    if agent is not None and not agent.strip():
        raise typer.BadParameter("must not be empty", param_hint="--agent")
    label = paths[0].name if len(paths) == 1 else f"{len(paths)} paths"
    with stages(f"importing {label}") as progress, hotmess.open(db_path(db), create=True) as store:
        report = store.import_inspect(paths, scorer=scorer, threshold=threshold, agent=agent, redact=not no_redact,
                                      max_chars=max_chars, progress=progress)
    if as_json:
        render.print_json(report.to_json())
        return
    render.print_import(report.result, db_path(db), source=label)
    for note in report.extra["notes"]:
        render.console.print(f"[yellow]{render.escape(note)}[/]")
    for skipped in report.extra["skipped"][:_SHOWN_ERRORS]:
        render.console.print(f"  [yellow]left out:[/] {render.escape(skipped['message'])}")
    render.print_next_steps([
        ("analyze --by gen_ai.request.model", "incoherence per model, over the same tasks"),
        ("analyze", "bias and variance per task against the scorer's verdict"),
    ], db_path(db))


@import_app.command("otlp")
def import_otlp_command(
    files: Annotated[list[Path], typer.Argument(
        help="OTLP JSON traces: the Collector file exporter's JSON lines, or one JSON object or list (gzip ok). "
             "Several files (rotated files, a glob) are one import: a trace cut between them is one run.")],
    db: DbOption = None,
    task_attr: Annotated[str, typer.Option("--task-attr", help="Span or resource attribute holding the task id (else: a hash of the first user message).")] = "hotmess.task.id",
    agent: Annotated[str | None, typer.Option("--agent", help="Agent name for these runs (default: gen_ai.agent.name, else service.name).")] = None,
    no_redact: Annotated[bool, typer.Option("--no-redact", help="Store values as they are (default: secrets are redacted, as when tracing).")] = False,
    max_chars: Annotated[int, typer.Option("--max-chars", min=0, help="Cut texts longer than this, as when tracing; 0 keeps them whole.")] = 8192,
    as_json: JsonOption = False,
    to: Annotated[tuple[str, Path] | None, typer.Option("--to", metavar="parquet DIR", help="Write the Parquet layout to DIR instead of a database (streamed in bounded batches; hotmess analyze --engine dask --source DIR reads it).", show_default=False)] = None,
) -> None:
    """Import production traces from OTLP JSON files: one run per trace, steps from its spans.

    All the files are one import (one transaction). A trace imported before from another file
    that gets more spans is merged: its run is rebuilt from all its spans. Malformed lines are
    skipped and reported; the command fails only when nothing can be imported.
    """
    import hotmess

    if agent is not None and not agent.strip():
        raise typer.BadParameter("must not be empty", param_hint="--agent")
    for file in files:
        if not file.exists():  # before the database is created
            raise HotmessError(f"{file}: no such file")
    if to is not None:
        _otlp_to_parquet(files, to, task_attr, agent, not no_redact, max_chars, as_json)
        return
    label = files[0].name if len(files) == 1 else f"{len(files)} files"
    with stages(f"importing {label}") as progress, hotmess.open(db_path(db), create=True) as store:
        report = store.import_otlp(files, task_attr=task_attr, agent=agent, redact=not no_redact,
                                   max_chars=max_chars, progress=progress)
    if as_json:
        render.print_json(report.to_json())
        return
    result, batch = report.result, report.batch
    render.print_import(result, db_path(db), source=None if len(result.files) == 1 else f"{len(result.files)} files")
    _print_otlp_notes(batch, result)
    render.print_next_steps(next_steps(batch.runs, production=True), db_path(db))


_SHOWN_ERRORS = 5


def next_steps(runs: list[dict[str, Any]], production: bool = False) -> list[tuple[str, str]]:
    """The analyses that fit what was imported: (hotmess arguments, why).

    ``--outcome actions`` compares runs by their state-changing tool calls, which fits when the
    reference is a list of expected actions (tau-bench's ground truth): bias and variance. Without
    any reference or recorded success (production logs, as OTLP files usually are) error is
    undefined and only variance is defined: the outcome is then the final answer, free text, which
    ``--outcome text`` clusters (exact text rarely repeats). Logs over time: ``drift``.
    """
    from hotmess.analyzers.outcomes import parse_actions

    references = [r["reference"] for r in runs if r.get("reference") is not None]
    judged = bool(references) or any(r.get("success") is not None for r in runs)
    measured = ("bias and variance against the reference or the recorded success" if judged else
                "no reference or success recorded: only variance, how alike each task's runs end")
    if references and all(parse_actions(ref) is not None for ref in references):
        steps = [("analyze --outcome actions", "tool calls against the reference actions: bias and variance")]
    elif production:
        steps = [("analyze --outcome text", f"final answers clustered as text; {measured}")]
    else:
        steps = [("analyze", measured)]
    if not judged and any(r.get("n_tool_calls") for r in runs):
        steps.append(("analyze --outcome actions", "the same for the tool calls that change state"))
    if production:
        steps.append(("drift --window 1d", "behaviour day by day; changed days flagged"))
    return steps


def _otlp_to_parquet(files: list[Path], to: tuple[str, Path], task_attr: str, agent: str | None, redact: bool,
                     max_chars: int, as_json: bool) -> None:
    """``import otlp FILES --to parquet DIR``: :func:`hotmess.otlp_parquet.import_otlp_parquet`."""
    from hotmess.otlp_parquet import import_otlp_parquet

    kind, out = to
    if kind != "parquet":
        raise HotmessError(f"--to takes parquet DIR, not {kind!r}")
    report = import_otlp_parquet(files, out, task_attr=task_attr, agent=agent, redact=redact, max_chars=max_chars)
    if as_json:
        render.print_json({"schema_version": 1, **report})
        return
    render.console.print(
        f"Wrote {report['runs']:,} runs and {report['steps']:,} steps to {out} ({report['files']} files, "
        f"{report['batches']} batches; at most {report['max_buffered_spans']:,} spans held at once)")
    for key, what in (("skipped", "records skipped"), ("ignored_traces", "traces of no agent left out"),
                      ("late_spans", "spans arrived after their trace was written: left out"),
                      ("rootless", "runs without a root span: incomplete")):
        if report[key]:
            render.console.print(f"  {report[key]:,} {what}")


def _print_otlp_notes(batch, result) -> None:
    out = render.console
    if len(result.files) > 1:
        for f in result.files:
            read = "empty" if f["empty"] else (
                f"{render.plural(f['records'], 'record')}, {render.plural(f['spans'], 'span')} of {render.plural(f['traces'], 'trace')}"
                + (f", [yellow]{f['skipped']} malformed skipped[/]" if f["skipped"] else ""))
            out.print(f"  {render.escape(f['path'])}: {read}")
    if batch.skipped:
        out.print(f"[yellow]{batch.skipped} of {render.plural(batch.records, 'record')} (lines) malformed and skipped:[/]")
        for error in batch.errors[:_SHOWN_ERRORS]:
            out.print(f"  {render.escape(str(error))}")
        if batch.skipped > _SHOWN_ERRORS:
            out.print(f"  … and {batch.skipped - _SHOWN_ERRORS} more")
    if result.left_out_spans:
        sources = ", ".join(f"{render.plural(n, 'run')} {_SOURCE_NAMES.get(s, f'from {s}')}" for s, n in sorted(result.left_out_runs.items()))
        out.print(f"[yellow]{render.plural(result.left_out_spans, 'new span')} left out: their trace is stored as a run "
                  f"that an OTLP import never rewrites ({render.escape(sources)})[/]")
    if batch.rootless:
        out.print(f"[yellow]{render.plural(batch.rootless, 'run')} without a root span in these files (still running when "
                  "they were written, or cut by a skipped line): stored as incomplete; importing the file with "
                  "the root completes them[/]")
    if result.ignored_traces:
        out.print(f"[dim]{render.plural(result.ignored_traces, 'trace')} left out: no agent at work there (no hotmess.*, gen_ai.*, llm.* or openinference.* attribute, or only the agent being built)[/]")
    if batch.hashed_task_ids:
        out.print(f"[dim]{render.plural(batch.hashed_task_ids, 'run')} without a task id attribute: task id = hash of the first user message (msg:…)[/]")


_SOURCE_NAMES = {"trace": "recorded live by hotmess", "tau-bench": "imported from tau-bench",
                 "otlp": "imported from OTLP before, without its spans"}


