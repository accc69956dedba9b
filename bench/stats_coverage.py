"""Coverage of the incoherence interval, by simulation against populations of known incoherence.

Each task i of a population has a success rate p_i ~ Beta(a, b) and, when it fails, a failure
cluster drawn from q_i ~ Dirichlet(α·1_K), p and q independent. A run is one draw. Per task,
under Brier with the correct runs in one cluster,

    error_i    = 2 (1 − p_i)
    variance_i = 1 − p_i² − (1 − p_i)² Σ_k q_ik²

and the incoherence of the population (the quantity an interval over tasks is about: the ratio
of the expected sums) is

    R = E[variance] / E[error] = (1 − E[p²] − E[(1 − p)²] · E[Σ q²]) / (2 (1 − E[p]))

with E[p] = a/(a+b), Var p = ab/((a+b)²(a+b+1)), E[p²] = Var p + E[p]², E[(1−p)²] = Var p +
(1 − E[p])², and for a symmetric Dirichlet E[Σ_k q_k²] = (α + 1)/(Kα + 1).

For each size (tasks × runs) and population, ``--reps`` datasets are drawn and analysed with
hotmess's own code (``brier_by_task`` and ``incoherence``); the table reports how often each
interval holds R, with its Monte Carlo standard error √(c(1 − c)/reps), and the relative bias
of the point estimate. Methods, all on the unbiased figures but the last: the jackknife
interval on the logit scale with t(T−1) (hotmess's default), the plain linearised ratio
interval R ± t(T−1)·SE with SE² = T/(T−1)·Σ(v − R e)²/(Σe)², the percentile bootstrap and BCa
(``scipy.stats.bootstrap``, paired over tasks), and the old default, the percentile bootstrap
on the plug-in figures.

    .venv/bin/python bench/stats_coverage.py [--reps 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
from scipy import stats

from hotmess.analyzers import brier_by_task, incoherence

SIZES = [(40, 30), (40, 10), (10, 30), (10, 5), (40, 3), (40, 2)]
POPULATIONS = {
    "p~Beta(2,2), 4 failure clusters ~Dir(0.5)": (2.0, 2.0, 4, 0.5),
    "p~Beta(6,2), 3 failure clusters ~Dir(2)": (6.0, 2.0, 3, 2.0),
}
METHODS = ("jackknife", "linearised", "bootstrap", "bca", "plug-in bootstrap (old)")


def true_incoherence(a: float, b: float, k: int, alpha: float) -> float:
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1))
    same = (alpha + 1) / (k * alpha + 1)
    return (1 - (var + mean**2) - (var + (1 - mean) ** 2) * same) / (2 * (1 - mean))


def draw(rng: np.random.Generator, n_tasks: int, n_runs: int, a: float, b: float, k: int, alpha: float):
    p = rng.beta(a, b, n_tasks)
    q = rng.dirichlet(np.full(k, alpha), n_tasks)
    tasks = np.repeat(np.arange(n_tasks), n_runs)
    success = rng.random(tasks.size) < p[tasks]
    failure = np.minimum((rng.random(tasks.size)[:, None] > q.cumsum(1)[tasks]).sum(1), k - 1)
    return tasks, np.where(success, k, failure), success


def _linearised(v: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    t, ratio = v.size, v.sum() / e.sum()
    se = np.sqrt((v - ratio * e) @ (v - ratio * e) * t / (t - 1)) / e.sum()
    half = stats.t.ppf(0.975, t - 1) * se
    return ratio - half, ratio + half


def _bca(v: np.ndarray, e: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (v, e), lambda v, e, axis=-1: v.sum(axis) / e.sum(axis), paired=True, vectorized=True,
            n_resamples=1000, method="BCa", random_state=rng,
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def simulate(reps: int, seed: int = 0) -> dict:
    out = []
    for name, params in POPULATIONS.items():
        true = true_incoherence(*params)
        for n_tasks, n_runs in SIZES:
            rng = np.random.default_rng([seed, n_tasks, n_runs, len(out)])
            hits = dict.fromkeys(METHODS, 0)
            estimates = []
            start = time.perf_counter()
            for rep in range(reps):
                tasks, labels, success = draw(rng, n_tasks, n_runs, *params)
                dec = brier_by_task(tasks, labels, success)
                known = np.isfinite(dec.variance) & np.isfinite(dec.error)
                v, e = dec.variance[known], dec.error[known]
                lin = incoherence(v, e)
                boot = incoherence(v, e, n_boot=1000, seed=rep, interval="bootstrap")
                old_dec = brier_by_task(tasks, labels, success, correction=False)
                old = incoherence(old_dec.variance, old_dec.error, n_boot=1000, seed=rep, interval="bootstrap")
                estimates.append(lin.value)
                for method, (low, high) in (
                    ("jackknife", (lin.ci_low, lin.ci_high)),
                    ("linearised", _linearised(v, e)),
                    ("bootstrap", (boot.ci_low, boot.ci_high)),
                    ("bca", _bca(v, e, rng)),
                    ("plug-in bootstrap (old)", (old.ci_low, old.ci_high)),
                ):
                    hits[method] += bool(low <= true <= high)
            out.append({
                "population": name, "tasks": n_tasks, "runs": n_runs, "true": true, "reps": reps,
                "coverage": {m: h / reps for m, h in hits.items()},
                "mc_se": {m: float(np.sqrt(h / reps * (1 - h / reps) / reps)) for m, h in hits.items()},
                "relative_bias": float(np.nanmean(estimates) / true - 1),
                "seconds": time.perf_counter() - start,
            })
    return {"reps": reps, "seed": seed, "results": out}


def markdown(data: dict) -> list[str]:
    lines = [
        f"Coverage of the 95% interval over {data['reps']} simulated datasets per row (± Monte Carlo SE); "
        "the point estimate is the unbiased form.",
        "",
        "| population | tasks × runs | true | jackknife, logit (default) | linearised | bootstrap | BCa | old: plug-in bootstrap | bias of estimate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["results"]:
        cells = [f"{r['coverage'][m]:.3f} ± {r['mc_se'][m]:.3f}" for m in METHODS]
        lines.append(
            f"| {r['population']} | {r['tasks']} × {r['runs']} | {r['true']:.3f} | " + " | ".join(cells)
            + f" | {r['relative_bias']:+.1%} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = simulate(args.reps, args.seed)
    print(json.dumps(data) if args.json else "\n".join(markdown(data)))


if __name__ == "__main__":
    main()
