"""bench/seed_protocols.py: the B1 and B2 tasks as the notes write them, and one short run of
every arm."""

from __future__ import annotations

import numpy as np
import pytest

from bench import seed_protocols as sp


def test_b1_is_the_sum_threshold_task():
    X, y, Xh, yh = sp.b1(np.random.default_rng(0))
    assert X.shape == (500, 8) and Xh.shape == (2_000, 8)
    assert ((X >= 0) & (X <= 1)).all()
    assert np.array_equal(y, (X.sum(axis=1) >= 4).astype(np.int64))
    assert np.array_equal(yh, (Xh.sum(axis=1) >= 4).astype(np.int64))


def test_b2_splits_iris_by_class_and_normalises_it():
    X, y, Xh, yh = sp.b2(np.random.default_rng(0))
    assert X.shape == (105, 4) and Xh.shape == (45, 4)
    assert np.bincount(y).tolist() == [35, 35, 35] and np.bincount(yh).tolist() == [15, 15, 15]
    both = np.concatenate([X, Xh])
    assert both.min() == 0.0 and both.max() == 1.0
    assert len({row.tobytes() for row in both}) >= 147  # the rows once each (UCI repeats 3)


@pytest.mark.parametrize("protocol", list(sp.PROTOCOLS))
def test_every_arm_runs_and_reports(protocol):
    for arm in sp.ARMS:
        row = sp.run(protocol, arm, seed=0, epochs=2)
        assert set(row) == {"protocol", "arm", "seed", "train_accuracy", "heldout", "majority",
                            "explosions"}
        assert 0.0 <= row["heldout"] <= 1.0 and 0.3 < row["majority"] < 0.6


def test_b8_switches_its_rule_every_500_steps_and_scores_as_written():
    from bench import rule_switch as rs

    X, y = rs.stream(0)
    assert X.shape == (3_000, 16) and y.shape == (3_000,)
    x_now = X[:, -1].astype(np.float64)
    for start, rule in ((0, np.square), (500, np.abs), (1_500, np.sign), (2_000, np.square)):
        np.testing.assert_allclose(y[start:start + 500], rule(x_now[start:start + 500]),
                                   rtol=1e-6, atol=1e-6)
    errors = np.zeros(3_000)
    errors[450:500] = 2.0  # the 50 steps before step 500
    got = rs.scores(errors)
    assert got["mse_at_500"] == 2.0 and got["mse_at_1000"] == 0.0
    assert got["mse_all"] == pytest.approx(100 / 3_000)
    zero, mean = rs.baselines(0)
    assert zero["mse_all"] == pytest.approx(float((y.astype(np.float64) ** 2).mean()))
    assert mean["mse_all"] < zero["mse_all"]
    learned = rs.run("tween (protocol: rate 0.05)", 0)
    assert learned["mse_all"] < 0.8 * mean["mse_all"] and learned["explosions"] == 0


def test_b7_cycles_each_frequency_and_scores_the_switches():
    from bench import sine_switch as ss

    X, y = ss.samples(2)
    assert X.shape == (84, 16) and y.min() >= 0.0 and y.max() <= 1.0
    np.testing.assert_array_equal(X[1, :-1], X[0, 1:])  # consecutive windows of one series
    assert y[0] == X[1, -1]  # the target is the value after the window
    Xs, ys = ss.stream(1_000)
    assert Xs.shape == (4_000, 16) and ys[1_000] == ss.samples(2)[1][0]
    np.testing.assert_array_equal(Xs[84], ss.samples(1)[0][0])  # cycled
    np.testing.assert_array_equal(Xs[1_000], ss.samples(2)[0][0])  # the next frequency
    correct = np.ones(4_000, bool)
    correct[1_000:1_060] = False  # the 3 windows (of 20 samples) after the first switch
    got = ss.summary(correct, 1_000)
    assert got["switches"][0] == {"before": 1.0, "after": 0.0, "windows_to_recover": 3}
    assert got["switches"][1]["windows_to_recover"] == 0
    row = ss.run("Conv2D", "tween (defaults)", 0, 1_000)
    assert 0.0 <= row["accuracy"] <= 1.0 and len(row["switches"]) == 3
