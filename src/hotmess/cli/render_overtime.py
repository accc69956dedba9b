"""Terminal rendering of ``hotmess horizon`` and ``hotmess drift`` results (their ``to_dict()``)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table as RichTable

from hotmess.cli.render import console, err_console, escape, fmt_float


def _ci(low: float | None, high: float | None) -> str:
    return f"[{fmt_float(low)}, {fmt_float(high)}]"


_MORE = {"rises": "more", "falls": "less"}


def horizon_verdict(result: dict[str, Any]) -> list[str]:
    """What the slopes say, a line each: a trend is called only where its interval excludes 0,
    and a move in incoherence that failure diversity does not share is put down to success."""
    slope = result.get("slope")
    if slope is None:
        return ["no power-law fit: fewer than two groups with incoherence > 0 at distinct lengths"]
    ci = _ci(*result.get("slope_ci", [None, None]))
    r2 = f"R² {fmt_float(result.get('r2'), 2)}"
    trend, d_trend = result.get("trend"), result.get("diversity_trend")
    if trend is None:
        return [f"incoherence against length: slope {slope:+.2f}, {r2}; no interval (--n-boot 0), so no trend is called"]
    lines = [{
        "rises": f"[red]incoherence rises with length[/]: slope {slope:+.2f} {ci}, {r2}",
        "falls": f"[green]incoherence falls with length[/]: slope {slope:+.2f} {ci}, {r2}",
        "none": f"no clear trend of incoherence with length: slope {slope:+.2f}, its interval {ci} holds 0 ({r2})",
    }[trend]]
    d_slope = result.get("diversity_slope")
    if d_slope is not None:
        d_text = f"{d_slope:+.2f} per doubling of length {_ci(*result.get('diversity_slope_ci', [None, None]))}"
        lines.append(
            f"failure diversity {'shows no clear trend' if d_trend in (None, 'none') else d_trend}: {d_text}"
        )
    groups = [g for g in result.get("groups", []) if g.get("success_rate") is not None]
    success = (f"success {fmt_float(groups[0]['success_rate'], 2)} → {fmt_float(groups[-1]['success_rate'], 2)} "
               "from the shortest group to the longest") if len(groups) >= 2 else "success"
    if trend in _MORE and d_trend == trend:
        lines.append(f"  failures scatter {_MORE[trend]} on longer tasks")
    elif trend in _MORE and d_trend not in _MORE:
        lines.append(
            f"  the {'rise' if trend == 'rises' else 'fall'} follows the success rate ({success}), "
            f"not failures scattering {_MORE[trend]}: a task's incoherence is at least its success rate"
        )
    elif trend == "none" and d_trend in _MORE:
        lines.append(f"  failures scatter {_MORE[d_trend]} on longer tasks, but incoherence does not show it ({success})")
    elif trend in _MORE and d_trend in _MORE:
        lines.append(f"  failures scatter {_MORE[d_trend]} on longer tasks, yet incoherence {trend} ({success})")
    return lines


def _split_lines(split: dict[str, Any]) -> list[str]:
    """The median split, paired over tasks, with the halves' success and failure diversity."""
    lines = [
        f"within tasks (median split over {split['n_tasks']} tasks, paired): longer runs "
        f"{fmt_float(split['long'])} {_ci(*split['long_ci'])}, shorter {fmt_float(split['short'])} "
        f"{_ci(*split['short_ci'])}; long − short {fmt_float(split.get('difference'))} {_ci(*split['difference_ci'])}",
        f"  success {fmt_float(split.get('success_long'))} vs {fmt_float(split.get('success_short'))}; failure "
        f"diversity {fmt_float(split.get('failure_diversity_long'))} vs {fmt_float(split.get('failure_diversity_short'))}"
        + (f" (long − short {fmt_float(split['diversity_difference'])} {_ci(*split['diversity_difference_ci'])})"
           if split.get("diversity_difference") is not None else ""),
    ]
    trend, d_trend = split.get("trend"), split.get("diversity_trend")
    if trend in _MORE and d_trend not in _MORE:
        lines.append(
            f"  the longer runs are {_MORE[trend]} incoherent, their failures no {_MORE[trend]} scattered: "
            "the difference follows their success"
        )
    elif d_trend in _MORE:
        lines.append(f"  a task's longer runs fail in {'more' if d_trend == 'rises' else 'fewer'} different ways")
    return lines


