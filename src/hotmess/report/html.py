"""The HTML report: plain result dicts in, one self-contained HTML page out.

:func:`build_report` renders what the analyzers computed; it computes nothing itself and never
touches SQLite or OpenTelemetry. The page needs no network: plots are inline SVG, the style is a
short inline stylesheet, there is no script, and a Content-Security-Policy forbids scripts and
remote loads, so a page that somehow carried a ``<script>`` still could not run it. Every text
that came from an agent or a log (task ids, outcomes, tool arguments, errors) is escaped with
:func:`html.escape` (quotes too) before it enters the page.

The input is one dict (see :func:`build_report`); a section whose result is missing, or has too
little data to say anything, is rendered with a note saying so instead of failing.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hotmess.report import plots
from hotmess.tables import step_forest
from hotmess.verdict import verdict

#: Characters of a step's input/output/error shown in a step tree.
FIELD_CHARS = 2000
#: Steps shown per run in its step tree.
MAX_STEPS_PER_RUN = 300
#: Tasks listed in the outcome-cluster tables, and clusters per task.
MAX_CLUSTER_TASKS = 200
MAX_CONTEXT_CHARS = 2000  # a task's instruction or reference, shown folded beside its clusters
MAX_CLUSTERS_PER_TASK = 5
OUTCOME_CHARS = 120


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1100px;padding:1rem 1.5rem;color:#222}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.meta td:first-child{font-weight:600}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4rem .7rem;margin:.6rem 0}
.warning{color:#8a5a00}
.coherent{color:#1b7a1b;font-weight:600}.mixed{color:#9a6b00;font-weight:600}.hotmess{color:#c0261d;font-weight:600}
.ok{color:#1b7a1b}.fail{color:#c0261d}.unknown{color:#777}
code,pre,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:12px}
pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;padding:.3rem .5rem;margin:.2rem 0;max-height:16rem;overflow:auto}
pre.error{background:#fdecea}
figure{margin:.6rem 0}svg.plot{max-width:100%;height:auto}
details{margin:.15rem 0 .15rem .2rem}details details{margin-left:1.2rem}
summary{cursor:pointer}summary .kind{font-weight:600}
details.run{border:1px solid #ddd;padding:.3rem .5rem;margin:.5rem 0}
details.run:target{border-color:#4477aa;box-shadow:0 0 0 2px #4477aa33}
.small{font-size:12px;color:#555}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def esc(value: Any) -> str:
    """Text for the page: ``None`` is empty, everything else is escaped (quotes too)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _short(text: Any, width: int) -> str:
    if text is None:
        return ""
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _interval(inc: Mapping[str, Any]) -> str:
    if inc.get("value") is None:
        return "–"
    return f"{_num(inc['value'])} [{_num(inc.get('ci_low'))}, {_num(inc.get('ci_high'))}]"


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _success_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<td class="unknown">?</td>'
    return '<td class="ok">yes</td>' if value else '<td class="fail">no</td>'


