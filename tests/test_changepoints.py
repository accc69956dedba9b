"""Change points within tasks on seeded simulations with a known change (or none)."""

import numpy as np

from hotmess.analyzers.changepoints import behaviour_change_points, mix_change_points


def _series(change_at=None, n_windows=30, per_window=30, seed=1, mix_shift=False):
    rng = np.random.default_rng(seed)
    window, task, cluster = [], [], []
    for w in range(n_windows):
        after = change_at is not None and w >= change_at
        weights = [0.6, 0.2, 0.2] if mix_shift and w >= 20 else [1 / 3] * 3
        for _ in range(per_window):
            t = rng.choice(3, p=weights)
            probs = [0.4, 0.1, 0.5] if after else [0.6, 0.3, 0.1]  # success, wrong a, wrong b
            window.append(w)
            task.append(f"t{t}")
            cluster.append(["ok", "a", "b"][rng.choice(3, p=probs)])
    return window, task, cluster


def test_a_change_in_success_and_spread_is_found_and_located():
    window, task, cluster = _series(change_at=20)
    found = behaviour_change_points(window, task, cluster, 30, n_perm=199)
    assert len(found) >= 1
    first = found[0]
    assert abs(first.window - 20) <= 1
    assert first.low <= 20 <= first.high
    assert first.low <= first.window <= first.high
    assert first.p_value < 0.05


def test_no_change_flags_nothing():
    window, task, cluster = _series(change_at=None, seed=3)
    assert behaviour_change_points(window, task, cluster, 30, n_perm=199) == []


def test_a_shift_in_the_task_mix_is_a_mix_change_not_a_behaviour_change():
    window, task, cluster = _series(change_at=None, seed=5, mix_shift=True)
    assert behaviour_change_points(window, task, cluster, 30, n_perm=199) == []
    mix = mix_change_points(window, task, 30, n_perm=199)
    assert mix and abs(mix[0].window - 20) <= 1


def test_the_shuffle_statistic_is_the_same_whatever_the_labels_width():
    """Labels of up to 16 bits are sorted by radix (a uint16 array); wider ones as int64: the
    stable order, and so every G and Z of every shuffle, must not depend on which."""
    from hotmess.analyzers.changepoints import _Series

    rng = np.random.default_rng(5)
    n, n_windows = 3000, 12
    window = rng.integers(0, n_windows, n)
    stratum = rng.integers(0, 40, n)
    label = rng.integers(0, 300, n)
    series = _Series(window, stratum, [label], n_windows)
    (narrow,) = series.statistics
    assert narrow.label.dtype == np.uint16
    shuffles = series.shuffled(16, rng)
    g16, z16 = narrow.statistics(shuffles)
    narrow.label = narrow.label.astype(np.int64)
    g64, z64 = narrow.statistics(shuffles)
    assert np.array_equal(g16, g64) and np.array_equal(z16, z64)
    many = 70_000  # more labels than 16 bits hold: kept as they are
    wide = _Series(np.arange(many) % n_windows, np.zeros(many, dtype=np.int64), [np.arange(many)], n_windows)
    assert wide.statistics[0].label.dtype == np.int64
