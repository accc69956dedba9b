"""The web UI's analysis views beyond a run and a task: horizon, goals, the comparison of agents
(or models), the runs over time, and the live-update script with its generation endpoint.

Each view is ``(request, database, analyses) -> (data, render)`` as in :mod:`hotmess.serve.app`:
``data`` is the JSON form (that of the library call the CLI's ``--json`` prints), ``render``
makes the HTML. The plots are the report's (:mod:`hotmess.report.plots`), sections too where
the report has them; every string from an agent goes through :func:`hotmess.report.html.esc`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from hotmess.errors import HotmessError
from hotmess.report import html as report
from hotmess.report import plots
from hotmess.report.html import esc
from hotmess.serve import pages

__all__ = ["LIVE_JS", "activity", "compare", "goals", "horizon", "parse_time"]

View = tuple[Any, Callable[[], str]]

#: Polls ``/api/generation`` (a stat of the database file and its WAL: no query) and reloads the
#: page when it differs from the one the page was rendered at (``data-generation`` on the script
#: tag, set by the server), unless someone is typing in a filter. The URL (query) is kept, so a
#: filtered or paged view reloads as itself. ``data-every`` on the script tag: seconds between polls.
LIVE_JS = """(function () {
  "use strict";
  var me = document.currentScript, every = 1000 * (parseFloat(me && me.dataset.every) || 2),
      seen = (me && me.dataset.generation) || null;
  function editing() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "SELECT") && a.value !== a.defaultValue;
  }
  function poll() {
    fetch("/api/generation", {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) { return; }
        if (seen === null) { seen = d.generation; }
        else if (d.generation !== seen && !editing()) { window.location.reload(); return; }
      })
      .catch(function () {})
      .finally(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, every);
})();
"""


def parse_time(text: str | None, name: str) -> int | None:
    """``2026-12-01`` or ``2026-12-01T10:30`` (UTC unless an offset is given) as Unix ns."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be a date or time like 2026-12-01 or 2026-12-01T10:30, not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _choice(request: Request, name: str, allowed: tuple[str | None, ...]) -> Any:
    value = request.query_params.get(name) or None
    if value not in allowed:
        shown = ", ".join(a for a in allowed if a)
        raise ValueError(f"{name} must be one of {shown}, not {value!r}")
    return value


def _series(result: Mapping[str, Any], default: str) -> dict[str, Any]:
    """A grouped result's ``groups`` (a dict by group), or the one result (whose own ``groups``,
    horizon's length groups, is a list)."""
    groups = result.get("groups")
    return dict(groups) if isinstance(groups, Mapping) else {default: result}


def _form(action: str, fields: str) -> str:
    return f'<form class="filters" method="get" action="{action}">{fields}<button type="submit">show</button></form>'


def _select(name: str, options: tuple[str, ...], chosen: str | None, labels: Mapping[str, str] | None = None) -> str:
    opts = "".join(f'<option value="{esc(o)}"{" selected" if (chosen or "") == o else ""}>'
                   f'{esc((labels or {}).get(o, o or "none"))}</option>' for o in options)
    return f'<label>{name} <select name="{name}">{opts}</select></label>'


# ---------------------------------------------------------------------------- horizon


LENGTHS = ("steps", "tool_calls", "tokens")


def horizon(request: Request, db: Any, analyses: Any) -> View:
    length = _choice(request, "length", (None, *LENGTHS)) or "steps"
    by = _choice(request, "by", (None, "agent", "model"))
    try:
        result: Any = analyses.get(("horizon", length, by), lambda: db.horizon(length=length, by=by).to_json())
    except HotmessError as exc:
        result = str(exc)
    data = result if isinstance(result, dict) else {"error": result}
    series = result if isinstance(result, str) else _series(result, "all runs")
    form = _form("/horizon", _select("length", LENGTHS, length) + _select("by", ("", "agent", "model"), by))
    return data, lambda: pages.page("Horizon", form + report.horizon_section(series),
                                    json_link=pages.with_json("/horizon", {"length": length, "by": by}), live=10)