def _time(ns: Any) -> str:
    if not ns:
        return ""
    return _dt.datetime.fromtimestamp(ns / 1e9, tz=_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def verdict_text(result: Mapping[str, Any]) -> tuple[str, str]:
    """``(css class, sentence)``: the terminal's verdict wording (``hotmess analyze``) as plain text."""
    v = verdict(result)
    return v.level, v.text


def run_anchor(run_id: Any) -> str:
    return "run-" + esc(run_id)


# ---------------------------------------------------------------------------- sections


def _header(data: Mapping[str, Any], agents: Sequence[str]) -> str:
    analysis = data["analysis"]
    generated = data.get("generated") or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = [
        ("database", esc(data.get("database", ""))),
        ("runs", f"{analysis['n_runs']}" + (f" (+{analysis['n_incomplete']} incomplete, left out)" if analysis.get("n_incomplete") else "")),
        ("tasks", esc(analysis["n_tasks"])),
        ("agents", ", ".join(esc(a) for a in agents) or "–"),
        ("outcomes compared", f"{esc(analysis.get('outcome'))} · {esc(analysis['incoherence'].get('method'))} decomposition"),
        ("generated", esc(generated)),
    ]
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    toc = " · ".join(
        f'<a href="#{s}">{label}</a>'
        for s, label in (
            ("verdict", "verdict"), ("bias-variance", "bias and variance"), ("clusters", "outcome clusters"),
            ("horizon", "run length"), ("goals", "goals over steps"), ("drift", "drift over time"),
            ("runs", "runs"),
        )
    )
    return (
        f"<header><h1>{esc(data.get('title') or 'hotmess report')}</h1>"
        f'<table class="meta">{body}</table><nav class="small">{toc}</nav></header>'
    )


def _groups(data: Mapping[str, Any], agents: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """What the verdict puts side by side: each agent when there are several, else all runs."""
    by_agent = data.get("by_agent")
    if by_agent and len(by_agent.get("groups", {})) > 1:
        return dict(by_agent["groups"])
    return {agents[0] if len(agents) == 1 else "all runs": data["analysis"]}


def _verdict_section(data: Mapping[str, Any], groups: Mapping[str, Mapping[str, Any]]) -> str:
    names = list(groups)
    head = "".join(f'<th class="num">{esc(n)}</th>' for n in names)

    def row(label: str, fn: Callable[[Mapping[str, Any]], str], strong: bool = False) -> str:
        cells = "".join(f'<td class="num">{"<b>" if strong else ""}{fn(d)}{"</b>" if strong else ""}</td>' for d in groups.values())
        return f"<tr><th>{label}</th>{cells}</tr>"

    rows = [
        row("<b>incoherence</b> [95% interval]", lambda d: _interval(d["incoherence"]), strong=True),
        row("success rate (share of runs)", lambda d: _num(d.get("success_rate"))),
        row("tasks / runs", lambda d: f"{d['n_tasks']} / {d['n_runs']}"),
        row("runs per task (min, median)", lambda d: f"{esc(d.get('min_runs_per_task'))}, {_num(d.get('median_runs_per_task'), 0)}"),
        row("bias² (mean per task)", lambda d: _num(d.get("bias"))),
        row("variance (mean per task)", lambda d: _num(d.get("variance"))),
        row("error (mean per task)", lambda d: _num(d.get("error"))),
        row("failure consistency", lambda d: _num(d.get("failure_consistency"))),
        row("failure diversity", lambda d: _num(d.get("failure_diversity"))),
    ]
    out = [f'<table class="verdict"><tr><th></th>{head}</tr>{"".join(rows)}</table>', "<ul>"]
    for name, d in groups.items():
        css, sentence = verdict_text(d)
        out.append(f'<li>{esc(name)}: <span class="{css}">{esc(sentence)}</span></li>')
    out.append("</ul>")
    out.append(
        '<p class="note">Incoherence is bounded by success: a task with success rate p has '
        "p ≤ incoherence ≤ (1 + p)/2 under Brier, whatever its failures look like. Failure "
        "diversity (1 − failure consistency) is read over the failures alone, which success "
        "cannot move: read the two together.</p>"
    )
    for diff in (data.get("by_agent") or {}).get("differences", []) if len(groups) > 1 else []:
        how = "paired over the tasks both share" if diff.get("paired") else "no shared tasks: unpaired"
        out.append(
            f"<p>incoherence {esc(diff.get('a'))} − {esc(diff.get('b'))}: <b>{_num(diff.get('value'))}</b> "
            f"[{_num(diff.get('ci_low'))}, {_num(diff.get('ci_high'))}] ({how})</p>"
        )
    if any(d["incoherence"].get("value") is not None for d in groups.values()):
        out.append(f'<figure id="plot-incoherence">{plots.incoherence_plot(groups)}</figure>')
    ks = _informative_ks(groups)
    if ks:
        out.append("<h3>pass^k: the chance that k runs of a task all succeed</h3>")
        kh = "".join(f'<th class="num">k={k}</th>' for k in ks)
        kr = "".join(
            f"<tr><th>{esc(n)}</th>" + "".join(f'<td class="num">{_num(d["pass_hat_k"].get(str(k)))}</td>' for k in ks) + "</tr>"
            for n, d in groups.items()
        )
        out.append(f'<div style="overflow-x:auto"><table class="passk"><tr><th></th>{kh}</tr>{kr}</table></div>')
        out.append(f'<figure id="plot-pass-hat-k">{plots.pass_hat_k_plot(groups)}</figure>')
    warnings: list[str] = list(data["analysis"].get("warnings", []))
    for d in groups.values():
        warnings += [w for w in d.get("warnings", []) if w not in warnings]
    out += [f'<p class="warning">warning: {esc(w)}</p>' for w in warnings]
    return _section("verdict", "The verdict", "".join(out))


def _informative_ks(groups: Mapping[str, Mapping[str, Any]]) -> list[int]:
    """The k worth a column: up to the first k where every group's pass^k is below 0.001 (the
    curve below shows them all)."""
    ks = sorted({int(k) for d in groups.values() for k in d.get("pass_hat_k", {})})
    shown = []
    for k in ks:
        shown.append(k)
        values = [d["pass_hat_k"].get(str(k)) for d in groups.values()]
        if all(v is None or v < 0.001 for v in values):
            break
    return shown


def _bias_variance_section(groups: Mapping[str, Mapping[str, Any]]) -> str:
    series = {name: d.get("tasks", []) for name, d in groups.items()}
    n_tasks = len({t["task_id"] for tasks in series.values() for t in tasks})
    if not n_tasks:
        return _section("bias-variance", "Bias and variance per task", _note("not enough data: no tasks"))
    intro = (
        "<p>Each bar is one task's error split into <b>bias²</b> (a systematic miss: runs agree on "
        "a wrong outcome) and <b>variance</b> (runs scatter over different outcomes). Incoherence is "
        "the variance share of the total.</p>"
    )
    cut = _note(f"the first {plots.MAX_BAR_TASKS} of {n_tasks} tasks are drawn") if n_tasks > plots.MAX_BAR_TASKS else ""
    return _section(
        "bias-variance", "Bias and variance per task",
        intro + cut + f'<figure id="plot-bias-variance">{plots.bias_variance_plot(series)}</figure>',
    )


def _task_cell(task_id: Any, context: Mapping[str, Any] | None) -> str:
    """The task id, and under it (folded) what the task asked and what a right run produces."""
    if not context or not (context.get("instruction") or context.get("reference")):
        return esc(task_id)
    parts = []
    if context.get("instruction"):
        parts.append(f'<div class="small"><b>instruction</b><pre>{esc(str(context["instruction"])[:MAX_CONTEXT_CHARS])}</pre></div>')
    if context.get("reference"):
        parts.append(f'<div class="small"><b>reference</b><pre>{esc(str(context["reference"])[:MAX_CONTEXT_CHARS])}</pre></div>')
    return f'<details class="task-context"><summary>{esc(task_id)}</summary>{"".join(parts)}</details>'


def _clusters_section(groups: Mapping[str, Mapping[str, Any]], contexts: Mapping[str, Any] | None = None) -> str:
    out = [
        "<p>Runs of a task are grouped by outcome; each cluster shows how many runs landed there, "
        "whether that outcome is correct, and one example, cut where the task's examples differ. "
        "A task's id opens to its instruction and reference, when recorded.</p>"
    ]
    for name, d in groups.items():
        tasks = d.get("tasks", [])
        if len(groups) > 1:
            out.append(f"<h3>{esc(name)}</h3>")
        if not tasks:
            out.append(_note("not enough data: no tasks"))
            continue
        rows = []
        for t in tasks[:MAX_CLUSTER_TASKS]:
            clusters = t.get("clusters", [])
            shown = clusters[:MAX_CLUSTERS_PER_TASK] or [None]
            span = len(shown) + (1 if len(clusters) > MAX_CLUSTERS_PER_TASK else 0)
            first = (
                f'<td rowspan="{span}" class="mono">{_task_cell(t["task_id"], (contexts or {}).get(str(t["task_id"])))}</td>'
                f'<td rowspan="{span}" class="num">{esc(t["n"])}</td>'
                f'<td rowspan="{span}" class="num">{esc(t.get("successes") if t.get("successes") is not None else "?")}</td>'
                f'<td rowspan="{span}" class="num">{_num(t.get("incoherence"))}</td>'
                f'<td rowspan="{span}" class="num">{_num(t.get("failure_consistency"))}</td>'
            )
            for i, c in enumerate(shown):
                if c is None:
                    cells = '<td colspan="3" class="unknown">no clusters</td>'
                else:
                    correct = {True: '<td class="ok">correct</td>', False: '<td class="fail">wrong</td>'}.get(
                        c.get("correct"), '<td class="unknown">?</td>')
                    cells = f'<td class="num">{esc(c["size"])}</td>{correct}<td><pre>{esc(c.get("example"))}</pre></td>'
                rows.append(f"<tr>{first if i == 0 else ''}{cells}</tr>")
            if len(clusters) > MAX_CLUSTERS_PER_TASK:
                rest = clusters[MAX_CLUSTERS_PER_TASK:]
                rows.append(
                    f'<tr><td colspan="3" class="small">and {len(rest)} more clusters '
                    f"({sum(c['size'] for c in rest)} runs)</td></tr>"
                )
        out.append(
            '<table class="clusters"><tr><th>task</th><th class="num">runs</th><th class="num">successes</th>'
            '<th class="num">incoherence</th><th class="num">failure consistency</th>'
            '<th class="num">cluster size</th><th>verdict</th><th>example outcome</th></tr>'
            + "".join(rows) + "</table>"
        )
        if len(tasks) > MAX_CLUSTER_TASKS:
            out.append(_note(f"the first {MAX_CLUSTER_TASKS} of {len(tasks)} tasks are listed"))
    return _section("clusters", "Outcome clusters per task", "".join(out))


def _series(value: Any, section: str) -> tuple[dict[str, Mapping[str, Any]], str | None]:
    """A section's input as ``{series name: result dict}``, or a note saying why there is none."""
    if value is None:
        return {}, f"not available: this version of hotmess has no {section} analyzer"
    if isinstance(value, str):
        return {}, value
    if not isinstance(value, Mapping) or not value:
        return {}, "not enough data"
    return dict(value), None


def _bracket(interval: Any) -> str:
    """``[low, high]`` of a JSON interval pair, or nothing when it has none."""
    if not interval or any(v is None for v in interval):
        return ""
    return f"[{_num(interval[0])}, {_num(interval[1])}]"


def _horizon_section(value: Any) -> str:
    title = "Incoherence against run length"
    series, note = _series(value, "horizon")
    series = {n: r for n, r in series.items() if len({
        g["length_mean"] for g in r.get("groups", []) if g.get("incoherence") is not None and g.get("length_mean") is not None
    }) >= 2}
    if note or not series:
        return _section("horizon", title, _note(
            note or "not enough data: fewer than two groups of different run length with a defined "
                    "incoherence (every task's runs have about the same length)"))
    out = [
        "<p>Tasks sorted by their mean run length into equal-size groups; incoherence of each group "
        "with its interval. The paper behind hotmess found incoherence grows with length. A trend is "
        "called only where its 95% interval (a bootstrap over tasks of the grouping and the fit) excludes "
        "0. Incoherence is at least the success rate, so a success rate that changes with length moves it "
        "too; failure diversity (how often two failed runs of a task differ) is the curve success cannot "
        "drive. The median split compares each task's longer runs with its shorter ones, paired over "
        "tasks.</p>",
        f'<figure id="plot-horizon">{plots.horizon_plot(series)}</figure>',
        '<table><tr><th>series</th><th class="num">power-law slope [95% CI]</th><th>trend</th>'
        '<th class="num">failure diversity per doubling [95% CI]</th>'
        '<th class="num">success, shortest → longest group</th>'
        '<th class="num">longer − shorter runs of a task [95% CI]</th>'
        '<th class="num">failure diversity, longer − shorter</th></tr>',
    ]
    for name, r in series.items():
        split = r.get("median_split") or {}
        groups = [g for g in r.get("groups", []) if g.get("success_rate") is not None]
        success = f"{_num(groups[0]['success_rate'])} → {_num(groups[-1]['success_rate'])}" if len(groups) >= 2 else "–"
        out.append(
            f'<tr><td>{esc(name)}</td>'
            f'<td class="num">{_num(r.get("slope"))} {_bracket(r.get("slope_ci"))}</td>'
            f'<td>{esc(r.get("trend") or "not called")}</td>'
            f'<td class="num">{_num(r.get("diversity_slope"))} {_bracket(r.get("diversity_slope_ci"))}</td>'
            f'<td class="num">{success}</td>'
            f'<td class="num">{_num(split.get("difference"))} {_bracket(split.get("difference_ci"))}</td>'
            f'<td class="num">{_num(split.get("diversity_difference"))} {_bracket(split.get("diversity_difference_ci"))}</td></tr>'
        )
    out.append("</table>")
    warnings = sorted({w for r in series.values() for w in r.get("warnings", []) if w.startswith("across tasks")})
    out.extend(_note(w) for w in warnings)
    return _section("horizon", title, "".join(out))


def _goals_section(value: Any) -> str:
    title = "Goal coherence over steps"
    series, note = _series(value, "goals")
    series = {n: r for n, r in series.items() if r.get("positions")}
    if note or not series:
        return _section("goals", title, _note(note or "not enough data: no intermediate goals recorded"))
    out = [
        "<p>Each step's intermediate goal (an explicit goal record, else its tool call), aligned by "
        "step position across the runs of a task: how far the runs' goals spread at each position.</p>",
        f'<figure id="plot-goals">{plots.goals_plot(series)}</figure>',
        "<h3>Goal drift inside runs</h3><p>How fast a run's goal moves away from its first goal "
        "(slope of the distance per goal step, runs with at least three goals).</p>"
        '<table><tr><th>series</th><th class="num">mean slope</th><th class="num">runs</th>'
        '<th class="num">drifting runs</th><th>largest drift</th></tr>',
    ]
    for name, r in series.items():
        drift = r.get("goal_drift") or {}
        threshold = f" (slope &gt; {_num(drift['threshold'], 2)})" if drift.get("threshold") is not None else ""
        listed = ", ".join(
            f'<a class="mono" href="#{run_anchor(d.get("run_id"))}">{esc(_short(d.get("run_id"), 12))}</a> '
            f'{_num(d.get("slope"), 2)}'
            for d in (drift.get("drifting") or [])[:5]
        )
        out.append(f'<tr><td>{esc(name)}</td><td class="num">{_num(drift.get("mean_slope"), 4)}</td>'
                   f'<td class="num">{esc(drift.get("runs"))}</td>'
                   f'<td class="num">{esc(drift.get("n_drifting", ""))}{threshold}</td><td>{listed}</td></tr>')
    out.append("</table>")
    return _section("goals", title, "".join(out))


def _drift_section(value: Any) -> str:
    title = "Drift over time"
    series, note = _series(value, "drift")
    several = len(series) > 1
    single = [n for n, r in series.items() if len(r.get("windows", [])) < 2]
    series = {n: r for n, r in series.items() if len(r.get("windows", [])) >= 2}
    if note or not series:
        return _section("drift", title, _note(note or "not enough data: the runs fall in a single time window"))
    out = [
        "<p>Runs in consecutive time windows: success and incoherence per window, and the windows "
        "where behaviour changed, found by a scan over the whole series that compares each task's "
        "outcomes before and after every split (so a change in the mix of tasks is reported apart, "
        "as a mix change, never as a behaviour change). Each window's Jensen-Shannon divergence from "
        "the window before and from the baseline window is descriptive: its p-value is uncorrected.</p>",
        f'<figure id="plot-drift">{plots.drift_plot(series)}</figure>',
    ]
    first = next(iter(series.values()))
    if first.get("test"):
        out.append(f'<p class="small">window {esc(first.get("window"))} · false-alarm level {esc(first.get("alpha"))} '
                   f'over every flag · {esc(first["test"])}</p>')
    if single:
        out.append(_note(", ".join(single) + (" has" if len(single) == 1 else " have")
                         + " all runs in one window: nothing to compare"))
    for name, r in series.items():
        if several:
            out.append(f"<h3>{esc(name)}</h3>")
        out.append(_change_points(r))
        rows = "".join(
            f'<tr><td class="num">{i}</td><td>{esc(w.get("start"))}</td><td class="num">{esc(w.get("n_runs"))}</td>'
            f'<td class="num">{_num(w.get("success_rate"))}</td><td class="num">{_num(w.get("incoherence"))}</td>'
            f'<td class="num">{_num(w.get("js_divergence"))}</td><td class="num">{_num(w.get("p_value"))}</td>'
            f'<td class="num">{"baseline" if w.get("is_baseline") else _num(w.get("js_baseline"))}</td>'
            f'<td>{_drift_flags(w)}</td></tr>'
            for i, w in enumerate(r["windows"])
        )
        out.append(
            "<table><tr><th class=num>#</th><th>start</th><th class=num>runs</th><th class=num>success</th>"
            "<th class=num>incoherence</th><th class=num>JS vs before</th><th class=num>p</th>"
            "<th class=num>JS vs baseline</th><th></th></tr>" + rows + "</table>"
        )
    return _section("drift", title, "".join(out))


def _change_points(r: Mapping[str, Any]) -> str:
    """The change points of one series, each with what changed across it."""
    points, mix = r.get("change_points") or [], r.get("mix_change_points") or []
    if not points and not mix:
        return (f'<p class="pass">No behaviour change in {len(r.get("windows", []))} windows '
                f'(false-alarm level {esc(r.get("alpha"))}).</p>')
    items = []
    for c in points:
        where = f'window {c["window"]}' + (f' (interval {c["low"]}–{c["high"]})' if c["low"] != c["high"] else "")
        changed = []
        for label, key in (("new", "clusters_appeared"), ("gone", "clusters_vanished")):
            for k in c.get(key) or []:
                tasks = k.get("task_ids") or []
                in_tasks = esc(tasks[0]) if len(tasks) == 1 else f"{len(tasks)} tasks"
                changed.append(f'{label}: <span class="mono">{esc(_short(k["cluster"], 60))}</span> '
                               f'({in_tasks}, {esc(k["n_runs"])} runs)')
        detail = "".join(f"<li>{x}</li>" for x in changed)
        items.append(
            f'<li><b class="fail">behaviour changed</b> from {esc(c["start"])}, {where}, p = {_num(c["p_value"])}: '
            f'success {_num(c["success_before"])} → {_num(c["success_after"])}'
            + (f"<ul>{detail}</ul>" if detail else "") + "</li>"
        )
    for c in mix:
        items.append(f'<li><b>mix of tasks changed</b> from {esc(c["start"])}, window {c["window"]}, '
                     f'p = {_num(c["p_value"])}: the traffic changed, not how the agent behaves on a task</li>')
    return "<ul>" + "".join(items) + "</ul>"


def _drift_flags(w: Mapping[str, Any]) -> str:
    flags = []
    if w.get("changed"):
        flags.append("<b class=fail>behaviour changed</b>")
    if w.get("mix_changed"):
        flags.append("<b>mix changed</b>")
    return " · ".join(flags)


def _runs_section(runs: Sequence[Mapping[str, Any]], total: int) -> str:
    if not runs:
        return _section("runs", "Runs", _note("no runs"))
    rows = "".join(
        f'<tr><td class="mono"><a href="#{run_anchor(r["run_id"])}">{esc(_short(r["run_id"], 12))}</a></td>'
        f'<td class="mono">{esc(_short(r.get("task_id"), 40))}</td><td>{esc(r.get("agent"))}</td>'
        f'<td>{esc(r.get("instance"))}</td><td>{esc(r.get("status"))}</td>{_success_cell(r.get("success"))}'
        f'<td class="num">{esc(r.get("n_steps"))}</td><td class="num">{esc(r.get("n_tool_calls"))}</td>'
        f'<td class="small">{_time(r.get("start_ns"))}</td>'
        f'<td class="mono">{esc(_short(r.get("outcome"), OUTCOME_CHARS))}</td></tr>'
        for r in runs
    )
    cut = _note(f"the first {len(runs)} of {total} runs are listed, with their step trees") if total > len(runs) else ""
    return _section(
        "runs", "Runs",
        cut + '<div style="overflow-x:auto"><table class="runs"><tr><th>run</th><th>task</th><th>agent</th><th>#</th>'
        "<th>status</th><th>success</th><th class=num>steps</th><th class=num>tools</th><th>started (UTC)</th>"
        f"<th>outcome</th></tr>{rows}</table></div>",
    )


def _field(label: str, value: Any, css: str = "") -> str:
    if value is None or value == "":
        return ""
    text = str(value)
    more = f" … ({len(text) - FIELD_CHARS} more characters)" if len(text) > FIELD_CHARS else ""
    return f'<div class="small">{label}</div><pre class="{css}">{esc(text[:FIELD_CHARS])}{esc(more)}</pre>'


def _step_node(node: Mapping[str, Any], depth: int) -> str:
    kind = node.get("kind")
    name = node.get("goal") if kind == "goal" else node.get("name")
    error = ' <span class="fail">✗ error</span>' if node.get("error") else ""
    summary = f'<span class="kind">{esc(kind)}</span> {esc(_short(name, 120))}{error}'
    if kind == "tool" and node.get("input"):
        summary += f' <span class="small mono">{esc(_short(node["input"], 100))}</span>'
    body = "".join([
        _field("goal", node.get("goal")) if kind != "goal" else "",
        _field("tool", node.get("tool")),
        _field("input", node.get("input")),
        _field("output", node.get("output")),
        _field("error", node.get("error"), "error"),
    ])
    children = node.get("children", [])
    # Very deep trees are flattened so the page's nesting stays within what browsers render well.
    inner = "".join(_step_node(c, depth + 1) for c in children) if depth < 40 else ""
    return f"<details><summary>{summary}</summary>{body}{inner}</details>"


def _steps_section(runs: Sequence[Mapping[str, Any]], steps: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    out = []
    for r in runs:
        run_steps = list(steps.get(r["run_id"], ()))
        cut = ""
        if len(run_steps) > MAX_STEPS_PER_RUN:
            cut = _note(f"the first {MAX_STEPS_PER_RUN} of {len(run_steps)} steps are shown")
            run_steps = run_steps[:MAX_STEPS_PER_RUN]
        tree = "".join(_step_node(n, 1) for n in step_forest(run_steps)) or '<p class="small">no steps recorded</p>'
        footer = "".join([
            _field("outcome", r.get("outcome")),
            _field("reference", r.get("reference")),
            _field("error", r.get("error"), "error"),
        ])
        ok = {1.0: "success", 0.0: "failure"}.get(r.get("success"), "success unknown")
        out.append(
            f'<details class="run" id="{run_anchor(r["run_id"])}"><summary><span class="mono">{esc(r["run_id"])}</span> · '
            f'task <span class="mono">{esc(r.get("task_id"))}</span> · {esc(r.get("agent"))} · {esc(r.get("status"))} · {ok}'
            f"</summary>{tree}{cut}{footer}</details>"
        )
    return _section("steps", "Step trees", "".join(out) or _note("no runs"))


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


# ---------------------------------------------------------------------------- page


def build_report(data: Mapping[str, Any]) -> str:
    """One self-contained HTML page from plain result dicts.

    ``data`` keys:

    - ``analysis`` (required): ``analyze(...).to_dict()`` over all runs;
    - ``by_agent``: ``analyze(..., by="agent").to_dict()`` when there are several agents;
    - ``horizon``, ``goals``, ``drift``: ``{series name: result.to_dict()}`` (one series per
      agent, or one named "all runs"), or a string saying why the section has no result;
      ``None`` means the analyzer is not available;
    - ``runs``: run records for the runs table (already capped), ``runs_total`` how many exist,
      ``steps``: ``{run_id: [step records]}`` for the step trees;
    - ``task_context``: ``{task_id: {"instruction": text, "reference": text}}``, shown folded
      under each task's id beside its clusters;
    - ``database``, ``agents``, ``generated`` (text; default now), ``title``.
    """
    runs = list(data.get("runs", []))
    agents = list(data.get("agents") or sorted({str(r.get("agent")) for r in runs}))
    groups = _groups(data, agents)
    body = "".join([
        _header(data, agents),
        _verdict_section(data, groups),
        _bias_variance_section(groups),
        _clusters_section(groups, data.get("task_context")),
        _horizon_section(data.get("horizon")),
        _goals_section(data.get("goals")),
        _drift_section(data.get("drift")),
        _runs_section(runs, int(data.get("runs_total", len(runs)))),
        _steps_section(runs, data.get("steps", {})),
    ])
    title = esc(data.get("title") or f"hotmess report · {data.get('database', '')}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head>"
        f'<body>{body}<footer class="small"><p>Made by hotmess: one file, no network, no scripts.</p></footer></body></html>\n'
    )


# The pieces of the page that the web UI (``hotmess serve``) shows on its own pages.
CSS, CSP = _CSS, _CSP
groups_of = _groups
verdict_section = _verdict_section
clusters_section = _clusters_section
drift_section = _drift_section
steps_section = _steps_section
horizon_section = _horizon_section
goals_section = _goals_section