def print_horizon(result: dict[str, Any], db: str, label: str = "") -> None:
    title = (
        f"{escape(db)}{escape(label)} · incoherence by run length ({result['length']}) · "
        f"{result['n_tasks']} tasks, {result['n_runs']} runs · outcomes: {result['outcome']}"
    )
    console.print(title)
    table = RichTable(header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 0))
    for col in ("group", f"mean\n{result['length']}", "tasks", "runs", "incoherence", "95% CI", "success",
                "failure\ndiversity"):
        table.add_column(col, justify="left" if col == "group" else "right", no_wrap=col == "95% CI")
    for i, g in enumerate(result["groups"], start=1):
        table.add_row(
            str(i),
            fmt_float(g["length_mean"], 1),
            str(g["n_tasks"]),
            str(g.get("n_runs", "")),
            fmt_float(g["incoherence"]),
            _ci(g["ci_low"], g["ci_high"]),
            fmt_float(g.get("success_rate")),
            fmt_float(g.get("failure_diversity")),
        )
    console.print(table)
    for line in horizon_verdict(result):
        console.print(f"  {line}")
    split = result["median_split"]
    if split.get("n_tasks"):
        for line in _split_lines(split):
            console.print(f"  {line}")
    for w in result.get("warnings", []):
        err_console.print(f"[yellow]warning:[/] {escape(w)}")


def print_horizon_groups(result: dict[str, Any], db: str) -> None:
    """``hotmess horizon --by``: each group's result as ``print_horizon`` shows it, or why it has none."""
    for name, group in result["groups"].items():
        label = f" · {result['by']} {name}"
        if "note" in group:
            console.print(f"{escape(db)}{escape(label)} · [yellow]no curve:[/] {escape(group['note'])}")
        else:
            print_horizon(group, db, label)
        console.print()


def drift_verdict(series: dict[str, Any], alpha: float) -> list[str]:
    """What the change points say about one series of windows, a line each."""
    windows = series["windows"]
    if len(windows) < 2:
        runs = sum(int(w.get("n_runs") or 0) for w in windows)
        # runs recorded within minutes (a test session, a harness) fit any time window:
        # a count window is what cuts them
        return [f"one window: nothing to compare; windows of a run count cut any time span "
                f"(--window {max(2, runs // 10)}runs makes 10 of these)"]
    points, mix = series.get("change_points", []), series.get("mix_change_points", [])
    lines = []
    if not points:
        lines.append(f"[green]no behaviour change[/] in {len(windows)} windows "
                     f"(false-alarm level {alpha:g}, all flags)")
    for c in points:
        where = f"window {c['window']}" + (f" (interval {c['low']}–{c['high']})" if c["low"] != c["high"] else "")
        lines.append(
            f"[red]behaviour changed[/] from {escape(c['start'])}, {where}, p = {fmt_float(c['p_value'])}"
        )
        lines.append(f"    success {fmt_float(c['success_before'])} → {fmt_float(c['success_after'])}")
        for label, key in (("new", "clusters_appeared"), ("gone", "clusters_vanished")):
            if c[key]:
                for k in c[key]:
                    tasks = k["task_ids"]
                    where = escape(_short(tasks[0], 24)) if len(tasks) == 1 else f"{len(tasks)} tasks"
                    lines.append(f"    {label}: {escape(_short(k['cluster'], 44))} ({where}, {k['n_runs']} runs)")
    for c in mix:
        lines.append(f"[yellow]mix of tasks changed[/] from {escape(c['start'])}, window {c['window']}, "
                     f"p = {fmt_float(c['p_value'])}")
        lines.append("    (the traffic changed, not how the agent behaves on a task)")
    return lines


