"""Inspect AI eval logs → hotmess runs and steps (``pip install 'hotmess[inspect]'``).

Logs are read only through Inspect's own reader (:func:`inspect_ai.log.read_eval_log` and
``read_eval_log_sample``): the ``.eval`` format (a zip of zstd-compressed JSON members) and the
older ``.json`` one. A directory stands for the logs Inspect itself lists in it
(``list_eval_logs``: every ``.eval`` file and the ``.json`` files named as Inspect names them),
recursively. ``import hotmess`` works without inspect-ai; :func:`parse_inspect` then raises
:class:`InspectNotInstalled` naming the extra.

:func:`parse_inspect` reads and validates every log and returns an :class:`InspectBatch` of
row dicts keyed exactly by :data:`~hotmess.tables.RUN_COLUMNS` and
:data:`~hotmess.tables.STEP_COLUMNS`, as :func:`hotmess.integrations.taubench.parse_taubench`
does; it writes nothing. :func:`insert_inspect` stores a batch in one transaction.

Mapping
-------
One run per sample and epoch:

- ``run_id`` — ``"ia-"`` + 32 hex digits of sha256 over the sample's ``uuid`` (over the eval
  id, sample id and epoch for logs without one): importing a log twice, or a ``.eval`` log and
  its ``.json`` conversion, adds nothing the second time.
- ``task_id`` — the eval's task name, ``":"``, the sample id (``"gsm8k:42"``); ``instance`` —
  the epoch (``"1"``, ``"2"``, ...); ``agent`` — the ``agent`` argument, else the eval's model;
  ``source`` ``"inspect"``.
- ``success`` and ``score`` — from the chosen scorer's value (``scorer``, default the log's
  first scorer): ``C`` / ``CORRECT`` / ``yes`` / ``true`` / ``True`` score 1, ``P`` / ``PARTIAL``
  0.5, ``I`` / ``INCORRECT`` / ``N`` / ``NOANSWER`` / ``no`` / ``false`` / ``False`` 0 (letters
  in any case), numbers (and numeric text) as they are; ``success`` is 1.0 when the score is at
  least ``threshold`` (default 1.0: full credit; partial credit is a failure unless
  ``threshold`` ≤ 0.5) and 0.0 otherwise; ``score`` keeps the partial credit. A value that is
  none of these (a dict of several metrics) leaves both unknown and the run flagged. An
  unscored sample that crashed is failed; one that did not is unknown and flagged.
- ``reference`` — the sample's target (canonical JSON: a string, or a list of them);
  ``outcome`` — the final completion (``sample.output.completion``: the answer the scorer
  read); None for a sample that crashed (its last model output is no answer, and the analyzers
  cluster crashes by exception type).
- ``status`` ``"error"`` and ``error`` ``"<ExceptionType>: <message>"`` for a sample that
  crashed (``sample.error``), else ``"ok"``; a sample that hit a message, token or time limit
  is ``"ok"`` and flagged ``limit`` (Inspect scores it as it stands).
- ``start_ns`` / ``end_ns`` — the sample's ``started_at`` / ``completed_at`` (else its first
  and last event); counts and tokens from the steps.
- ``attributes`` — ``gen_ai.request.model`` (the eval's model: ``hotmess analyze --by
  gen_ai.request.model`` compares models across logs), ``hotmess.instruction`` (the sample's
  input text), ``inspect.task``, ``inspect.eval_id``, ``inspect.sample_id``, ``inspect.epoch``,
  ``inspect.scorer`` (the scorer used), ``inspect.scores`` (every scorer's value),
  ``inspect.answer``, ``inspect.limit``, ``inspect.log`` (the file's name), ``hotmess.flags``.

Steps: :mod:`hotmess.integrations.inspect_events`.

Secrets are redacted (``redact``) and texts cut at ``max_chars`` as on the live path.

Logs that stopped early, malformed logs
---------------------------------------
A log whose eval did not finish (status ``started``: the process was killed; ``cancelled``;
``error``) imports the samples that finished; every sample and epoch of the eval's dataset it
does not hold, or holds as cancelled when the eval stopped (a ``CancelledError``, which is not the
agent's failure), is listed in :attr:`InspectBatch.skipped` with the log's status. A malformed log (not
a zip or JSON Inspect can read, a member or sample that does not validate) raises
:class:`~hotmess.errors.InputError` naming the file and the member or sample; nothing of any
log is stored, so the database is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from hotmess.errors import HotmessError, InputError, ParameterError
from hotmess.integrations.inspect_events import (
    canonical_json,
    datetime_ns,
    json_data,
    message_text,
    sample_steps,
)
from hotmess.integrations.sources import regular_file
from hotmess.progress import Progress
from hotmess.redact import Redactor, make_redactor
from hotmess.store.writer import (
    ImportResult,
    import_transaction,
    log_import,
    stored_runs,
    write_rows,
)
from hotmess.tables import RUN_COLUMNS
from hotmess.vocab import attributes as A
from hotmess.vocab.serialize import DEFAULT_MAX_ATTRIBUTE_CHARS, scrub_text

__all__ = [
    "DEFAULT_THRESHOLD", "SOURCE", "InspectBatch", "InspectNotInstalled", "insert_inspect", "log_files",
    "parse_inspect", "score_value",
]

SOURCE = "inspect"
#: ``success`` is ``score >= threshold``; by default only full credit is a success.
DEFAULT_THRESHOLD = 1.0
FINISHED = "success"

_ONE = frozenset({"c", "correct", "yes", "true"})
_HALF = frozenset({"p", "partial"})
_ZERO = frozenset({"i", "incorrect", "n", "noanswer", "no", "false"})
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(: .*)?$")
_EXCEPTION_REPR = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.S)


class InspectNotInstalled(HotmessError, ImportError):
    """inspect-ai, needed to read Inspect logs, is not installed."""


def _inspect_log() -> Any:
    try:
        import inspect_ai.log as inspect_log
    except ImportError as exc:
        raise InspectNotInstalled(
            "importing Inspect AI logs needs inspect-ai: pip install 'hotmess[inspect]'") from exc
    return inspect_log


@dataclass(frozen=True)
class InspectBatch:
    """Everything parsed from the logs of one import, ready for :func:`insert_inspect`.

    ``runs`` and ``steps`` are row dicts with every key of ``RUN_COLUMNS`` / ``STEP_COLUMNS``
    (steps grouped by run, in run order). The notes, each a dict with ``path`` and ``message``
    (a sentence):

    - ``flagged`` — runs imported with a caveat: ``{"path", "task_id", "instance", "run_id",
      "reason", "message"}``, ``reason`` one of ``error`` (the sample crashed), ``limit`` (it hit
      a limit), ``not_scored``, ``score_not_scalar``;
    - ``skipped`` — samples not imported because the log does not hold them (the eval stopped
      first): ``{"path", "sample_id", "epoch", "status", "message"}``;
    - ``duplicates`` — samples read twice (the same log given twice, or a ``.eval`` log and its
      ``.json`` conversion): ``{"path", "first_path", "task_id", "instance", "message"}``;
    - ``files`` — per log: ``{"path", "task", "model", "status", "scorer", "samples", "runs",
      "skipped"}`` (``samples``: sample-epochs in the eval, ``runs``: read from this log).

    ``path`` is the log, or the logs joined by ``", "``.
    """

    path: str
    runs: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    flagged: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict, repr=False)  # run id → its log

    def iter_runs(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Each run with its steps, in batch order."""
        by_run: dict[str, list[dict[str, Any]]] = {}
        for step in self.steps:
            by_run.setdefault(step["run_id"], []).append(step)
        for run in self.runs:
            yield run, by_run.get(run["run_id"], [])

    def steps_of(self, run_id: str) -> list[dict[str, Any]]:
        """The steps of one run, in step order."""
        return [s for s in self.steps if s["run_id"] == run_id]

    def notes(self) -> list[str]:
        """What a reader should know, one sentence each: logs that stopped early, flagged runs."""
        out = []
        for f in self.files:
            if f["skipped"]:
                out.append(f"{f['path']}: the eval stopped early (status {f['status']}): {f['runs']} of "
                           f"{f['samples']} samples × epochs imported, {f['skipped']} not in the log")
        out.extend(n["message"] for n in self.flagged)
        out.extend(n["message"] for n in self.duplicates)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "runs": len(self.runs), "steps": len(self.steps), "files": self.files,
                "flagged": self.flagged, "skipped": self.skipped, "duplicates": self.duplicates}


