"""Terminal rendering of ``hotmess goals``: goal spread per position, a verdict, drifting runs."""

from __future__ import annotations

from typing import Any

from rich.table import Table as RichTable

from hotmess.cli.render import console, err_console, escape, fmt_float, short

#: A variance slope (per position) smaller than this in size reads as "flat".
FLAT_SLOPE = 0.01


def _position_label(position: int, align: str) -> str:
    if align == "progress":
        return f"{position * 10}–{position * 10 + 10}%"
    return str(position)


def verdict(result: dict[str, Any]) -> str:
    """One line: does the spread of goals across runs rise, fall or stay flat over the run?"""
    trend = result["trend"]
    slope = trend["variance_slope"]
    used = trend["positions"]
    if slope is None or len(used) < 2:
        return "Too few positions shared by most runs to read a trend in goal variance."
    by_pos = {p["position"]: p for p in result["positions"]}
    first, last = by_pos[used[0]], by_pos[used[-1]]
    align = result["align"]
    span = (
        f"from {fmt_float(first['variance'])} at {_position_label(first['position'], align)} "
        f"to {fmt_float(last['variance'])} at {_position_label(last['position'], align)}"
    )
    per = "decile" if align == "progress" else "goal step"
    if slope > FLAT_SLOPE:
        return (
            f"[yellow]Goals scatter as runs go on[/]: goal variance rises {slope:+.3f} per {per} "
            f"({span}); runs agree early and diverge later."
        )
    if slope < -FLAT_SLOPE:
        return (
            f"[green]Goals converge as runs go on[/]: goal variance falls {slope:+.3f} per {per} "
            f"({span})."
        )
    return f"Goal spread stays flat over the run ({slope:+.3f} per {per}, {span})."


def goals_table(result: dict[str, Any], title: str) -> RichTable:
    align = result["align"]
    table = RichTable(title=escape(title), title_justify="left", header_style="bold")
    columns = [
        ("decile" if align == "progress" else "position", "right"),
        ("runs", "right"),
        ("tasks", "right"),
        ("ref", "right"),
        ("clusters", "right"),
        ("variance", "right"),
        ("bias²", "right"),
        ("incoh.", "right"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    used = set(result["trend"]["positions"])
    for p in result["positions"]:
        style = None if p["position"] in used else "dim"
        table.add_row(
            _position_label(p["position"], align),
            str(p["n_runs"]),
            str(p["n_tasks"]),
            str(p["n_tasks_with_reference"]),
            str(p["goal_clusters"]),
            fmt_float(p["variance"]),
            fmt_float(p["bias"]),
            fmt_float(p["incoherence"]),
            style=style,
        )
    caption = "ref: tasks with an expected goal there (bias² and incoherence are over those)"
    if used and len(used) < len(result["positions"]):
        caption += "; dim: positions with under half the runs (not in the trend)"
    table.caption = caption
    return table


def drift_line(drift: dict[str, Any]) -> str:
    from_instruction = drift.get("from") == "instruction"
    without = (drift.get("runs_without_instruction") or 0) if from_instruction else 0
    if not drift["runs"]:
        if without:
            return (
                f"Goal drift from the instruction: none of the {without} runs with ≥ 3 goals "
                "has an instruction."
            )
        return "Goal drift: no run has 3 goals or more."
    left_out = (
        f" {without} run{'s' if without != 1 else ''} with ≥ 3 goals "
        f"{'have' if without != 1 else 'has'} no instruction (left out)."
        if without
        else ""
    )
    return (
        f"Goal drift from each run's {'instruction' if from_instruction else 'first goal'}: "
        f"mean slope {drift['mean_slope']:+.3f} per goal over {drift['runs']} runs with ≥ 3 goals; "
        f"{drift['n_drifting']} above {drift['threshold']:g}.{left_out}"
    )


def drift_table(drift: dict[str, Any], limit: int) -> RichTable | None:
    listed = drift["drifting"][:limit]
    if not listed:
        return None
    table = RichTable(
        title=f"top {len(listed)} drifting runs", title_justify="left", header_style="bold"
    )
    for name, justify in (("run", "left"), ("task", "left"), ("slope", "right"), ("goals", "right")):
        table.add_column(name, justify=justify, no_wrap=True)
    for d in listed:
        table.add_row(
            escape(d["run_id"][:16]), escape(short(d["task_id"], 24)), f"{d['slope']:+.3f}",
            str(d["n_goals"]),
        )
    if drift["n_drifting"] > len(listed):
        table.caption = f"{len(listed)} of {drift['n_drifting']}; `hotmess show RUN` shows a run"
    else:
        table.caption = "`hotmess show RUN` shows a run"
    return table


def print_goals(result: dict[str, Any], db: str, limit: int) -> None:
    title = (
        f"{db} · goals by {'progress decile' if result['align'] == 'progress' else 'step index'}"
        f" · {result['method']} clusters · {result['n_runs_with_goals']} of {result['n_runs']} "
        f"runs have goals, {result['n_tasks']} tasks, {result['n_goals']} goals"
    )
    if result["read_only_excluded"]:
        title += " · read-only calls left out"
    console.print(goals_table(result, title))
    console.print(verdict(result))
    if not result["has_reference"]:
        console.print("[dim]No reference goals (expected actions): variance only, no bias.[/]")
    console.print(drift_line(result["goal_drift"]))
    table = drift_table(result["goal_drift"], limit)
    if table is not None:
        console.print(table)
        if result["method"] == "exact":
            console.print("[dim]exact goals are the same as the first or not (distance 0 or 1), so slopes tie "
                          "and a run that simply moves on to its next step drifts; --method text measures "
                          "how far the goals move.[/]")
    for w in result.get("warnings", []):
        err_console.print(f"[yellow]warning:[/] {escape(w)}")
