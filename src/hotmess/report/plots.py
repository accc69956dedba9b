"""The report's figures: matplotlib (Agg) to inline SVG strings, from plain result dicts.

Every function takes the ``.to_dict()`` form of an analyzer result and returns one ``<svg>``
element as text (no XML prolog), ready to be placed in an HTML page. The output is deterministic
for the same input: ids are hashed with a fixed salt per figure, no date is written, and text
stays text (``svg.fonttype = "none"``) in the page's own sans-serif font, so no font is embedded
or fetched. Labels that came from data (task ids, agent names) go through matplotlib's XML
escaping and never through mathtext (``text.parse_math`` is off, so ``$`` is just a dollar).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib import ticker  # noqa: E402

#: Tasks drawn at most in the per-task bar chart (the page says when there are more).
MAX_BAR_TASKS = 60
LABEL_CHARS = 28

BIAS_COLOR = "#4477aa"
VARIANCE_COLOR = "#ee6677"
SERIES_COLORS = ("#228833", "#aa3377", "#4477aa", "#ccbb44", "#66ccee", "#ee6677", "#bbbbbb")
SERIES_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "--")

_RC = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
_PROLOG = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _label(text: Any, width: int = LABEL_CHARS) -> str:
    text = str(text).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _svg(fig: Any, name: str) -> str:
    """The figure as one ``<svg>`` element; ``name`` salts its ids so figures never share one."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"hotmess-{name}"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = _PROLOG.sub("", buffer.getvalue(), count=1)
    # matplotlib numbers its element ids per figure (figure_1, axes_1, ...): prefix them, and the
    # references to them, so ids stay unique in a page of several figures. Text from data cannot
    # match: matplotlib writes its quotes as &quot;.
    svg = svg.replace(' id="', f' id="{name}-').replace("url(#", f"url(#{name}-").replace('href="#', f'href="#{name}-')
    # A role and a label for screen readers; width/height stay as matplotlib wrote them (pt).
    return svg.replace("<svg ", f'<svg role="img" aria-label="{name}" class="plot" ', 1)


def _legend(ax: Any) -> None:
    """The legend right of the axes, where it never hides a point."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _figure(width: float, height: float) -> tuple[Any, Any]:
    return plt.subplots(figsize=(width, height), layout="constrained")


def bias_variance_plot(series: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Stacked horizontal bars per task: bias² then variance (= the task's error).

    ``series`` maps a name (an agent, or "all runs") to its Analysis ``tasks`` list; several
    series draw side by side per task, told apart by hatching. At most :data:`MAX_BAR_TASKS`
    tasks (the first ones, in the analysis's task order).
    """
    with matplotlib.rc_context(_RC):
        names = list(series)
        task_ids: list[str] = []
        for tasks in series.values():
            for t in tasks:
                if t["task_id"] not in task_ids:
                    task_ids.append(t["task_id"])
        task_ids = task_ids[:MAX_BAR_TASKS]
        n_series = max(1, len(names))
        bar = 0.8 / n_series
        fig, ax = _figure(7.5, 1.0 + 0.28 * len(task_ids) * max(1, n_series * 0.7))
        index = {t: i for i, t in enumerate(task_ids)}
        for s, name in enumerate(names):
            rows = [t for t in series[name] if t["task_id"] in index]
            ys = [index[t["task_id"]] - 0.4 + bar * (s + 0.5) for t in rows]
            bias = [t["bias"] if _finite(t["bias"]) else 0.0 for t in rows]
            variance = [t["variance"] if _finite(t["variance"]) else 0.0 for t in rows]
            hatch = SERIES_HATCHES[s % len(SERIES_HATCHES)]
            ax.barh(ys, bias, height=bar, color=BIAS_COLOR, hatch=hatch, edgecolor="white",
                    label="bias²" if s == 0 else None)
            ax.barh(ys, variance, left=bias, height=bar, color=VARIANCE_COLOR, hatch=hatch,
                    edgecolor="white", label="variance" if s == 0 else None)
            if n_series > 1:
                ax.barh([0], [0], color="white", edgecolor="#555555", hatch=hatch,
                        label=_label(name, 40))
        ax.set_yticks(range(len(task_ids)), [_label(t) for t in task_ids])
        ax.invert_yaxis()
        ax.set_xlabel("error per task (bias² + variance)")
        _legend(ax)
        return _svg(fig, "bias-variance")