def score_value(value: Any) -> float | None:
    """A scorer's value as a number (the mapping in the module docstring); None when it is not
    one (a dict or list of several values, text that is neither a grade nor a number, NaN).

    >>> [score_value(v) for v in ("C", "incorrect", "P", True, 0.25, "0.5", {"a": 1})]
    [1.0, 0.0, 0.5, 1.0, 0.25, 0.5, None]
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        key = value.strip().casefold()
        if key in _ONE:
            return 1.0
        if key in _HALF:
            return 0.5
        if key in _ZERO:
            return 0.0
        try:
            number = float(key)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------------------------------------
# finding and reading logs


def log_files(paths: str | PathLike[str] | Iterable[str | PathLike[str]]) -> list[str]:
    """The log files ``paths`` stand for (a directory: the logs Inspect lists in it, sorted),
    each once. Raises :class:`InputError` for a path that does not exist, a file that is not
    ``.eval`` or ``.json``, or a directory without logs."""
    items = [paths] if isinstance(paths, str | PathLike) else list(paths)
    if not items:
        raise ValueError("no Inspect log given")
    found: list[str] = []
    seen: set[Path] = set()
    for item in items:
        path = Path(item)
        if path.is_dir():
            listed = sorted(_listed(str(path)))
            if not listed:
                raise InputError(str(item), None, "no Inspect logs in this directory (.eval files, or .json "
                                 "files named as Inspect names them)")
        elif not path.exists():
            raise InputError(str(item), None, "no such file or directory")
        elif path.suffix not in (".eval", ".json"):
            raise InputError(str(item), None, "not an Inspect log: expected a .eval or .json file")
        else:
            regular_file(path)  # a FIFO named x.eval would hang Inspect's reader
            listed = [str(item)]
        for name in listed:
            resolved = Path(name).resolve()
            if resolved not in seen:
                seen.add(resolved)
                found.append(name)
    return found


def _listed(directory: str) -> list[str]:
    names = []
    for info in _inspect_log().list_eval_logs(directory, recursive=True):
        parsed = urlparse(info.name)
        names.append(unquote(parsed.path) if parsed.scheme == "file" else info.name)
    return names


def _reason(exc: BaseException) -> str:
    """What Inspect's reader said, in one line."""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # a pydantic ValidationError: the first problem and where
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return f"does not validate as an Inspect log: {where}: {first.get('msg')}"
        except (IndexError, TypeError, AttributeError):
            pass
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"Inspect cannot read it ({type(exc).__name__}: {text[:300]})"