# ---------------------------------------------------------------------------- goals


ALIGNS = ("index", "progress")


def goals(request: Request, db: Any, analyses: Any) -> View:
    align = _choice(request, "align", (None, *ALIGNS)) or "index"
    task = request.query_params.get("task") or None
    try:  # the CLI's --json (its default --limit of drifting runs is the result's own)
        result: Any = analyses.get(("goals", align, task), lambda: db.goals(align=align, task=task).to_json())
    except HotmessError as exc:
        result = str(exc)
    data = result if isinstance(result, dict) else {"error": result}
    series = result if isinstance(result, str) else {task or "all tasks": result}
    form = _form("/goals", _select("align", ALIGNS, align)
                 + f'<label>task <input name="task" value="{esc(task or "")}"></label>')
    body = form + report.goals_section(series)
    if isinstance(result, dict):  # the report links drifting runs to its own anchors: here, to their pages
        links = "".join(f'<li><a class="mono" href="{esc(pages.run_url(d.get("run_id")))}">{esc(d.get("run_id"))}</a> '
                        f'slope {pages.num(d.get("slope"), 2)} over {esc(d.get("n_goals"))} goals, task '
                        f'<a href="{esc(pages.task_url(d.get("task_id")))}">{esc(d.get("task_id"))}</a></li>'
                        for d in (result.get("goal_drift") or {}).get("drifting") or [])
        body += f"<h3>Drifting runs</h3><ul>{links}</ul>" if links else ""
    return data, lambda: pages.page("Goals", body, json_link=pages.with_json("/goals", {"align": align, "task": task}),
                                    live=10)


# ---------------------------------------------------------------------------- compare


def compare(request: Request, db: Any, analyses: Any) -> View:
    by = _choice(request, "by", (None, "agent", "model")) or "agent"
    try:
        result: Any = analyses.get(("compare", by), lambda: db.analyze(by=by).to_json())
    except HotmessError as exc:
        result = str(exc)
    data = result if isinstance(result, dict) else {"error": result}
    form = _form("/compare", _select("by", ("agent", "model"), by))

    def render() -> str:
        if isinstance(result, str):
            return pages.page("Compare", form + f'<p class="note">{esc(result)}</p>')
        groups = dict(result.get("groups", {}))
        body = form + pages.groups_table(groups, by)
        if groups:
            body += (f"<h2>Incoherence</h2><figure>{plots.incoherence_plot(groups)}</figure>"
                     f"<h2>pass^k</h2><figure>{plots.pass_hat_k_plot(groups)}</figure>"
                     "<h2>Bias and variance per task</h2><figure>"
                     f"{plots.bias_variance_plot({n: g.get('tasks', []) for n, g in groups.items()})}</figure>")
        return pages.page(f"Compare by {by}", body, json_link=pages.with_json("/compare", {"by": by}), live=10)

    return data, render


# ---------------------------------------------------------------------------- runs over time


def activity(request: Request, db: Any, analyses: Any) -> View:
    unit = _choice(request, "unit", (None, "hour", "day", "week"))
    data = analyses.get(("activity", unit), lambda: db.activity(unit=unit).to_json())
    return data, lambda: pages.page("Runs over time", activity_figure(data),
                                    json_link=pages.with_json("/activity", {"unit": unit}))


def activity_figure(data: Mapping[str, Any]) -> str:
    if not data.get("buckets"):
        return ""
    links = " ".join(f'<a href="/activity?{urlencode({"unit": u})}">per {u}</a>' for u in ("hour", "day", "week"))
    return (f'<h2>Runs over time</h2><figure id="plot-activity">{plots.runs_over_time_plot(data)}'
            f'<figcaption class="small">runs started per {esc(data["unit"])} (UTC), by status · {links}'
            "</figcaption></figure>")