def incoherence_plot(groups: Mapping[str, Mapping[str, Any]]) -> str:
    """Incoherence with its interval, one point per group (agent), on [0, 1]."""
    with matplotlib.rc_context(_RC):
        names = list(groups)
        fig, ax = _figure(6.5, 0.8 + 0.4 * len(names))
        for i, name in enumerate(names):
            inc = groups[name]["incoherence"]
            value, low, high = inc.get("value"), inc.get("ci_low"), inc.get("ci_high")
            if not _finite(value):
                continue
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            if _finite(low) and _finite(high):
                ax.errorbar([value], [i], xerr=[[value - low], [high - value]], fmt="o",
                            color=color, capsize=4)
            else:
                ax.plot([value], [i], "o", color=color)
        ax.axvspan(0.4, 0.6, color="#dddddd", alpha=0.5, lw=0)
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_yticks(range(len(names)), [_label(n, 36) for n in names])
        ax.invert_yaxis()
        ax.set_xlabel("incoherence = Σ variance / Σ error (← bias: coherent · variance: hot mess →)")
        return _svg(fig, "incoherence")


def pass_hat_k_plot(groups: Mapping[str, Mapping[str, Any]]) -> str:
    """pass^k against k, one line per group."""
    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.5, 2.6)
        for i, (name, result) in enumerate(groups.items()):
            points = sorted((int(k), v) for k, v in result.get("pass_hat_k", {}).items() if _finite(v))
            if points:
                ax.plot([k for k, _ in points], [v for _, v in points], "o-", ms=3,
                        color=SERIES_COLORS[i % len(SERIES_COLORS)], label=_label(name, 40))
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("k (runs of the same task that must all succeed)")
        ax.set_ylabel("pass^k")
        ax.xaxis.get_major_locator().set_params(integer=True)
        _legend(ax)
        return _svg(fig, "pass-hat-k")


def horizon_plot(series: Mapping[str, Mapping[str, Any]]) -> str:
    """Incoherence per run-length group with its interval (log length axis), one line per series."""
    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.5, 3.0)
        log = True
        for i, (name, result) in enumerate(series.items()):
            groups = [g for g in result.get("groups", []) if _finite(g.get("length_mean")) and _finite(g.get("incoherence"))]
            if not groups:
                continue
            xs = [g["length_mean"] for g in groups]
            ys = [g["incoherence"] for g in groups]
            log = log and min(xs) > 0
            low = [y - g["ci_low"] if _finite(g.get("ci_low")) else 0.0 for y, g in zip(ys, groups, strict=True)]
            high = [g["ci_high"] - y if _finite(g.get("ci_high")) else 0.0 for y, g in zip(ys, groups, strict=True)]
            slope = result.get("slope")
            label = _label(name, 30) + (f" (slope {slope:.2f})" if _finite(slope) else "")
            ax.errorbar(xs, ys, yerr=[low, high], fmt="o-", capsize=3, ms=4,
                        color=SERIES_COLORS[i % len(SERIES_COLORS)], label=label)
        if log:
            ax.set_xscale("log")
            # Plain numbers: the default log labels are mathtext, which is switched off here.
            ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.StrMethodFormatter("{x:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("mean run length of the tasks in the group")
        ax.set_ylabel("incoherence")
        _legend(ax)
        return _svg(fig, "horizon")


def goals_plot(series: Mapping[str, Mapping[str, Any]]) -> str:
    """Goal variance (and incoherence where defined) at each aligned step position."""
    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.5, 3.0)
        for i, (name, result) in enumerate(series.items()):
            positions = result.get("positions", [])
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            xs = [p["position"] for p in positions if _finite(p.get("variance"))]
            ys = [p["variance"] for p in positions if _finite(p.get("variance"))]
            if xs:
                ax.plot(xs, ys, "o-", ms=3, color=color, label=f"{_label(name, 30)}: goal variance")
            inc = [(p["position"], p["incoherence"]) for p in positions if _finite(p.get("incoherence"))]
            if inc:
                ax.plot([x for x, _ in inc], [y for _, y in inc], "s--", ms=3, color=color,
                        alpha=0.7, label=f"{_label(name, 30)}: incoherence")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("step position")
        ax.set_ylabel("spread of goals across runs")
        ax.xaxis.get_major_locator().set_params(integer=True)
        _legend(ax)
        return _svg(fig, "goals")