def _short(text: Any, width: int = 40) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(iso: str, dates_only: bool, one_day: bool = False) -> str:
    """Compact UTC time for a table cell: the date alone when every window starts at midnight,
    the time of day alone (to the second) when every window starts on one day, else the date
    and time to the minute."""
    text = iso.replace("T", " ").removesuffix("Z")
    if dates_only:
        return text[:10]
    if one_day:
        return text[11:19]
    return text[:16]


def _drift_table(windows: list[dict[str, Any]], count_windows: bool) -> RichTable:
    """One row per window. Count windows also say which runs (in start order) they hold; when
    no run has a start time that is all they can say, so the 1970 dates are left out."""
    timeless = all(w["start"].startswith("1970-01-01") for w in windows)
    table = RichTable(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    # the window index change points name, and the runs a count window holds: never cut
    table.add_column("#", justify="right", no_wrap=True, min_width=len(str(max(len(windows) - 1, 0))))
    if count_windows:
        total = sum(w["n_runs"] for w in windows)
        table.add_column("runs #", no_wrap=True, min_width=2 * len(str(total)) + 1)
    one_day = len(windows) > 1 and len({w["start"][:10] for w in windows}) == 1
    if not (count_windows and timeless):
        table.add_column("from (UTC)", no_wrap=True)
    # a count window's run range says how many runs it holds
    for col in ("succ.", "incoh.", "clust.", "JS", "p") if count_windows else ("runs", "succ.", "incoh.", "clust.", "JS", "p"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("flag", no_wrap=True)
    table.add_column("base: JS (p)", justify="right", no_wrap=True)
    dates_only = all(w["start"].endswith("T00:00:00Z") for w in windows)
    first = 1
    for i, w in enumerate(windows):
        marks = ["[red]change[/]"] if w["changed"] else []
        if w.get("mix_changed"):
            marks.append("[yellow]mix[/]")
        flag = "+".join(marks)
        base = (
            "base" if w.get("is_baseline")
            else f"{fmt_float(w.get('js_baseline'))} ({fmt_float(w.get('p_baseline'))})"
        )
        where = []
        if count_windows:
            where.append(f"{first}–{first + w['n_runs'] - 1}")
        if not (count_windows and timeless):
            where.append(escape(_when(w["start"], dates_only, one_day)))
        first += w["n_runs"]
        table.add_row(
            str(i), *where, *([] if count_windows else [str(w["n_runs"])]), fmt_float(w["success_rate"]),
            fmt_float(w["incoherence"]), str(w.get("n_clusters", "")),
            fmt_float(w["js_divergence"]), fmt_float(w["p_value"]), flag, base,
        )
    return table


def print_drift(result: dict[str, Any], db: str) -> None:
    groups = result.get("groups", {"all runs": result})
    for name, group in groups.items():
        label = f" · {result['by']} {name}" if "by" in result else ""
        title = f"{escape(db)} · windows of {escape(result['window'])}{escape(label)} · outcomes: {result['outcome']}"
        console.print(title)
        console.print(_drift_table(group["windows"], result["window"].endswith("runs")))
        prefix = escape(str(name)) + ": " if "by" in result else ""
        for k, line in enumerate(drift_verdict(group, result["alpha"])):
            console.print(f"  {prefix if k == 0 or not line.startswith(' ') else ''}{line}")
    console.print("  [dim]JS, p: against the window before; base: against the baseline window[/]")
    console.print("  [dim](descriptive, uncorrected: the flags come from the change-point scan)[/]")
    console.print(f"  [dim]test: {escape(result['test'])}; up to {result['n_perm']} permutations[/]")
    for w in result.get("warnings", []):
        err_console.print(f"[yellow]warning:[/] {escape(w)}")