def _json_location(exc: BaseException) -> str | None:
    """``samples[3]`` for a .json log whose fourth sample does not validate."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            loc = errors()[0].get("loc", ())
        except (IndexError, TypeError, AttributeError):
            return None
        if len(loc) >= 2 and loc[0] == "samples":
            return f"samples[{loc[1]}] (the log's sample {loc[1]})"
    return None


@dataclass
class _Log:
    path: str
    header: Any
    expected: list[tuple[Any, int]]  # (sample id, epoch) of the eval's dataset


def _read_header(path: str) -> _Log:
    try:
        header = _inspect_log().read_eval_log(path, header_only=True)
    except Exception as exc:  # noqa: BLE001 - whatever Inspect raises on a bad file
        raise InputError(path, "header" if path.endswith(".eval") else None, _reason(exc)) from None
    ids = header.eval.dataset.sample_ids
    epochs = header.eval.config.epochs or 1
    expected = [(sid, e) for sid in ids for e in range(1, epochs + 1)] if ids is not None else []
    return _Log(path, header, expected)


def _read_samples(log: _Log) -> list[Any]:
    """The log's samples through Inspect's reader. When it refuses a .eval log, its samples are
    read one by one to name the member it refuses (about eight times slower, so only then)."""
    inspect_log = _inspect_log()
    try:
        return inspect_log.read_eval_log(log.path, resolve_attachments=True).samples or []
    except Exception as exc:  # noqa: BLE001
        if log.path.endswith(".json") or not log.expected:
            raise InputError(log.path, _json_location(exc), _reason(exc)) from None
        refused = exc
    for sample_id, epoch in log.expected:
        try:
            inspect_log.read_eval_log_sample(log.path, sample_id, epoch, resolve_attachments=True)
        except IndexError:
            continue  # not in the log: the eval stopped before it finished
        except Exception as exc:  # noqa: BLE001
            raise InputError(log.path, f"member samples/{sample_id}_epoch_{epoch}.json (sample {sample_id!r}, "
                             f"epoch {epoch})", _reason(exc)) from None
    raise InputError(log.path, None, _reason(refused))  # a member other than a sample


# ---------------------------------------------------------------------------------------------
# building rows


def _run_id(header: Any, sample: Any) -> str:
    key = sample.uuid or f"{header.eval.eval_id}/{sample.id}/{sample.epoch}"
    return "ia-" + hashlib.sha256(f"inspect\n{key}".encode()).hexdigest()[:32]


def _error_text(error: Any) -> str:
    """``"ValueError: bad id"`` from Inspect's EvalError (its traceback's last line)."""
    lines = [line.strip() for line in (error.traceback or "").splitlines() if line.strip()]
    if lines and _EXCEPTION_LINE.match(lines[-1]):
        return lines[-1]
    message = str(error.message or "").strip()
    found = _EXCEPTION_REPR.match(message)
    if found:
        return f"{found.group(1)}: {found.group(2).strip(chr(39) + chr(34))}"
    return message or "unknown error"


def _cancelled(sample: Any) -> bool:
    """A sample cancelled when its eval stopped (``fail_on_error``, Ctrl-C): it did not finish,
    and its "error" is not the agent's."""
    return sample.error is not None and _error_text(sample.error).split(":", 1)[0].endswith("CancelledError")


