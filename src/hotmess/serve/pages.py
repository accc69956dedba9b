"""The web UI's pages: result dicts in, HTML out (server-rendered, no remote resource; the one
script is the package's own live-update poller, ``/live.js``, see :mod:`hotmess.serve.views`).

Every string that came from an agent (task ids, agent names, outcomes, step inputs, errors) goes
through :func:`hotmess.report.html.esc` (quotes too), and every URL built from one is quoted.
The sections the HTML report has (verdict, clusters, drift, step trees) are the report's own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from hotmess.durations import duration_text, seconds_text
from hotmess.report import html as report
from hotmess.report.html import esc

__all__ = ["drift_page", "groups_table", "message_page", "overview_page", "run_page", "runs_page", "task_page"]

_EXTRA_CSS = """
nav.top{border-bottom:1px solid #ddd;padding:.3rem 0;margin-bottom:.6rem}nav.top a{margin-right:1rem}
form.filters input,form.filters select{margin-right:.5rem}
.bar{fill:#4477aa}.bar.error{fill:#c0261d}.lane{fill:#f4f4f4}
"""


def run_url(run_id: Any) -> str:
    return "/runs/" + quote(str(run_id), safe="")


def task_url(task_id: Any) -> str:
    return "/tasks/" + quote(str(task_id), safe="")


def _time(ns: Any) -> str:
    if not ns:
        return ""
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else esc(value)


def _short(text: Any, width: int) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def page(title: str, body: str, *, refresh: int | None = None, json_link: str | None = None,
         live: float | None = 2) -> str:
    """``live``: seconds between the live-update script's polls (None: no script)."""
    nav = " ".join(f'<a href="{href}">{label}</a>' for href, label in (
        ("/", "overview"), ("/runs", "runs"), ("/compare", "compare"), ("/horizon", "horizon"),
        ("/goals", "goals"), ("/drift", "drift")))
    if json_link:
        nav += f' <a class="small" href="{esc(json_link)}">JSON</a>'
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{esc(title)} · hotmess</title><style>{report.CSS}{_EXTRA_CSS}</style>"
        + (f'<script src="/live.js" data-every="{float(live):g}" defer></script>' if live else "")
        + "</head>"
        f'<body><nav class="top"><b>hotmess</b> {nav}</nav><h1>{esc(title)}</h1>{body}'
        '<footer class="small"><p>hotmess serve: no remote resources; updates as runs arrive.</p></footer></body></html>\n'
    )


def with_json(path: str, params: Mapping[str, Any]) -> str:
    query = {k: v for k, v in params.items() if v not in (None, "") and k != "format"}
    return path + "?" + urlencode({**query, "format": "json"})


def message_page(title: str, message: str) -> str:
    return page(title, f'<p class="note">{esc(message)}</p>')


# ---------------------------------------------------------------------------- overview


def groups_table(groups: Mapping[str, Mapping[str, Any]], by: str = "agent") -> str:
    """One row per group (agent or model): verdict, incoherence with its interval, success."""
    rows = []
    for name, d in groups.items():
        level, text = report.verdict_text(d)
        inc = d.get("incoherence") or {}
        interval = (f"[{num(inc.get('ci_low'))}, {num(inc.get('ci_high'))}]"
                    if inc.get("ci_low") is not None else "–")
        cell = f'<a href="{esc("/runs?" + urlencode({"agent": name}))}">{esc(name)}</a>' if by == "agent" else esc(name)
        rows.append(
            f'<tr><td>{cell}</td><td class="{esc(level)}">{esc(text)}</td>'
            f'<td class="num">{num(inc.get("value"))}</td><td class="num">{interval}</td>'
            f'<td class="num">{num(d.get("success_rate"))}</td><td class="num">{num(d.get("failure_consistency"))}</td>'
            f'<td class="num">{esc(d.get("n_tasks"))}</td><td class="num">{esc(d.get("n_runs"))}</td></tr>'
        )
    return (
        f'<table class="agents"><tr><th>{esc(by)}</th><th>verdict</th><th class="num">incoherence</th>'
        '<th class="num">95% interval</th><th class="num">success</th><th class="num">failure consistency</th>'
        '<th class="num">tasks</th><th class="num">runs</th></tr>' + "".join(rows) + "</table>"
    )


#: Tasks the overview links to at most (a production agent may have tens of thousands).
OVERVIEW_TASKS = 500


def overview_page(by_agent: Mapping[str, Any], database: str, n_runs: int, refresh: int | None,
                  activity: str = "") -> str:
    """``activity``: the runs-over-time figure (:func:`hotmess.serve.views.activity_figure`)."""
    groups = dict(by_agent.get("groups", {}))
    table = groups_table(groups)
    tasks = task_links(groups)
    body = (
        f'<p class="small">{esc(database)} · {n_runs} runs · incoherence is the share of error that is '
        "variance (failures each their own way); failure consistency the chance two failed runs of a task "
        "fail the same way.</p>" + table + activity + tasks
    )
    return page("Overview", body, refresh=refresh, json_link="/?format=json")


def task_links(groups: Mapping[str, Mapping[str, Any]]) -> str:
    """The overview's list of tasks, each with its runs over every group, the first
    ``OVERVIEW_TASKS`` of them linked and the rest counted."""
    seen: dict[str, int] = {}
    for d in groups.values():
        for t in d.get("tasks", []):
            seen[str(t["task_id"])] = seen.get(str(t["task_id"]), 0) + int(t.get("n") or 0)
    if not seen:
        return ""
    items = "".join(f'<li><a href="{esc(task_url(t))}">{esc(t)}</a> <span class="small">{n} runs</span></li>'
                    for t, n in list(seen.items())[:OVERVIEW_TASKS])
    more = len(seen) - OVERVIEW_TASKS
    rest = (f'<p class="small">and {more:,} more tasks: the <a href="/runs">runs</a> table finds any by its id '
            "(the task filter), and /tasks/ID is its page.</p>" if more > 0 else "")
    return f"<h2>Tasks</h2><ul>{items}</ul>{rest}"


# ---------------------------------------------------------------------------- runs


def runs_page(rows: Sequence[Mapping[str, Any]], params: Mapping[str, Any], agents: Sequence[str],
              following: str | None, paged: bool, refresh: int | None, note: str | None = None) -> str:
    """``following``: the cursor of the next page (None on the last); ``paged``: not the first."""
    first = not paged
    def field(name: str, label: str) -> str:
        return f'<label>{label} <input name="{name}" value="{esc(params.get(name) or "")}"></label>'

    status_opts = "".join(
        f'<option value="{s}"{" selected" if params.get("status") == s else ""}>{s or "any"}</option>'
        for s in ("", "ok", "error", "incomplete"))
    agent_opts = '<option value="">any</option>' + "".join(
        f'<option value="{esc(a)}"{" selected" if params.get("agent") == a else ""}>{esc(a)}</option>' for a in agents)
    form = (
        '<form class="filters" method="get" action="/runs">'
        f'<label>agent <select name="agent">{agent_opts}</select></label>{field("task", "task")}'
        f'<label>status <select name="status">{status_opts}</select></label>{field("q", "search outcome")}'
        f'{field("steps", "search steps")}{field("since", "since")}{field("until", "until")}'
        + (f'<input type="hidden" name="cluster" value="{esc(params["cluster"])}">' if params.get("cluster") else "")
        + '<button type="submit">filter</button></form>'
        + (f'<p class="small">outcome cluster <span class="mono">{esc(_short(params["cluster"], 200))}</span> of task '
           f'{esc(params.get("task"))} · <a href="/runs?{esc(urlencode({"task": params.get("task") or ""}))}">all its runs</a></p>'
           if params.get("cluster") else "")
        + (f'<p class="note">{esc(note)}</p>' if note else "")
    )
    body_rows = "".join(
        f'<tr><td class="mono"><a href="{esc(run_url(r["run_id"]))}">{esc(str(r["run_id"])[:12])}</a></td>'
        f'<td class="mono"><a href="{esc(task_url(r["task_id"]))}">{esc(r["task_id"])}</a></td>'
        f'<td>{esc(r.get("agent"))}</td><td>{esc(r.get("status"))}</td><td>{_success(r.get("success"))}</td>'
        f'<td class="num">{esc(r.get("n_steps"))}</td><td>{_time(r.get("start_ns"))}</td>'
        f'<td class="mono">{esc(_short(r.get("outcome"), 120))}</td></tr>'
        for r in rows
    )
    table = (
        '<table class="runs"><tr><th>run</th><th>task</th><th>agent</th><th>status</th><th>success</th>'
        '<th class="num">steps</th><th>started (UTC)</th><th>outcome</th></tr>' + body_rows + "</table>"
        if rows else '<p class="note">no runs match</p>'
    )
    base = {k: v for k, v in params.items() if v not in (None, "") and k not in ("after", "format")}
    links = []
    if not first:
        links.append(f'<a href="/runs?{esc(urlencode(base))}">← newest</a>')
    if following:
        links.append(f'<a href="/runs?{esc(urlencode({**base, "after": following}))}">older →</a>')
    pager = f'<p>{" ".join(links)}</p>'
    return page("Runs", form + table + pager, refresh=refresh, json_link=with_json("/runs", params))


def _success(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return '<span class="unknown">?</span>'
    return '<span class="ok">✓</span>' if value else '<span class="fail">✗</span>'


# ---------------------------------------------------------------------------- one run


def run_page(detail: Mapping[str, Any]) -> str:
    run, steps = detail["run"], detail["steps"]
    facts = [
        ("run", esc(run["run_id"])),
        ("task", f'<a href="{esc(task_url(run["task_id"]))}">{esc(run["task_id"])}</a>'),
        ("agent", esc(run.get("agent"))), ("instance", esc(run.get("instance"))), ("source", esc(run.get("source"))),
        ("status", esc(run.get("status"))), ("success", _success(run.get("success"))),
        ("started (UTC)", _time(run.get("start_ns"))), ("duration", _duration(run.get("start_ns"), run.get("end_ns"))),
        ("steps", esc(run.get("n_steps"))), ("tool calls", esc(run.get("n_tool_calls"))),
        ("tokens in / out", f'{esc(run.get("input_tokens"))} / {esc(run.get("output_tokens"))}'),
    ]
    meta = '<table class="meta">' + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in facts) + "</table>"
    flat = _flatten(steps)
    tree = report.steps_section([run], {run["run_id"]: flat}).replace('<details class="run"', '<details class="run" open', 1)
    body = meta + "<h2>Timeline</h2>" + _waterfall(run, flat) + tree
    return page(f"Run {str(run['run_id'])[:16]}", body, json_link=f"{run_url(run['run_id'])}?format=json")


def _flatten(forest: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(nodes: Sequence[Mapping[str, Any]]) -> None:
        for n in nodes:
            out.append({k: v for k, v in n.items() if k != "children"})
            walk(n.get("children", []))

    walk(forest)
    return sorted(out, key=lambda s: s.get("step_index", 0))


def _duration(start: Any, end: Any) -> str:
    return duration_text(start, end) or "–"


def _waterfall(run: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> str:
    """The steps as bars on the run's time axis (inline SVG: attributes, no script)."""
    timed = [s for s in steps if s.get("start_ns")][: report.MAX_STEPS_PER_RUN]
    if not timed:
        return '<p class="small">no step timings</p>'
    t0 = min([run.get("start_ns") or timed[0]["start_ns"], *(s["start_ns"] for s in timed)])
    t1 = max([run.get("end_ns") or 0, *((s.get("end_ns") or s["start_ns"]) for s in timed)])
    span = max(t1 - t0, 1)
    width, label_w, row_h = 900, 260, 18
    rows = []
    for i, s in enumerate(timed):
        x = label_w + (s["start_ns"] - t0) / span * (width - label_w)
        w = max(((s.get("end_ns") or s["start_ns"]) - s["start_ns"]) / span * (width - label_w), 1.5)
        y = i * row_h
        label = s.get("goal") if s.get("kind") == "goal" else (s.get("tool") or s.get("name"))
        name = f'{"· " * max(int(s.get("depth") or 1) - 1, 0)}{s.get("kind")} {_short(label, 30)}'
        css = "bar error" if s.get("error") else "bar"
        rows.append(
            f'<rect class="lane" x="{label_w}" y="{y + 2}" width="{width - label_w}" height="{row_h - 4}"/>'
            f'<rect class="{css}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}">'
            f"<title>{esc(s.get('name'))}: {_duration(s['start_ns'], s.get('end_ns'))}</title></rect>"
            f'<text x="2" y="{y + row_h - 5}" font-size="11">{esc(name)}</text>'
        )
    height = len(timed) * row_h
    return (f'<figure><svg class="plot waterfall" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}">{"".join(rows)}</svg>'
            f'<figcaption class="small">0 to {seconds_text(span / 1e9)}</figcaption></figure>')


# ---------------------------------------------------------------------------- task, drift


def task_page(task_id: str, analysis: Mapping[str, Any] | None, runs: Sequence[Mapping[str, Any]],
              note: str | None, clusters: Sequence[Mapping[str, Any]] = ()) -> str:
    """``clusters``: the task's exact-outcome clusters (``cluster`` id, ``size``, ``example``),
    each linked to the runs table filtered to its runs."""
    body = ""
    if analysis is not None:
        agents = sorted({str(r.get("agent")) for r in runs})
        groups = dict(analysis["groups"]) if "groups" in analysis else {
            agents[0] if len(agents) == 1 else "all runs": analysis}
        facts = []
        for name, d in groups.items():
            task = (d.get("tasks") or [{}])[0]
            facts.append(
                f'<li>{esc(name)}: bias² {num(task.get("bias"))} · variance {num(task.get("variance"))} · '
                f'error {num(task.get("error"))} · {esc(task.get("n"))} runs, {esc(task.get("successes"))} '
                "successes</li>")
        body += f"<ul>{''.join(facts)}</ul>" + report.clusters_section(groups)
    if note:
        body += f'<p class="note">{esc(note)}</p>'
    if clusters:
        links = "".join(
            f'<li><a class="cluster" href="{esc("/runs?" + urlencode({"task": task_id, "cluster": c["cluster"]}))}">'
            f'{esc(c["size"])} runs</a> <span class="mono">{esc(_short(c.get("example"), 120))}</span></li>'
            for c in clusters[:100])
        body += f"<h2>Runs in each outcome cluster</h2><ul>{links}</ul>"
    refs = sorted({str(r["reference"]) for r in runs if r.get("reference")})
    if refs:
        body += "<h2>Reference</h2>" + "".join(f"<pre>{esc(_short(r, 2000))}</pre>" for r in refs[:3])
    items = "".join(
        f'<tr><td class="mono"><a href="{esc(run_url(r["run_id"]))}">{esc(str(r["run_id"])[:12])}</a></td>'
        f'<td>{esc(r.get("agent"))}</td><td>{esc(r.get("status"))}</td><td>{_success(r.get("success"))}</td>'
        f'<td class="mono">{esc(_short(r.get("outcome"), 120))}</td></tr>' for r in runs[:500])
    body += ("<h2>Runs</h2><table><tr><th>run</th><th>agent</th><th>status</th><th>success</th><th>outcome</th></tr>"
             + items + "</table>")
    return page(f"Task {_short(task_id, 80)}", body, json_link=f"{task_url(task_id)}?format=json")


def drift_page(result: Mapping[str, Any] | str, window: str, by: str | None = None) -> str:
    checked = " checked" if by == "agent" else ""
    form = (f'<form class="filters" method="get" action="/drift"><label>window <input name="window" '
            f'value="{esc(window)}"></label><label><input type="checkbox" name="by" value="agent"{checked}> '
            'per agent</label> <button type="submit">show</button></form>')
    if isinstance(result, str):
        series: Any = result
    else:
        series = dict(result["groups"]) if "groups" in result else {"all runs": result}
    return page("Drift over time", form + report.drift_section(series),
                json_link=with_json("/drift", {"window": window, "by": by}))