def drift_plot(series: Mapping[str, Mapping[str, Any]]) -> str:
    """Success rate and incoherence per time window; a dotted line before each window where
    behaviour changed (shaded over its location interval)."""
    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.5, 3.0)
        for i, (name, result) in enumerate(series.items()):
            windows = result.get("windows", [])
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            xs = list(range(len(windows)))
            success = [w["success_rate"] if _finite(w.get("success_rate")) else math.nan for w in windows]
            incoherence = [w["incoherence"] if _finite(w.get("incoherence")) else math.nan for w in windows]
            ax.plot(xs, success, "o-", ms=3, color=color, label=f"{_label(name, 30)}: success")
            ax.plot(xs, incoherence, "s--", ms=3, color=color, alpha=0.7,
                    label=f"{_label(name, 30)}: incoherence")
            for j, c in enumerate(result.get("change_points") or []):
                ax.axvline(c["window"] - 0.5, color=color, ls=":", lw=1.5,
                           label=f"{_label(name, 30)}: behaviour changed" if j == 0 else None)
                if c["high"] > c["low"]:
                    ax.axvspan(c["low"] - 0.5, c["high"] - 0.5, color=color, alpha=0.08, lw=0)
        ax.set_ylim(0, 1.02)
        starts = {tuple(str(w.get("start", "")) for w in r.get("windows", [])) for r in series.values()}
        first = next(iter(starts), ())
        if len(starts) == 1 and 0 < len(first) <= 12 and all(s.endswith("T00:00:00Z") for s in first):
            # One timeline of whole days: each window by the date it starts (UTC).
            ax.set_xticks(range(len(first)), [s[:10] for s in first])
            ax.set_xlabel("time window, by its first day (UTC)")
        else:
            ax.set_xlabel("time window (oldest first)")
            ax.xaxis.get_major_locator().set_params(integer=True)
        _legend(ax)
        return _svg(fig, "drift")


STATUS_COLORS = {"ok": "#228833", "error": "#ee6677", "incomplete": "#bbbbbb"}


def runs_over_time_plot(activity: Mapping[str, Any]) -> str:
    """Runs started per time bucket (``activity["unit"]``: hour, day or week, UTC), stacked by status."""
    with matplotlib.rc_context(_RC):
        buckets = list(activity.get("buckets", []))
        fig, ax = _figure(7.5, 2.4)
        xs = list(range(len(buckets)))
        bottom = [0] * len(buckets)
        for status, color in STATUS_COLORS.items():
            counts = [int(b.get(status) or 0) for b in buckets]
            if any(counts):
                ax.bar(xs, counts, bottom=bottom, color=color, width=0.85, label=status)
                bottom = [a + c for a, c in zip(bottom, counts, strict=True)]
        step = max(1, len(buckets) // 10)
        cut = 13 if activity.get("unit") == "hour" else 10
        ax.set_xticks(xs[::step], [str(b["start"])[:cut].replace("T", " ") for b in buckets[::step]],
                      rotation=30, ha="right")
        ax.set_ylabel("runs started")
        ax.set_xlabel(f"{activity.get('unit', 'day')} (UTC)")
        ax.yaxis.get_major_locator().set_params(integer=True)
        _legend(ax)
        return _svg(fig, "runs-over-time")
