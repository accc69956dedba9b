"""Rendering for the terminal (rich) and for scripts (JSON). Renders results; computes nothing."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table as RichTable
from rich.text import Text
from rich.tree import Tree

from hotmess.durations import duration_text
from hotmess.verdict import verdict

console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """JSON on stdout, nan as null, nothing else printed."""
    sys.stdout.write(json.dumps(_clean(data), indent=2, ensure_ascii=False) + "\n")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def plural(n: int, noun: str) -> str:
    """``1 run``, ``2 runs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def short(text: Any, width: int = 60) -> str:
    if text is None:
        return ""
    text = str(text).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


_SEPARATORS = "-_./: "


def without_shared_prefix(values: Iterable[str]) -> dict[str, str]:
    """Values that all share a prefix up to a separator, without it: ``support-bot-coherent``,
    ``support-bot-prod`` → ``…coherent``, ``…prod``; other values as they are."""
    distinct = sorted(set(values))
    if len(distinct) > 1:
        prefix = os.path.commonprefix(distinct)
        cut = max((prefix.rfind(c) for c in _SEPARATORS), default=-1) + 1
        if cut > 1:
            return {v: "…" + v[cut:] for v in distinct}
    return {v: v for v in distinct}


def distinguishing(values: Iterable[str], width: int) -> dict[str, str]:
    """Each value shortened to ``width`` so that different values stay different where they can:
    a prefix they all share (up to a separator) gives way first (``support-bot-coherent`` →
    ``…coherent``), then the middle (``order-12…-7``), and only then the end."""
    distinct = sorted(set(values))
    if all(len(v) <= width for v in distinct):
        return {v: v for v in distinct}
    shown = without_shared_prefix(distinct)
    if len({short(t, width) for t in shown.values()}) < len(distinct):
        head = max(1, (width - 1) * 2 // 3)
        tail = width - 1 - head
        return {v: t if len(t) <= width else t[:head] + "…" + (t[-tail:] if tail else "") for v, t in shown.items()}
    return {v: short(t, width) for v, t in shown.items()}


def compact_outcome(text: Any) -> str:
    """An outcome for a table cell: a JSON object as ``key=value, ...`` (strings unquoted),
    other JSON without spaces, text as it is."""
    if text is None:
        return ""
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return str(text).replace("\n", " ")

    def piece(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False)

    def fields(d: dict) -> str:
        return ", ".join(f"{k}={piece(v)}" for k, v in d.items())

    def call(v: Any) -> str | None:  # a tool call: {"name": ..., "kwargs" | "arguments" | "args": {...}}
        if not isinstance(v, dict) or not isinstance(v.get("name"), str):
            return None
        args = next((v[k] for k in ("kwargs", "arguments", "args") if isinstance(v.get(k), dict)), {})
        return f"{v['name']}({fields(args)})"

    if isinstance(value, list) and value and all(call(v) is not None for v in value):
        return "; ".join(call(v) for v in value)
    if isinstance(value, dict):
        return call(value) or fields(value)
    return piece(value).replace("\n", " ")


def fmt_float(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "p –"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def fmt_success(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "[dim]?[/]"
    return "[green]yes[/]" if value else "[red]no[/]"


_STATUS_STYLE = {"ok": "green", "error": "red", "incomplete": "yellow"}


def activity_table(buckets: Sequence[dict[str, Any]], unit: str, title: str) -> RichTable:
    """Runs started per ``unit`` by status, one row per bucket, a bar of the total beside it."""
    table = RichTable(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column(unit + " (UTC)", no_wrap=True)
    for status in ("ok", "error", "incomplete"):
        table.add_column(status, justify="right", style=_STATUS_STYLE.get(status))
    table.add_column("runs", justify="right")
    table.add_column("", no_wrap=True, overflow="crop")
    most = max((b["ok"] + b["error"] + b["incomplete"] for b in buckets), default=0) or 1
    cut = 16 if unit == "hour" else 10
    for b in buckets:
        total = b["ok"] + b["error"] + b["incomplete"]
        table.add_row(b["start"][:cut].replace("T", " "), str(b["ok"]), str(b["error"]), str(b["incomplete"]),
                      str(total), "█" * max(round(30 * total / most), 1 if total else 0))
    return table


def runs_table(
    rows: Sequence[dict[str, Any]], total: int, title: str, agents: set[Any] | None = None,
) -> RichTable:
    """The runs ``rows`` (of ``total``); ``agents``: those of all ``total`` runs (default: of ``rows``).

    Ids, counts and times keep their width; task, agent and outcome share what is left of the
    terminal (the outcome first), cut with an ellipsis, so the table never runs off the edge."""
    agents = {r["agent"] for r in rows} if agents is None else agents
    one_agent = len(agents) == 1
    if one_agent:
        agent = next(iter(agents))
        title += f" · agent {'(none)' if agent is None else agent}"
    timed = any(r["end_ns"] for r in rows)
    numbered = any(r["instance"] is not None for r in rows)
    statuses = {r["status"] for r in rows}
    fixed_columns = [("status", "left"), ("ok", "left"), ("steps", "right"), ("tools", "right")]
    if len(statuses) == 1:  # one status for all: said once in the title, its column gives way
        title += f" · all {next(iter(statuses))}"
        fixed_columns.pop(0)
    if numbered:
        fixed_columns.insert(0, ("#", "right"))
    if timed:
        fixed_columns.append(("time", "right"))
    fixed_cells = [
        [
            *([escape(str(r["instance"] if r["instance"] is not None else ""))] if numbered else []),
            *([f"[{_STATUS_STYLE.get(r['status'], 'white')}]{r['status']}[/]"] if len(statuses) > 1 else []),
            fmt_success(r["success"]),
            str(r["n_steps"]),
            str(r["n_tool_calls"]),
            *([duration_text(r["start_ns"], r["end_ns"])] if timed else []),
        ]
        for r in rows
    ]
    shared = os.path.commonprefix([r["run_id"] for r in rows]) if len(rows) > 1 else ""
    ids = [r["run_id"][: 8 + len(shared)] for r in rows]  # 8 characters past what all share
    texts = {"task": [str(r["task_id"]) for r in rows]}
    if not one_agent:
        texts["agent"] = ["(none)" if r["agent"] is None else str(r["agent"]) for r in rows]
    texts["outcome"] = [compact_outcome(r["outcome"]) for r in rows]

    def natural(name: str, values: list[str], markup: bool = False) -> int:
        """Widest cell: data (ids, tasks, agents, outcomes) as plain text, our cells as markup."""
        return max([len(name)] + [(Text.from_markup(v) if markup else Text(v)).cell_len for v in values])

    used = natural("run", ids) + sum(
        natural(name, [cells[i] for cells in fixed_cells], markup=True) for i, (name, _) in enumerate(fixed_columns)
    )
    n_columns = 1 + len(fixed_columns) + len(texts)
    room = max(8 * len(texts), console.width - used - 2 * (n_columns - 1))  # the gaps between columns
    # What tells runs apart comes first: the agent (without the prefix all agents share), then
    # the task, up to 24 characters each; the outcome gets the rest, and gives way first.
    widths = {}
    for name in ("agent", "task"):
        if name in texts:
            full = natural(name, texts[name])
            compact = natural(name, list(without_shared_prefix(texts[name]).values()))
            left = room - sum(widths.values()) - 8
            widths[name] = max(6, min(full if full <= left // 2 else compact, left, 24))
    widths["outcome"] = max(8, room - sum(widths.values()))
    # ids and agents keep what tells them apart (of all the runs' agents, not just those shown)
    shown_as = {n: distinguishing(texts[n] + (sorted(map(str, agents)) if n == "agent" else []), widths[n])
                for n in ("task", "agent") if n in texts}

    table = RichTable(title=escape(title), title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                      pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column("run", no_wrap=True)
    for name in texts:
        if name != "outcome":
            table.add_column(name, no_wrap=True)
    for name, justify in fixed_columns:
        table.add_column(name, justify=justify, no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    for i, cells in enumerate(fixed_cells):
        named = [escape(shown_as[n][texts[n][i]]) for n in texts if n != "outcome"]
        table.add_row(ids[i], *named, *cells, escape(short(texts["outcome"][i], widths["outcome"])))
    if total > len(rows):
        table.caption = f"{len(rows)} of {total} runs shown; --limit 0 shows all"
    return table


_KIND_STYLE = {"tool": "magenta", "llm": "blue", "agent": "cyan", "goal": "bold cyan", "step": "white"}


def run_tree(run: dict[str, Any], steps: Iterable[dict[str, Any]]) -> Tree:
    status = run["status"]
    label = (
        f"[bold]run {run['run_id']}[/]  task [bold]{escape(str(run['task_id']))}[/]  "
        f"agent {escape('(none)' if run['agent'] is None else str(run['agent']))}  [{_STATUS_STYLE.get(status, 'white')}]{status}[/]  "
        f"success {fmt_success(run['success'])}  {duration_text(run['start_ns'], run['end_ns'])}"
    )
    root = Tree(label)
    nodes: dict[Any, Tree] = {}
    for s in steps:
        parent = nodes.get(s["parent_span_id"], root)
        kind = s["kind"]
        style = _KIND_STYLE.get(kind, "white")
        if kind == "goal":
            text = f"[{style}]◎ goal[/] {escape(short(s['goal'], 100))}"
        else:
            text = f"[{style}]{kind}[/] [bold]{escape(short(s['name'], 60))}[/]"
            if s.get("input"):
                text += f"  [dim]{escape(short(s['input'], 80))}[/]"
            text += f"  [dim]{duration_text(s['start_ns'], s['end_ns'])}[/]"
            if s.get("output"):
                text += f"\n  → {escape(short(s['output'], 100))}"
        if s.get("error"):
            text += f"\n  [red]✗ {escape(short(s['error'], 120))}[/]"
        nodes[s["span_id"]] = parent.add(text)
    footer = []
    if run.get("outcome") is not None:
        footer.append(f"[bold]outcome[/] {escape(short(run['outcome'], 120))}")
    if run.get("reference") is not None:
        footer.append(f"[bold]reference[/] {escape(short(run['reference'], 120))}")
    if run.get("error"):
        footer.append(f"[red]error {escape(short(run['error'], 120))}[/]")
    for line in footer:
        root.add(line)
    return root


def print_demo(summary: dict[str, dict[str, dict[str, int]]], db: str, total: int, elapsed: float) -> None:
    agents = list(summary)
    tasks = list(next(iter(summary.values())))
    table = RichTable(title=f"demo: {total} runs in {elapsed:.1f}s → {db}", title_justify="left", header_style="bold")
    table.add_column("task")
    lookups = [summary[agents[0]][t].get("lookups") for t in tasks]
    if any(n is not None for n in lookups):
        table.add_column("lookups", justify="right")
    for agent in agents:
        table.add_column(f"{agent}\nsuccesses / runs", justify="right")
    for task, n in zip(tasks, lookups, strict=True):
        table.add_row(task, *([] if n is None else [str(n)]),
                      *(f"{summary[a][task]['successes']} / {summary[a][task]['runs']}" for a in agents))
    totals = []
    for a in agents:
        wins = sum(t["successes"] for t in summary[a].values())
        runs = sum(t["runs"] for t in summary[a].values())
        totals.append(f"[bold]{wins / runs:.0%}[/] ({wins} / {runs})")
    table.add_row("[bold]success[/]", *([""] if any(n is not None for n in lookups) else []), *totals)
    console.print(table)


def print_import(
    result: Any, db: str, flagged: Sequence[dict[str, Any]] = (), next_steps: Sequence[tuple[str, str]] = (),
    source: str | None = None,
) -> None:
    """What was imported (from ``source``, default the result's path), then ``next_steps``:
    (hotmess arguments, why) to run next."""
    d = result.to_dict()
    console.print(
        f"Imported [bold]{plural(d['new'], 'new run')}[/] ({plural(d['steps'], 'step')}) from {escape(source or d['path'])} into {escape(db)}"
        + (f"; {d['merged']} stored before got new spans and were rebuilt" if d.get("merged") else "")
        + (f"; {d['already_stored']} were already stored" if d["already_stored"] else "")
    )
    if flagged:
        console.print(
            f"[yellow]{plural(len(flagged), 'run')} not graded (step limit), counted as failed:[/] "
            + ", ".join(escape(f"task {f['task_id']} trial {f['trial']}") for f in flagged[:10])
            + (" …" if len(flagged) > 10 else "")
        )
    print_next_steps(next_steps, db)


def indented(markup: str, indent: int = 2, stream: Console | None = None) -> None:
    """A paragraph whose wrapped lines keep its indent (``indent`` spaces)."""
    (stream or console).print(Padding(markup, (0, 0, 0, indent), expand=False))


def print_next_steps(next_steps: Sequence[tuple[str, str]], db: str) -> None:
    """(hotmess arguments, why) to run next, on the database ``db``: a command is never cut
    across lines; when it and its reason don't fit on one, the reason goes under it."""
    db_arg = f" --db {db}" if db else ""
    for i, (args, why) in enumerate(next_steps):
        command = f"hotmess {args}{db_arg}"
        lead = "Next:" if i == 0 else "     "
        if len(lead) + 1 + len(command) + 2 + len(why) <= console.width:
            console.print(f"{lead} [bold]{escape(command)}[/]  [dim]{escape(why)}[/]")
        else:
            console.print(f"{lead} [bold]{escape(command)}[/]", overflow="ignore", crop=False)
            if why:
                indented(f"[dim]{escape(why)}[/]", indent=8)


def _interval(inc: dict[str, Any], sep: str = " ") -> str:
    if inc.get("value") is None:
        return "–"
    return f"{inc['value']:.3f}{sep}[{fmt_float(inc.get('ci_low'))}, {fmt_float(inc.get('ci_high'))}]"


_VERDICT_STYLE = {"coherent": "green", "mixed": "yellow", "hotmess": "red"}


def _verdict(result: dict[str, Any]) -> str:
    """:func:`hotmess.verdict.verdict` as console markup, the word in its colour."""
    v = verdict(result)
    return f"[{_VERDICT_STYLE[v.level]}]{v.word}[/]{v.rest}" if v.level else v.rest


def _group_rows_table(groups: dict[str, dict[str, Any]], title: str) -> RichTable:
    """Many groups (``--by task``): a row per group, the key figures as columns."""
    table = RichTable(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD,
                      pad_edge=False, show_edge=False)
    names = [str(name) for name in groups]
    table.add_column("group", no_wrap=True, min_width=min(24, max(len(n) for n in names)))
    for col in ("runs", "succ.", "bias²", "var.", "incoherence [95% CI]", "fail. cons."):
        table.add_column(col, justify="right", no_wrap=col != "incoherence [95% CI]")
    for name, d in groups.items():
        table.add_row(escape(str(name)), str(d["n_runs"]), fmt_float(d["success_rate"]), fmt_float(d["bias"]),
                      fmt_float(d["variance"]), _interval(d["incoherence"], " "), fmt_float(d["failure_consistency"]))
    return table


def _summary_table(groups: dict[str, dict[str, Any]], title: str) -> RichTable:
    names = [str(name) for name in groups]
    if len(names) > 4:  # side by side they would not fit: one row each
        return _group_rows_table(groups, title)
    table = RichTable(title=title, title_justify="left", header_style="bold")
    table.add_column("", no_wrap=True)
    # Narrow terminals: group names lose the prefix they share, intervals go under their value.
    narrow = console.width < 30 + sum(max(len(n), 21) + 3 for n in names)
    headers = without_shared_prefix(names) if narrow else {n: n for n in names}
    for name in names:
        table.add_column(escape(headers[name]), justify="right")

    def row(label: str, fn: Any) -> None:
        table.add_row(label, *(fn(d) for d in groups.values()))

    row("tasks / runs", lambda d: f"{d['n_tasks']} / {d['n_runs']}")
    row("runs per task (min, med.)", lambda d: f"{d.get('min_runs_per_task')}, {fmt_float(d.get('median_runs_per_task'), 0)}")
    row("success (share of runs)", lambda d: fmt_float(d["success_rate"]))
    ks = sorted({int(k) for d in groups.values() for k in d["pass_hat_k"]})
    for k in [k for k in ks if k in (1, 2, 4, 8, 16) or k == ks[-1]]:
        label = "pass^1 (mean over tasks)" if k == 1 else f"pass^{k}"
        row(label, lambda d, k=k: fmt_float(d["pass_hat_k"].get(str(k))))
    row("bias² (mean per task)", lambda d: fmt_float(d["bias"]))
    row("variance (mean per task)", lambda d: fmt_float(d["variance"]))
    row("error (mean per task)", lambda d: fmt_float(d["error"]))
    sep = "\n" if narrow else " "
    row("[bold]incoherence [95% CI][/]", lambda d: f"[bold]{_interval(d['incoherence'], sep)}[/]")
    row("failure consistency", lambda d: fmt_float(d["failure_consistency"]))
    row("failure diversity", lambda d: fmt_float(d.get("failure_diversity")))
    return table


def _reading_notes(groups: dict[str, dict[str, Any]]) -> list[str]:
    """How the printed figures relate, said once under the table."""
    notes = []
    if any("1" in d["pass_hat_k"] for d in groups.values()):
        notes.append(
            "success weighs every run, pass^1 every task: they differ when tasks have different "
            "numbers of runs"
        )
    notes.append(
        "incoherence is bounded by success: per task p ≤ incoherence ≤ (1 + p)/2 under Brier, "
        "whatever the failures look like; failure diversity (1 − failure consistency) reads the "
        "failures alone"
    )
    first = next(iter(groups.values()))
    if not first.get("correction", True):
        notes.append("plug-in figures (--plug-in): variance low by (n−1)/n, bias² high by as much")
    return notes


def print_analysis(
    result: dict[str, Any], db: str, show_tasks: bool = True, pooled_agents: Sequence[str] = ()
) -> None:
    grouped = "groups" in result
    if pooled_agents:
        names = ", ".join(short(a, 30) for a in pooled_agents[:4]) + (", ..." if len(pooled_agents) > 4 else "")
        console.print(
            f"[bold]{len(pooled_agents)} agents in this database[/] ({escape(names)}), pooled below.\n"
            "[bold]hotmess analyze --by agent[/] shows them apart."
        )
    groups = result["groups"] if grouped else {"all runs": result}
    method = next(iter(groups.values()))["incoherence"].get("method", "")
    console.print(_summary_table(groups, f"{escape(db)} · {method} decomposition · outcomes: {next(iter(groups.values())).get('outcome')}"))
    for name, d in groups.items():
        indented(f"{escape(str(name))}: {_verdict(d)}")
    if grouped:
        for diff in result.get("differences", []):
            indented(
                f"incoherence {escape(str(diff.get('a')))} − {escape(str(diff.get('b')))}: "
                f"{fmt_float(diff.get('value'))} [{fmt_float(diff.get('ci_low'))}, {fmt_float(diff.get('ci_high'))}]"
                f"  [dim]{'paired over shared tasks' if diff.get('paired') else 'no shared tasks: unpaired'}"
                f", {fmt_p(diff.get('p_value'))}[/]"
            )
    for note in _reading_notes(groups):
        indented(f"[dim]{escape(note)}[/]")
    if show_tasks and not grouped:
        # Task ids stay whole at 80 columns (up to 24 characters); the figures give way.
        table = RichTable(title="per task", title_justify="left", header_style="bold",
                          box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        longest = max((len(str(t["task_id"])) for t in result["tasks"]), default=4)
        table.add_column("task", no_wrap=True, min_width=min(24, max(4, longest)))
        for col in ("n", "succ", "bias²", "var.", "error", "incoh.", "clust.", "fail. cons."):
            table.add_column(col, justify="right")
        for t in result["tasks"]:
            successes = "–" if t["successes"] is None else str(t["successes"])
            table.add_row(escape(short(t["task_id"], 24)), str(t["n"]), successes,
                          fmt_float(t["bias"]), fmt_float(t["variance"]), fmt_float(t["error"]),
                          fmt_float(t["incoherence"]), str(t["outcome_clusters"]),
                          fmt_float(t["failure_consistency"]))
        console.print(table)
    warnings = list(result.get("warnings", []))
    if grouped:
        for d in groups.values():
            warnings += [w for w in d.get("warnings", []) if w not in warnings]
    for w in warnings:
        err_console.print(f"[yellow]warning:[/] {escape(w)}")