def _instruction(sample: Any) -> str | None:
    if isinstance(sample.input, str):
        return sample.input
    for msg in sample.input or []:
        if getattr(msg, "role", None) == "user":
            return message_text(msg)
    return None


def _choose_scorer(log: _Log, scorer: str | None, samples: list[Any]) -> str | None:
    """The scorer whose values decide success: ``scorer``, else the log's first."""
    listed = [s.name for s in (log.header.results.scores if log.header.results else [])]
    seen = listed + [name for s in samples for name in (s.scores or {}) if name not in listed]
    if scorer is not None:
        if samples and scorer not in seen:
            known = ", ".join(dict.fromkeys(seen)) or "none"
            raise InputError(log.path, None, f"no scorer {scorer!r} in this log (its scorers: {known})")
        return scorer
    return seen[0] if seen else None


@dataclass
class _Context:
    log: _Log
    agent: str | None
    scorer: str | None
    threshold: float
    text: Callable[[str | None], str | None]


def _run(ctx: _Context, sample: Any) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, str]]]:
    """One sample's run row, its step rows and its flags ``(reason, message)``."""
    header = ctx.log.header
    run_id = _run_id(header, sample)
    task_id = f"{header.eval.task}:{sample.id}"
    steps = sample_steps(run_id, sample.events or [], ctx.text)
    flags: list[tuple[str, str]] = []
    scores = sample.scores or {}
    chosen = scores.get(ctx.scorer) if ctx.scorer is not None else None
    value = None if chosen is None else score_value(chosen.value)
    error = None if sample.error is None else _error_text(sample.error)
    if error is not None:
        flags.append(("error", f"the sample crashed ({error})"))
    if chosen is not None and value is None:
        success = float("nan")
        flags.append(("score_not_scalar", f"scorer {ctx.scorer!r} gave {json.dumps(json_data(chosen.value))[:80]}, "
                      "not one grade or number: success unknown"))
    elif value is not None:
        success = 1.0 if value >= ctx.threshold else 0.0
    elif error is not None:
        success = 0.0
    else:
        success = float("nan")
        flags.append(("not_scored", "not scored" + (f" by {ctx.scorer!r}" if ctx.scorer else "") + ": success unknown"))
    limit = None
    if sample.limit is not None:
        limit = {"type": sample.limit.type, "limit": sample.limit.limit}
        flags.append(("limit", f"the sample hit its {sample.limit.type} limit ({sample.limit.limit:g})"))
    output = sample.output
    completion = output.completion if output is not None else ""
    events = sample.events or []
    instruction = _instruction(sample)
    attributes = {
        A.REQUEST_MODEL: header.eval.model,
        A.INSTRUCTION: ctx.text(instruction),
        "inspect.task": header.eval.task,
        "inspect.eval_id": header.eval.eval_id,
        "inspect.sample_id": sample.id,
        "inspect.epoch": sample.epoch,
        "inspect.scorer": ctx.scorer,
        "inspect.scores": {name: json_data(s.value) for name, s in scores.items()},
        "inspect.answer": ctx.text(None if chosen is None else chosen.answer),
        "inspect.limit": limit,
        "inspect.log": Path(ctx.log.path).name,
        "hotmess.flags": [reason for reason, _ in flags],
    }
    run = dict.fromkeys(RUN_COLUMNS)
    run.update(
        run_id=run_id, task_id=task_id, agent=ctx.agent or header.eval.model, instance=str(sample.epoch),
        source=SOURCE, status="error" if error is not None else "ok",
        start_ns=datetime_ns(sample.started_at) or (datetime_ns(events[0].timestamp) if events else 0),
        end_ns=datetime_ns(sample.completed_at) or (datetime_ns(events[-1].timestamp) if events else 0),
        outcome=None if error is not None else ctx.text(canonical_json(completion)),
        success=success, reference=ctx.text(canonical_json(json_data(sample.target))),
        score=float("nan") if value is None else value, error=ctx.text(error),
        attributes=canonical_json(attributes), **steps.counts(),
    )
    for row in (run, *steps.rows):  # what SQLite cannot store fails here, naming the sample
        for value in row.values():
            if isinstance(value, str):
                value.encode("utf-8")
    return run, steps.rows, flags


