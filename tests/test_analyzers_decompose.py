"""Decompositions on hand-computed cases and their identities as properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hotmess.analyzers import (
    brier_by_task,
    brier_decomposition,
    checks_decomposition,
    embedding_decomposition,
    kl_decomposition,
    mse_by_task,
    mse_decomposition,
)

# ---------------------------------------------------------------------------- Brier, by hand


def test_brier_hand_computed():
    # labels a a b c, reference a: p̄ = (1/2, 1/4, 1/4), p̄_y = 1/2
    # error = 2 (1 − 1/2) = 1
    # bias = (1 − 1/2)² + (1/4)² + (1/4)² = 1/4 + 1/16 + 1/16 = 3/8
    # variance = 1 − (1/4 + 1/16 + 1/16) = 5/8
    d = brier_decomposition(["a", "a", "b", "c"], "a", correction=False)
    assert d.error == pytest.approx(1.0)
    assert d.bias == pytest.approx(3 / 8)
    assert d.variance == pytest.approx(5 / 8)
    assert d.n == 4 and d.has_reference


def test_brier_reference_not_among_runs():
    # p̄_y = 0: error = 2, bias = 1 + 3/8 = 11/8, variance unchanged 5/8
    d = brier_decomposition(["a", "a", "b", "c"], "z", correction=False)
    assert (d.error, d.bias, d.variance) == pytest.approx((2.0, 11 / 8, 5 / 8))


def test_brier_no_reference_is_variance_only():
    d = brier_decomposition(["a", "a", "b", "c"], correction=False)
    assert d.variance == pytest.approx(5 / 8)
    assert math.isnan(d.bias) and math.isnan(d.error) and not d.has_reference
    assert d.to_dict()["bias"] is None and d.to_dict()["error"] is None


def test_brier_all_correct_and_all_one_wrong_cluster():
    d = brier_decomposition(["a"] * 5, "a", correction=False)
    assert (d.bias, d.variance, d.error) == (0.0, 0.0, 0.0)
    d = brier_decomposition(["w"] * 5, "a", correction=False)
    # coherent failure: all error is bias. bias = 1 + 1 = 2, variance 0
    assert (d.bias, d.variance, d.error) == (2.0, 0.0, 2.0)


def test_brier_correction_is_the_default_and_keeps_the_identity():
    # plug-in: bias 3/8, variance 5/8, error 1. Unbiased: variance 5/8 × 4/3 = 5/6,
    # bias 3/8 − (5/8)/3 = 1/6, error unchanged 1 = 1/6 + 5/6
    d = brier_decomposition(["a", "a", "b", "c"], "a")
    assert d.correction and d.variance == pytest.approx(5 / 6)
    assert d.bias == pytest.approx(1 / 6) and d.error == pytest.approx(1.0)
    # the corrected bias is the pair-count estimate of ‖y − p‖²: (n−h)(n−h−1)/(n(n−1)) + Σ c(c−1)/(n(n−1))
    assert d.bias == pytest.approx((2 * 1) / 12 + 0 + 0)
    one = brier_decomposition(["a"], "a")
    assert math.isnan(one.variance) and math.isnan(one.bias)  # one run: no variance
    # a different miss every time: error 2 stays 2 (the old correction gave 2 + 1/3 here)
    spread = brier_decomposition(["w", "x", "y", "z"], "a")
    assert spread.error == pytest.approx(2.0) and spread.bias == pytest.approx(1.0)
    assert spread.variance == pytest.approx(1.0)


def test_unbiased_correction_never_pushes_error_past_two():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 8))
        labels = rng.integers(0, 4, n).tolist()
        d = brier_decomposition(labels, 0)
        assert d.error <= 2.0 + 1e-12 and d.bias >= 0.0
        assert d.bias + d.variance == pytest.approx(d.error, abs=1e-12)


def test_kl_stays_plug_in():
    d = kl_decomposition([[0.7, 0.3], [0.4, 0.6]], 0)
    assert not d.correction
    assert d.to_dict() == kl_decomposition([[0.7, 0.3], [0.4, 0.6]], 0, correction=False).to_dict()


def test_mse_correction_clips_a_negative_bias():
    # s = (0, 2), τ = 1: s̄ = τ, plug-in bias 0, variance 1 → unbiased bias −1 clipped to 0,
    # variance = error = 1 (identity kept)
    d = mse_decomposition([0, 2], 1)
    assert (d.bias, d.variance, d.error) == pytest.approx((0.0, 1.0, 1.0))


def test_brier_by_task_matches_single_task():
    tasks = [0, 0, 0, 0, 1, 1, 1, 2]
    labels = ["a", "a", "b", "c", "x", "y", "y", "q"]
    hit = [True, True, False, False, False, True, True, False]
    out = brier_by_task(tasks, labels, hit, has_reference=[True, True, False], correction=False)
    d0 = brier_decomposition(labels[:4], "a", correction=False)
    d1 = brier_decomposition(labels[4:7], "y", correction=False)
    assert out[0].to_dict() == d0.to_dict()
    assert out.bias[1] == pytest.approx(d1.bias) and out.error[1] == pytest.approx(d1.error)
    assert math.isnan(out.error[2]) and out.variance[2] == 0.0


def test_brier_by_task_validation():
    with pytest.raises(ValueError, match="different clusters"):
        brier_by_task([0, 0], ["a", "b"], [True, True], correction=False)
    with pytest.raises(ValueError, match="one per run"):
        brier_by_task([0, 0], ["a", "b"], [True], correction=False)
    with pytest.raises(ValueError, match="same length|one per run"):
        brier_by_task([0, 0, 1], ["a", "b"], correction=False)
    with pytest.raises(ValueError, match="at least one run"):
        brier_decomposition([], "a", correction=False)


# ---------------------------------------------------------------------------- KL, by hand


def test_kl_hand_computed():
    # f1 = (.7, .3), f2 = (.4, .6), y = class 0
    # geometric means: g = (sqrt(.28), sqrt(.18)), Z = g0 + g1, f̄ = g / Z
    # bias = KL(y‖f̄) = −log f̄_0; variance = E KL(f̄‖f) = −log Z
    # error = E CE = (−log .7 − log .4) / 2
    g0, g1 = math.sqrt(0.7 * 0.4), math.sqrt(0.3 * 0.6)
    z = g0 + g1
    d = kl_decomposition([[0.7, 0.3], [0.4, 0.6]], 0)
    assert d.bias == pytest.approx(-math.log(g0 / z), rel=1e-9)
    assert d.variance == pytest.approx(-math.log(z), rel=1e-9)
    assert d.error == pytest.approx((-math.log(0.7) - math.log(0.4)) / 2, rel=1e-9)
    assert d.error == pytest.approx(d.bias + d.variance, rel=1e-9)


def test_kl_distribution_reference_and_smoothing():
    # identical confident predictions: variance 0; a one-hot on the wrong class is
    # finite thanks to the δ = 1e-12 smoothing (≈ −log 1e-12 ≈ 27.6)
    d = kl_decomposition([[1.0, 0.0], [1.0, 0.0]], 1)
    assert d.variance == pytest.approx(0.0, abs=1e-12)
    assert 27 < d.bias < 28 and d.error == pytest.approx(d.bias)
    # reference distribution (.5, .5), predictions uniform: everything 0
    d = kl_decomposition([[0.5, 0.5], [0.5, 0.5]], [0.5, 0.5])
    assert (d.bias, d.variance, d.error) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    d = kl_decomposition([[2.0, 2.0]])  # rows are normalised; no reference
    assert math.isnan(d.error) and d.variance == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="out of range"):
        kl_decomposition([[0.5, 0.5]], 2)
    with pytest.raises(ValueError, match="non-negative"):
        kl_decomposition([[-0.5, 1.5]], 0)


# ---------------------------------------------------------------------------- checks, by hand


def test_checks_hand_computed():
    # runs (1, 0) and (1, 1): ȳ = (1, 1/2)
    # error = mean (1 − y)² = (0 + 1 + 0 + 0) / 4 = 1/4
    # bias = mean_t (1 − ȳ_t)² = (0 + 1/4) / 2 = 1/8
    # variance = mean (y − ȳ_t)² = (0 + 1/4 + 0 + 1/4) / 4 = 1/8
    d = checks_decomposition([[1, 0], [1, 1]], correction=False)
    assert (d.error, d.bias, d.variance) == pytest.approx((1 / 4, 1 / 8, 1 / 8))
    d = checks_decomposition([[True, False, False], [True, False, False]], correction=False)
    # consistent misses: all bias. error = bias = 2/3, variance 0
    assert (d.error, d.bias, d.variance) == pytest.approx((2 / 3, 2 / 3, 0.0))
    with pytest.raises(ValueError, match="0/1"):
        checks_decomposition([[2, 0]], correction=False)
    with pytest.raises(ValueError, match="non-empty 2-D"):
        checks_decomposition([1, 0], correction=False)


# ---------------------------------------------------------------------------- mse, by hand


def test_mse_hand_computed():
    # s = (0, 1, 1), τ = 1: s̄ = 2/3
    # error = (1 + 0 + 0)/3 = 1/3; bias = (2/3 − 1)² = 1/9; variance = (4/9 + 1/9 + 1/9)/3 = 2/9
    d = mse_decomposition([0, 1, 1], 1, correction=False)
    assert (d.error, d.bias, d.variance) == pytest.approx((1 / 3, 1 / 9, 2 / 9))
    d = mse_decomposition([0, 1, 1], correction=False)
    assert math.isnan(d.error) and d.variance == pytest.approx(2 / 9)
    out = mse_by_task([0, 0, 0, 1, 1], [0, 1, 1, 5, 7], [1.0, np.nan], correction=False)
    assert out.error[0] == pytest.approx(1 / 3)
    assert out.variance[1] == pytest.approx(1.0) and math.isnan(out.bias[1])
    with pytest.raises(ValueError, match="finite"):
        mse_by_task([0], [np.nan], [1.0], correction=False)


# ---------------------------------------------------------------------------- embeddings


def test_embedding_hand_computed():
    # v = (0,0), (2,0): v̄ = (1,0); variance = (1 + 1)/2 = 1
    # reference (1, 1): bias = 1; error = ((1+1) + (1+1))/2 = 2
    d = embedding_decomposition([[0, 0], [2, 0]], [1, 1], correction=False)
    assert (d.variance, d.bias, d.error) == pytest.approx((1.0, 1.0, 2.0))
    d = embedding_decomposition([[0, 0], [2, 0]], correction=False)
    assert d.variance == 1.0 and math.isnan(d.bias)


# ---------------------------------------------------------------------------- properties

labels_st = st.lists(st.sampled_from("abcde"), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(labels_st, st.sampled_from("abcz"), st.booleans())
def test_brier_identity_property(labels, reference, correction):
    d = brier_decomposition(labels, reference, correction=correction)
    if correction and len(labels) < 2:
        return
    assert d.error == pytest.approx(d.bias + d.variance, abs=1e-12)
    assert 0.0 <= d.bias <= 2.0 + 1e-12
    if not correction:
        assert 0.0 <= d.variance <= 1.0
        p_y = labels.count(reference) / len(labels)
        assert d.error == pytest.approx(2 * (1 - p_y))


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(
        np.int8, st.tuples(st.integers(1, 12), st.integers(1, 6)), elements=st.integers(0, 1)
    ),
    st.booleans(),
)
def test_checks_identity_property(matrix, correction):
    d = checks_decomposition(matrix, correction=correction)
    if correction and matrix.shape[0] < 2:
        return
    assert d.error == pytest.approx(d.bias + d.variance, abs=1e-12)
    assert d.variance >= 0 and d.bias >= 0


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(st.lists(finite, min_size=1, max_size=30), finite)
def test_mse_identity_property(scores, target):
    d = mse_decomposition(scores, target, correction=False)
    assert d.error == pytest.approx(d.bias + d.variance, rel=1e-9, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 10), st.integers(2, 5)),
        elements=st.floats(0.0, 1.0, allow_nan=False),
    ),
    st.integers(0, 4),
)
def test_kl_identity_property(probs, index):
    probs = probs + 1e-3  # keep rows with a positive sum
    index = index % probs.shape[1]
    d = kl_decomposition(probs, index)
    assert d.error == pytest.approx(d.bias + d.variance, rel=1e-7, abs=1e-9)
    assert d.variance >= -1e-12 and d.bias >= -1e-12
