"""The per-task seam: ``analyze`` is ``combine`` of ``task_figures``, and the figures of tasks
computed one by one (as an engine's workers do) combine to the same analysis, to the byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_cli import hotmess

import hotmess as hm
from hotmess.analyzers import analyze
from hotmess.analyzers.analysis import analysis_options, combine, task_figures
from hotmess.analyzers.group import merge_warnings
from hotmess.results import to_json

VARIANTS = [
    {},
    {"outcome": "actions"},
    {"outcome": "text"},
    {"decomposition": "checks"},
    {"decomposition": "mse"},
    {"interval": "bootstrap", "n_boot": 300, "seed": 3},
    {"incomplete": "fail", "correction": False},
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("figures") / "demo.db"
    hotmess("demo", "--runs", "3", "--db", str(db), "--json")
    return db


@pytest.mark.parametrize("kwargs", VARIANTS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_per_task_figures_combine_to_analyze(demo, kwargs):
    with hm.open(demo) as db:
        runs, steps = db.load()
    whole = analyze(runs, steps, **kwargs)
    options = analysis_options(**kwargs)
    assert to_json(combine([task_figures(runs, steps, options)], options)) == to_json(whole)
    tasks = runs["task_id"]
    run_task = dict(zip(runs["run_id"], tasks, strict=True))
    step_task = np.array([run_task[r] for r in steps["run_id"]], dtype=object)
    figures = [
        task_figures(runs.take(tasks == t), steps.take(step_task == t), options)
        for t in reversed(sorted(set(tasks.tolist())))  # any order: combine sorts the tasks
    ]
    assert to_json(combine(figures, options)) == to_json(whole)


def test_a_task_split_between_figures_is_refused(demo):
    with hm.open(demo) as db:
        runs, steps = db.load(with_steps=False)
    options = analysis_options()
    half = np.arange(len(runs)) % 2 == 0
    with pytest.raises(ValueError, match="group by task"):
        combine([task_figures(runs.take(half), None, options),
                 task_figures(runs.take(~half), None, options)], options)


def test_warnings_of_sets_of_tasks_add_their_counts():
    a = ["2 tasks have runs with different references: x", "3 runs have no score: y"]
    b = ["1 tasks have runs with different references: x"]
    assert merge_warnings([a, b]) == [
        "3 tasks have runs with different references: x", "3 runs have no score: y"]
    assert merge_warnings([a]) == a