def parse_inspect(
    paths: str | PathLike[str] | Iterable[str | PathLike[str]],
    *,
    scorer: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    agent: str | None = None,
    redact: bool | Redactor = True,
    max_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    progress: Progress | None = None,
) -> InspectBatch:
    """Read Inspect logs (files or directories) and return their runs and steps as rows.

    ``scorer`` names the scorer whose value decides success (default: each log's first);
    ``threshold`` the score from which a run succeeded (default 1.0, full credit); ``agent``
    the runs' agent (default: each eval's model; not part of the run ids). ``redact`` as in
    :func:`hotmess.configure`; ``max_chars`` cuts long texts (0: no cap). ``progress``
    (:mod:`hotmess.progress`) is told the samples read (``"samples"``).

    The mapping, and what happens to logs that stopped early, is in the module docstring.
    Raises :class:`~hotmess.errors.InputError` naming the file (and the member or sample) for a
    missing path, a file that is not an Inspect log, a log Inspect's reader refuses, a
    ``scorer`` a log does not have, and when no log holds any sample;
    :class:`InspectNotInstalled` without inspect-ai.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ParameterError(f"threshold must be a finite number, got {threshold!r}")
    if agent is not None and (not isinstance(agent, str) or not agent.strip()):
        raise ParameterError(f"agent must be a non-empty string, got {agent!r}")
    _inspect_log()
    files = log_files(paths)
    redactor = make_redactor(redact)

    def text(value: str | None) -> str | None:
        return None if value is None else scrub_text(value, max_chars, redactor)[0]

    logs = [_read_header(f) for f in files]
    acc = _Batch(progress, sum(len(log.expected) for log in logs) or None)
    for log in logs:
        acc.add(log, scorer, agent, float(threshold), text)
    acc.report()
    runs = acc.runs
    if not runs:
        where = files[0] if len(files) == 1 else ", ".join(files)
        raise InputError(where, None, "no sample to import: " + (
            "the log holds none" if len(files) == 1 else "none of the logs holds any")
            + (f" (status {logs[0].header.status})" if len(files) == 1 else ""))
    return InspectBatch(path=", ".join(files), runs=runs, steps=acc.steps, flagged=acc.flagged,
                        skipped=acc.skipped, duplicates=acc.duplicates, files=acc.files, origin=acc.origin)


class _Batch:
    """The rows and notes of an import, log by log."""

    def __init__(self, progress: Progress | None, total: int | None):
        self.progress, self.total, self.done = progress, total, 0
        self.runs: list[dict[str, Any]] = []
        self.steps: list[dict[str, Any]] = []
        self.flagged: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.duplicates: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self.origin: dict[str, str] = {}
        self.report()

    def report(self) -> None:
        if self.progress is not None:
            self.progress("samples", self.done, self.total)

    def add(self, log: _Log, scorer: str | None, agent: str | None, threshold: float,
            text: Callable[[str | None], str | None]) -> None:
        samples = _read_samples(log)
        ctx = _Context(log, agent, _choose_scorer(log, scorer, samples), threshold, text)
        read = set()
        for sample in samples:
            self.done += 1
            if self.done % 64 == 0:
                self.report()
            if _cancelled(sample):
                continue  # listed as not finished below
            read.add((sample.id, sample.epoch))
            run, run_steps, flags = _checked_run(ctx, sample)
            where = f"{log.path}: sample {sample.id!r} epoch {sample.epoch}"
            first = self.origin.get(run["run_id"])
            if first is not None:
                self.duplicates.append({"path": log.path, "first_path": first, "task_id": run["task_id"],
                                        "instance": run["instance"], "message": f"{where} was read before from "
                                        f"{first}; left out"})
                continue
            self.origin[run["run_id"]] = log.path
            self.runs.append(run)
            self.steps.extend(run_steps)
            self.flagged.extend({"path": log.path, "task_id": run["task_id"], "instance": run["instance"],
                                 "run_id": run["run_id"], "reason": reason, "message": f"{where}: {message}"}
                                for reason, message in flags)
        status = log.header.status
        missing = [(sid, e) for sid, e in log.expected if (sid, e) not in read]
        self.skipped.extend({"path": log.path, "sample_id": sid, "epoch": epoch, "status": status,
                             "message": f"{log.path}: sample {sid!r} epoch {epoch} did not finish (the eval's "
                             f"status is {status}{'' if status != FINISHED else ', samples not logged'}): "
                             "not imported"} for sid, epoch in missing)
        self.files.append({"path": log.path, "task": log.header.eval.task, "model": log.header.eval.model,
                           "status": status, "scorer": ctx.scorer, "samples": len(log.expected) or len(samples),
                           "runs": len(read), "skipped": len(missing)})


def _checked_run(ctx: _Context, sample: Any) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, str]]]:
    """:func:`_run`, with what hostile content raises turned into an InputError naming the sample."""
    try:
        return _run(ctx, sample)
    except RecursionError:
        reason = "nested too deeply to import"
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        reason = (f"holds text that is not valid Unicode ({bad.encode('unicode_escape').decode()}, a lone "
                  "UTF-16 surrogate escape); it cannot be stored")
    raise InputError(ctx.log.path, f"sample {sample.id!r} epoch {sample.epoch}", reason)


def insert_inspect(conn: sqlite3.Connection, batch: InspectBatch, *, progress: Progress | None = None) -> ImportResult:
    """Store a batch in one transaction (an error anywhere leaves the database as it was):
    runs not stored yet with their steps, one row of the import log per file. A run stored
    before (same run id) is left as it is, so importing the same logs again adds nothing."""
    with import_transaction(conn, batch.path):
        existing = stored_runs(conn, [r["run_id"] for r in batch.runs])
        new_runs = [r for r in batch.runs if r["run_id"] not in existing]
        new_ids = {r["run_id"] for r in new_runs}
        new_steps = [s for s in batch.steps if s["run_id"] in new_ids]
        write_rows(conn, new_runs, new_steps, progress=progress)
        for f in batch.files:
            mine = [r for r, origin in batch.origin.items() if origin == f["path"]]
            log_import(conn, SOURCE, f["path"], len(mine), sum(1 for r in mine if r in new_ids))
    return ImportResult(batch.path, SOURCE, len(batch.runs), len(new_runs), len(new_steps))
