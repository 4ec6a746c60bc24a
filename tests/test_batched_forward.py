"""The blocked forward of Dense networks (``interpreter.dense_predict_many``, used by
``predict_many`` / ``predict_proba_many`` and so by the daemon's batch predictions) against the
float64 NumPy oracle and against the row-by-row compiled forward it replaces."""

from __future__ import annotations

import numpy as np
import pytest
from oracle.dense import dense_forward, softmax

from tweenstream import Dense, Learner, Network
from tweenstream.models.activations import ACTIVATION_CODES
from tweenstream.runtime.dense import BLOCK

ACTS = sorted(a for a in ACTIVATION_CODES if a != "softmax")


def _oracle(learner: Learner, X: np.ndarray) -> np.ndarray:
    out = []
    for x in X.astype(np.float64):
        for i, layer in enumerate(learner.network.layers):
            p = learner.arena.layer_params(i)
            _, x = dense_forward(p["W"].astype(np.float64), p["b"].astype(np.float64), x,
                                 layer.activation)
        out.append(softmax(x) if learner.network.task == "classification" else x)
    return np.array(out)


def _rowwise(learner: Learner, X: np.ndarray) -> np.ndarray:
    out = np.empty((X.shape[0], learner.network.n_outputs), np.float32)
    a = learner.arena
    learner.engine.predict_many(learner._plan.table, a.pbuf, a.work, learner._task, X, out)
    return out


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_blocks_match_the_oracle_and_the_row_forward(act, task):
    learner = Learner(Network(7, [Dense(13, act), Dense(9, act), Dense(3)], task=task),
                      seed=3, scaling="off", target_scaling="off")
    assert learner._block is not None
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2 * BLOCK + 5, 7)).astype(np.float32)
    learner.learn_many(X, rng.integers(0, 3, len(X)) if task == "classification"
                       else rng.standard_normal((len(X), 3)).astype(np.float32))
    for n in (1, 3, 4, 5, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 5):  # row groups, tails
        got = (learner.predict_proba_many(X[:n]) if task == "classification"
               else learner.predict_many(X[:n]))
        np.testing.assert_allclose(got, _oracle(learner, X[:n]), rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(got, _rowwise(learner, X[:n]), rtol=1e-5, atol=1e-6)


def test_a_row_that_is_not_finite_gets_nan_and_the_others_do_not_change():
    learner = Learner(Network(4, [Dense(6, "tanh"), Dense(3)]), seed=0, scaling="off")
    X = np.random.default_rng(1).standard_normal((9, 4)).astype(np.float32)
    clean = learner.predict_proba_many(X)
    X[5, 2] = np.inf
    out = np.empty((9, 3), np.float32)
    from tweenstream.runtime.interpreter import dense_predict_many

    dense_predict_many(learner._plan.table, learner.arena.pbuf, learner._task, X, out,
                       learner._block)
    assert np.isnan(out[5]).all()
    np.testing.assert_array_equal(np.delete(out, 5, 0), np.delete(clean, 5, 0))


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_same_rows_give_the_same_answer_in_any_block_position(task):
    # bit for bit: a row's output does not depend on the rows around it (scikit-learn's
    # check_methods_subset_invariance asks for 1e-7, about one float32 ulp)
    learner = Learner(Network(5, [Dense(8, "tanh"), Dense(7, "relu"), Dense(3)], task=task),
                      seed=0, scaling="off")
    X = np.random.default_rng(2).standard_normal((BLOCK + 9, 5)).astype(np.float32)
    predict = learner.predict_proba_many if task == "classification" else learner.predict_many
    whole = predict(X)
    np.testing.assert_array_equal(whole, predict(X))  # deterministic
    for start, stop in ((BLOCK, BLOCK + 9), (3, 4), (1, 6), (10, 17), (0, 63)):
        np.testing.assert_array_equal(predict(X[start:stop]), whole[start:stop])
    for i in range(X.shape[0]):
        np.testing.assert_array_equal(predict(X[i:i + 1]), whole[i:i + 1])


def test_other_kinds_keep_the_row_forward():
    from tweenstream.models import LayerNorm

    learner = Learner(Network(4, [Dense(6, "tanh"), LayerNorm(), Dense(3)]), seed=0)
    assert learner._block is None
    assert learner.predict_proba_many(np.zeros((3, 4), np.float32)).shape == (3, 3)
