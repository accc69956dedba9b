"""Incoherence (ratio of sums, bootstrap), failure consistency, pass^k / pass@k."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotmess.analyzers import (
    brier_by_task,
    failure_consistency,
    incoherence,
    incoherence_difference,
    pass_at_k,
    pass_hat_k,
)

# ---------------------------------------------------------------------------- incoherence


def test_incoherence_is_ratio_of_sums():
    # Σ variance / Σ error = (0.5 + 0.3 + 0) / (1 + 0.5 + 0) = 0.8 / 1.5
    # (the mean of ratios would be (0.5 + 0.6) / 2 = 0.55: not what we compute)
    inc = incoherence([0.5, 0.3, 0.0], [1.0, 0.5, 0.0])
    assert inc.value == pytest.approx(0.8 / 1.5)
    assert inc.n_tasks == 3  # the zero-error task counts
    assert inc.method == "brier"


def test_incoherence_excludes_nan_error_tasks():
    inc = incoherence([0.5, 0.3, 0.9], [1.0, 0.5, np.nan])
    assert inc.value == pytest.approx(0.8 / 1.5) and inc.n_tasks == 2


def test_incoherence_undefined_cases():
    inc = incoherence([0.0, 0.0], [0.0, 0.0])
    assert math.isnan(inc.value) and "total error is 0" in inc.reason
    assert inc.to_dict()["value"] is None
    inc = incoherence([0.2], [np.nan])
    assert math.isnan(inc.value) and "no task" in inc.reason


def test_incoherence_bootstrap_seeded_and_contains_estimate():
    rng = np.random.default_rng(1)
    error = rng.uniform(0.1, 2.0, 80)
    variance = error * rng.uniform(0, 1, 80)
    a = incoherence(variance, error, n_boot=500, seed=7, interval="bootstrap")
    b = incoherence(variance, error, n_boot=500, seed=7, interval="bootstrap")
    c = incoherence(variance, error, n_boot=500, seed=8, interval="bootstrap")
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.ci_low <= a.value <= a.ci_high
    assert a.n_boot_used == 500


def test_incoherence_bootstrap_is_the_documented_matrix():
    # the interval comes from one default_rng(seed).integers(0, T, (n_boot, T)) matrix
    v = np.array([0.1, 0.5, 0.2, 0.0, 0.7])
    e = np.array([0.3, 0.9, 0.2, 0.4, 1.0])
    index = np.random.default_rng(3).integers(0, 5, size=(300, 5))
    ratios = v[index].sum(1) / e[index].sum(1)
    low, high = np.quantile(ratios, [0.05, 0.95])
    inc = incoherence(v, e, n_boot=300, seed=3, confidence=0.9, interval="bootstrap")
    assert (inc.ci_low, inc.ci_high) == pytest.approx((low, high))


def test_jackknife_logit_interval_by_hand():
    # R = 0.8/1.5; leaving each task out: 0.3/0.5, 0.5/1, 0.8/1.5; t_2 = 4.3027
    inc = incoherence([0.5, 0.3, 0.0], [1.0, 0.5, 0.0])
    r = 0.8 / 1.5
    left_out = np.array([0.6, 0.5, r])
    se = math.sqrt(2 / 3 * ((left_out - left_out.mean()) ** 2).sum())
    half = 4.302652729911275 * se / (r * (1 - r))
    centre = math.log(r / (1 - r))
    expected = (1 / (1 + math.exp(-(centre - half))), 1 / (1 + math.exp(-(centre + half))))
    assert inc.interval == "jackknife" and inc.n_boot_used == 0
    assert (inc.ci_low, inc.ci_high) == pytest.approx(expected)
    assert (inc.ci_low, inc.ci_high) == pytest.approx((0.293, 0.759), abs=1e-3)
    # at the bound (no variance anywhere) the interval is R ± t·SE clipped, here [0, 0]
    zero = incoherence([0.0, 0.0, 0.0], [1.0, 0.5, 2.0])
    assert (zero.value, zero.ci_low, zero.ci_high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="interval must be one of"):
        incoherence([0.1], [0.5], interval="bca")


def test_incoherence_validation():
    with pytest.raises(ValueError, match="variance > error"):
        incoherence([1.0], [0.5])
    with pytest.raises(ValueError, match="confidence"):
        incoherence([0.1], [0.5], confidence=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        incoherence([0.1], [0.5], n_boot=-1)
    with pytest.raises(ValueError, match="error has 2"):
        incoherence([0.1], [0.5, 0.2])
    inc = incoherence([0.1], [0.5], n_boot=0)
    assert inc.value == pytest.approx(0.2) and math.isnan(inc.ci_low)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 10, allow_nan=False), st.floats(0, 1, allow_nan=False)),
        min_size=1,
        max_size=30,
    )
)
def test_incoherence_in_unit_interval_and_task_order_invariant(pairs):
    error = np.array([e for e, _ in pairs])
    variance = error * np.array([f for _, f in pairs])
    inc = incoherence(variance, error, n_boot=50)
    if error.sum() == 0:
        assert math.isnan(inc.value)
        return
    assert 0.0 <= inc.value <= 1.0 + 1e-12
    if len(pairs) >= 2:
        assert 0.0 <= inc.ci_low <= inc.ci_high <= 1.0 + 1e-12
    else:  # one task: no spread over tasks to build an interval from
        assert math.isnan(inc.ci_low) and math.isnan(inc.ci_high)
    perm = np.random.default_rng(0).permutation(len(pairs))
    assert incoherence(variance[perm], error[perm], n_boot=0).value == pytest.approx(inc.value)


def test_incoherence_difference():
    rng = np.random.default_rng(2)
    ea = rng.uniform(0.5, 1.5, 60)
    va = 0.8 * ea  # incoherence 0.8
    eb = rng.uniform(0.5, 1.5, 60)
    vb = 0.2 * eb  # incoherence 0.2
    d = incoherence_difference((va, ea), (vb, eb), n_boot=400, labels=("x", "y"))
    assert d.value == pytest.approx(0.6)
    assert d.ci_low - 1e-12 <= 0.6 <= d.ci_high + 1e-12 and d.ci_low > 0.3 and not d.paired
    assert d.p_value < 0.01
    assert d.to_dict()["a"] == "x" and d.to_dict()["incoherence_a"] == pytest.approx(0.8)
    # group a's resamples are exactly incoherence(a)'s
    mixed = np.r_[ea[:30] * 0.1, ea[30:] * 0.9]
    inc_a = incoherence(mixed, ea, n_boot=400)
    d2 = incoherence_difference((mixed, ea), (vb, eb), n_boot=400)
    assert d2.a == inc_a
    assert d2 == incoherence_difference((mixed, ea), (vb, eb), n_boot=400)
    # objects with .variance/.error work too
    dec = brier_by_task([0, 0, 1, 1], ["a", "b", "a", "a"], [True, False, True, True])
    assert incoherence_difference(dec, dec, n_boot=10).value == 0.0
    undefined = incoherence_difference(([0.0], [0.0]), (vb, eb), n_boot=10)
    assert math.isnan(undefined.value) and "a:" in undefined.reason


def test_paired_difference_on_shared_tasks_is_narrower_and_calibrated():
    # Two agents on the same 40 tasks: tasks differ a lot in how error splits (task effect),
    # agent b is a little less incoherent on every task. Pairing cancels the task effect.
    rng = np.random.default_rng(4)
    e = rng.uniform(0.5, 2.0, 40)
    share = rng.uniform(0.1, 0.9, 40)
    va, vb = e * share, e * np.clip(share - 0.05 + rng.normal(0, 0.02, 40), 0, 1)
    paired = incoherence_difference((va, e), (vb, e), paired=True)
    independent = incoherence_difference((va, e), (vb, e), paired=False)
    assert paired.paired and paired.to_dict()["paired"] is True
    assert (paired.ci_high - paired.ci_low) < 0.5 * (independent.ci_high - independent.ci_low)
    assert paired.ci_low > 0 and paired.p_value < 0.01 and independent.p_value > 0.05
    boot = incoherence_difference((va, e), (vb, e), paired=True, interval="bootstrap", n_boot=500)
    assert boot.ci_low > 0
    # false positives at the nominal level: no agent effect, 200 seeded populations
    hits = 0
    for seed in range(200):
        r = np.random.default_rng(seed)
        e = r.uniform(0.5, 2.0, 40)
        share = r.uniform(0.1, 0.9, 40)
        va = e * np.clip(share + r.normal(0, 0.05, 40), 0, 1)
        vb = e * np.clip(share + r.normal(0, 0.05, 40), 0, 1)
        d = incoherence_difference((va, e), (vb, e), paired=True)
        hits += not (d.ci_low <= 0 <= d.ci_high)
    assert hits / 200 < 0.1
    with pytest.raises(ValueError, match="paired groups"):
        incoherence_difference(([0.1], [0.2]), ([0.1, 0.1], [0.2, 0.2]), paired=True)


def _simulate_population(n_tasks, n_runs, rng):
    """Half the tasks fail coherently (one wrong cluster), half incoherently (5 wrong clusters).

    Every task succeeds with probability 1/2. Population values (infinitely many runs):
    coherent p = (1/2, 1/2): variance = 1 − 1/2 = 1/2, error = 2 (1 − 1/2) = 1;
    incoherent p = (1/2, 1/10 × 5): variance = 1 − (1/4 + 5/100) = 0.7, error = 1.
    Population incoherence = (0.5 + 0.7) / (1 + 1) = 0.6. With n runs per task the plug-in
    variance has expectation (1 − 1/n) × variance and the error is unbiased, so the ratio of
    sums converges (many tasks) to 0.6 × (1 − 1/n).
    """
    tasks, labels, hits = [], [], []
    for t in range(n_tasks):
        coherent = t % 2 == 0
        for _ in range(n_runs):
            success = rng.random() < 0.5
            label = 0 if success else 1 if coherent else 1 + int(rng.integers(0, 5))
            tasks.append(t)
            labels.append(label)
            hits.append(success)
    return np.array(tasks), np.array(labels), np.array(hits)


def test_synthetic_population_interval_contains_analytic_incoherence():
    n_runs = 20
    tasks, labels, hits = _simulate_population(400, n_runs, np.random.default_rng(11))
    dec = brier_by_task(tasks, labels, hits)  # the unbiased form: expectation 0.6 itself
    inc = incoherence(dec.variance, dec.error, n_boot=1000, seed=0)
    assert inc.ci_low <= 0.6 <= inc.ci_high
    assert inc.ci_high - inc.ci_low < 0.1
    # plug-in: low by (n − 1)/n; the correction scales every task's variance by 20/19
    plug_in = brier_by_task(tasks, labels, hits, correction=False)
    inc_plug = incoherence(plug_in.variance, plug_in.error, n_boot=1000, seed=0)
    assert inc_plug.ci_low <= 0.6 * (1 - 1 / n_runs) <= inc_plug.ci_high
    assert np.nansum(dec.variance) == pytest.approx(
        np.nansum(plug_in.variance) * n_runs / (n_runs - 1)
    )
    assert np.nansum(dec.error) == pytest.approx(np.nansum(plug_in.error))


def test_coverage_at_forty_tasks_by_ten_runs_is_near_nominal():
    # Seeded small version of bench/stats_coverage.py: success p ~ Beta(2, 2), failures over 4
    # clusters ~ Dirichlet(0.5): true incoherence 0.7. The old plug-in percentile bootstrap
    # covered about 0.6 of such populations at 40 tasks × 10 runs.
    def truth(a=2.0, b=2.0, k=4, alpha=0.5):
        m, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
        same = (alpha + 1) / (k * alpha + 1)
        return (1 - (var + m * m) - (var + (1 - m) ** 2) * same) / (2 * (1 - m))

    true, rng, covered, plug_covered = truth(), np.random.default_rng(2026), 0, 0
    reps = 60
    for _ in range(reps):
        p, q = rng.beta(2, 2, 40), rng.dirichlet(np.full(4, 0.5), 40)
        tasks = np.repeat(np.arange(40), 10)
        success = rng.random(400) < p[tasks]
        failure = np.minimum((rng.random(400)[:, None] > q.cumsum(1)[tasks]).sum(1), 3)
        labels = np.where(success, 4, failure)
        dec = brier_by_task(tasks, labels, success)
        inc = incoherence(dec.variance, dec.error)
        covered += inc.ci_low <= true <= inc.ci_high
        old = brier_by_task(tasks, labels, success, correction=False)
        old_inc = incoherence(old.variance, old.error, n_boot=300, interval="bootstrap")
        plug_covered += old_inc.ci_low <= true <= old_inc.ci_high
    assert covered / reps >= 0.85 and plug_covered / reps <= 0.8


def test_synthetic_population_all_coherent_vs_all_incoherent():
    rng = np.random.default_rng(5)
    tasks, labels, hits = _simulate_population(300, 30, rng)
    coherent = tasks % 2 == 0
    dec_c = brier_by_task(tasks[coherent] // 2, labels[coherent], hits[coherent])
    dec_i = brier_by_task(tasks[~coherent] // 2, labels[~coherent], hits[~coherent])
    inc_c = incoherence(dec_c.variance, dec_c.error, n_boot=500)
    inc_i = incoherence(dec_i.variance, dec_i.error, n_boot=500)
    assert inc_c.ci_low <= 0.5 <= inc_c.ci_high
    assert inc_i.ci_low <= 0.7 <= inc_i.ci_high
    diff = incoherence_difference(dec_i, dec_c, n_boot=500)
    assert diff.ci_low <= 0.2 <= diff.ci_high and diff.ci_low > 0


# ---------------------------------------------------------------------------- failures


def test_failure_consistency_hand_computed():
    # failed runs a a a b (the success s is ignored): m = 4
    # consistency = (3·2 + 1·0) / (4·3) = 1/2
    # entropy = H(3/4, 1/4) / log 4 = (3/4 log 4/3 + 1/4 log 4) / log 4 ≈ 0.4056
    fc = failure_consistency(["a", "a", "a", "b", "s"], [True, True, True, True, False])
    assert fc.consistency[0] == pytest.approx(0.5)
    h = (0.75 * math.log(4 / 3) + 0.25 * math.log(4)) / math.log(4)
    assert fc.entropy[0] == pytest.approx(h)
    assert fc.value == pytest.approx(0.5) and fc.failures[0] == 4


def test_failure_consistency_extremes_and_pooling():
    labels = ["a", "a", "a", "x", "y", "z", "k", "q"]
    failed = [True] * 8
    tasks = [0, 0, 0, 1, 1, 1, 2, 3]
    fc = failure_consistency(labels, failed, tasks)
    assert fc.consistency[0] == 1.0 and fc.entropy[0] == 0.0  # all share a cluster
    assert fc.consistency[1] == 0.0 and fc.entropy[1] == pytest.approx(1.0)  # all distinct
    assert math.isnan(fc.consistency[2]) and math.isnan(fc.entropy[2])  # m = 1
    # pooled: (3·2 + 0) / (3·2 + 3·2) = 1/2
    assert fc.value == pytest.approx(0.5) and fc.n_tasks_with_pairs == 2
    # failure diversity is the complement: 1 − 1/2 pooled; per task 0, 1, nan
    assert fc.diversity == pytest.approx(0.5) and fc.to_dict()["diversity"] == pytest.approx(0.5)
    assert fc.task_diversity[0] == 0.0 and fc.task_diversity[1] == 1.0
    assert math.isnan(fc.task_diversity[2])
    none = failure_consistency(["a", "b"], [False, False])
    assert math.isnan(none.value) and none.to_dict()["value"] is None


# ---------------------------------------------------------------------------- pass^k


def test_pass_k_hand_computed():
    # n = 4, c = 2: pass^1 = 2/4, pass^2 = C(2,2)/C(4,2) = 1/6, pass^3 = 0
    assert pass_hat_k([4], [2]) == pytest.approx({1: 0.5, 2: 1 / 6, 3: 0.0, 4: 0.0})
    # n = 4, c = 1: pass@2 = 1 − C(3,2)/C(4,2) = 1 − 3/6 = 1/2; pass@4 = 1
    assert pass_at_k([4], [1]) == pytest.approx({1: 0.25, 2: 0.5, 3: 0.75, 4: 1.0})
    # every k is averaged over the tasks with at least max(k) runs: asking for k = 3 leaves the
    # n = 2 task out of k = 1 too, so pass^1 and pass^3 describe the same tasks
    assert pass_hat_k([4, 2], [4, 1], k=[1, 3]) == pytest.approx({1: 1.0, 3: 1.0})
    assert pass_hat_k([4, 2], [4, 1], k=1) == pytest.approx({1: (1 + 0.5) / 2})
    assert math.isnan(pass_hat_k([2], [1], k=5)[5])
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_hat_k([2], [3])
    with pytest.raises(ValueError, match="positive integer"):
        pass_at_k([2], [1], k=0)


def _brute(n, c, k):
    """Enumerate every k-subset of the runs: fraction all-success and fraction any-success."""
    runs = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    all_ok = sum(all(runs[i] for i in s) for s in subsets) / len(subsets)
    any_ok = sum(any(runs[i] for i in s) for s in subsets) / len(subsets)
    return all_ok, any_ok


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.integers(1, 9).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
        min_size=1,
        max_size=5,
    )
)
def test_pass_k_against_brute_force(tasks):
    n = [t[0] for t in tasks]
    c = [t[1] for t in tasks]
    hat, at = pass_hat_k(n, c), pass_at_k(n, c)
    assert sorted(hat) == list(range(1, min(n) + 1))
    for k in hat:
        brute = [_brute(nn, cc, k) for nn, cc in zip(n, c, strict=True)]
        assert hat[k] == pytest.approx(np.mean([b[0] for b in brute]), abs=1e-12)
        assert at[k] == pytest.approx(np.mean([b[1] for b in brute]), abs=1e-12)


def test_pass_k_large_n_is_stable():
    # C(1000, 500) overflows floats; the product form does not
    hat = pass_hat_k([1000], [999], k=[1, 500, 1000])
    assert hat[1] == pytest.approx(0.999)
    assert hat[500] == pytest.approx(0.5)  # C(999,500)/C(1000,500) = 500/1000
    assert hat[1000] == 0.0
