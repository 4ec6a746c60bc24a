"""Finite-difference checks of the oracle's backprop gradient, and of the engine through it.

The oracle's analytic gradient (``oracle.backprop_gradient``) is compared, in float64, with
central differences of the loss (softmax cross-entropy, or ½ squared error) with respect to
every weight, bias and input, for every activation. Then one engine backprop step from zero
momentum with ``momentum=0`` must move the parameters by ``-learning_rate * gradient``, which
checks the engine against finite differences transitively.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import central_difference
from oracle import (
    ACTIVATIONS,
    activation,
    activation_derivative,
    backprop_gradient,
    flatten,
    loss,
)

from tweenstream import Dense, Learner, Network

EPS = 1e-6  # central-difference step; truncation ~EPS², roundoff ~1e-16 / EPS
FD_RTOL, FD_ATOL = 1e-6, 1e-8  # float64 finite differences vs analytic gradient
KINK_MARGIN = 1e-4  # relu/leaky_relu pre-activations must be this far from 0 (seeded data)
# Engine (float32) after one step vs the float64 oracle: the momentum row holds the raw step
# direction; the parameter change W1 - W0 loses ~1 ulp of |W| ~ 1 to cancellation.
ENGINE_RTOL, ENGINE_ATOL = 1e-4, 1e-6
STEP_RTOL, STEP_ATOL = 1e-3, 1e-6
LEARNING_RATE = 0.1
# The engine's own f and f' against the oracle's, probed through a 1 -> 1 network, at z up to
# +-1000 (inputs are not normalised for the user). A float32 f is within a few ulp; f' may lose
# ~1e-6 absolute to cancellation (1 - tanh² near saturation, times gelu's growing factor).
PROBE_Z = np.concatenate([np.linspace(-12.0, 12.0, 97),
                          [-1000.0, -100.0, -20.0, -15.0, 15.0, 20.0, 100.0, 1000.0]])
PROBE_Z = PROBE_Z.astype(np.float32)
ACT_RTOL, ACT_ATOL = 4e-7, 3e-7
DACT_RTOL, DACT_ATOL = 1e-6, 2e-6
TAIL_Z = np.linspace(-30.0, -3.0, 28).astype(np.float32)
TAIL_RTOL = 1e-5  # plain float32 1/(1+exp(-z)) is within ~1e-7 relative
TAIL_ATOL = 1e-12  # below that, fastmath's approximate exp drifts to ~2e-4 relative (z = -30)


def networks_for(act: str) -> list[Network]:
    """A 3-layer classifier with ``act`` hidden layers and a regressor with ``act`` everywhere."""
    return [
        Network(4, [Dense(6, act), Dense(5, act), Dense(3)]),
        Network(4, [Dense(5, act), Dense(2, act)], task="regression"),
    ]


def random_params(net: Network, rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
    """Seeded float64 (W, b) per layer, of a scale where every activation is non-linear."""
    params = []
    for spec, shape in zip(net.layers, net.in_shapes, strict=True):
        params.append((0.8 * rng.standard_normal((spec.units, shape[0])),
                       0.3 * rng.standard_normal(spec.units)))
    return params


def random_sample(net: Network, rng: np.random.Generator) -> tuple[np.ndarray, object]:
    x = rng.standard_normal(net.n_inputs)
    if net.task == "classification":
        return x, int(rng.integers(0, net.n_outputs))
    return x, rng.uniform(-1.0, 1.0, net.n_outputs)


def assert_far_from_kinks(Ws: list[np.ndarray], bs: list[np.ndarray], acts: list[str],
                          x: np.ndarray) -> None:
    h = x
    for W, b, act in zip(Ws, bs, acts, strict=True):
        z = W @ h + b
        if act in ("relu", "leaky_relu"):
            assert np.abs(z).min() > KINK_MARGIN, "resample: a pre-activation sits on the kink"
        h = activation(act, z)


def check_against_finite_differences(net: Network, Ws: list[np.ndarray], bs: list[np.ndarray],
                                     x: np.ndarray, y: object) -> None:
    acts = [spec.activation for spec in net.layers]
    classify = net.task == "classification"
    assert_far_from_kinks(Ws, bs, acts, x)
    ref_dW, ref_db, ref_dx = backprop_gradient(Ws, bs, acts, x, y, classify)

    def f() -> float:
        return loss(Ws, bs, acts, x, y, classify)

    for i in range(len(Ws)):
        np.testing.assert_allclose(ref_dW[i], central_difference(f, Ws[i]), rtol=FD_RTOL,
                                   atol=FD_ATOL, err_msg=f"dloss/dW of layer {i}")
        np.testing.assert_allclose(ref_db[i], central_difference(f, bs[i]), rtol=FD_RTOL,
                                   atol=FD_ATOL, err_msg=f"dloss/db of layer {i}")
    np.testing.assert_allclose(ref_dx, central_difference(f, x), rtol=FD_RTOL, atol=FD_ATOL,
                               err_msg="dloss/dx")


@pytest.mark.parametrize("act", [*ACTIVATIONS, "softmax"])
def test_activation_derivative_matches_finite_differences(act: str) -> None:
    rng = np.random.default_rng(1)
    z = rng.uniform(-4.0, 4.0, 200)
    z = z[np.abs(z) > KINK_MARGIN]
    ref = activation_derivative(act, z)
    fd = (activation(act, z + EPS) - activation(act, z - EPS)) / (2.0 * EPS)
    np.testing.assert_allclose(ref, fd, rtol=FD_RTOL, atol=FD_ATOL)


def test_activation_values_at_the_kink() -> None:
    # docs/tweening.md: relu'(0) = 0, leaky_relu'(0) = 0.01.
    zero = np.zeros(1)
    assert activation_derivative("relu", zero)[0] == 0.0
    assert activation_derivative("leaky_relu", zero)[0] == 0.01
    np.testing.assert_allclose(activation("gelu", np.array([1.0])),
                               0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (1 + 0.044715))))


@pytest.mark.parametrize("task_index", [0, 1], ids=["classifier", "regressor"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_oracle_gradient_matches_finite_differences(act: str, task_index: int) -> None:
    net = networks_for(act)[task_index]
    rng = np.random.default_rng(100 + ACTIVATIONS.index(act))
    for _ in range(3):
        params = random_params(net, rng)
        x, y = random_sample(net, rng)
        check_against_finite_differences(net, [W for W, _ in params], [b for _, b in params],
                                         x, y)


@pytest.mark.parametrize("task_index", [0, 1], ids=["classifier", "regressor"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_engine_backprop_step_is_minus_lr_times_gradient(act: str, task_index: int) -> None:
    net = networks_for(act)[task_index]
    comp = Learner(net, mode="backprop", seed=7, momentum=0.0, learning_rate=LEARNING_RATE,
                   scaling="off", target_scaling="off", optimizer="sgd")
    rng = np.random.default_rng(200 + ACTIVATIONS.index(act))
    x, y = random_sample(net, rng)
    x32 = x.astype(np.float32)
    y_engine = y if net.task == "classification" else np.asarray(y, dtype=np.float32)
    y_ref = y if net.task == "classification" else y_engine.astype(np.float64)

    n_layers = len(net.layers)
    Ws = [comp.arena.layer_params(i)["W"].astype(np.float64) for i in range(n_layers)]
    bs = [comp.arena.layer_params(i)["b"].astype(np.float64) for i in range(n_layers)]
    comp_start = comp.arena.pbuf[0].copy()
    # The oracle gradient at exactly the engine's point is itself checked by finite differences.
    check_against_finite_differences(net, [W.copy() for W in Ws], [b.copy() for b in bs],
                                     x32.astype(np.float64), y_ref)
    ref_dW, ref_db, _ = backprop_gradient(Ws, bs, [s.activation for s in net.layers],
                                          x32.astype(np.float64), y_ref,
                                          net.task == "classification")
    ref_grad = flatten(ref_dW, ref_db)

    comp.learn_one(x32, y_engine)
    assert comp.state()["explosions"] == 0
    comp_velocity = comp.arena.pbuf[1].astype(np.float64)
    comp_step = comp.arena.pbuf[0].astype(np.float64) - comp_start
    np.testing.assert_allclose(comp_velocity, -ref_grad, rtol=ENGINE_RTOL, atol=ENGINE_ATOL,
                               err_msg="momentum after one step = -gradient")
    np.testing.assert_allclose(comp_step, -LEARNING_RATE * ref_grad, rtol=STEP_RTOL,
                               atol=STEP_ATOL, err_msg="parameter change = -lr * gradient")


def probe_learner(act: str) -> Learner:
    """A 1 -> 1 regression net whose backprop step exposes f(b) and f'(b) for x = 1, W = 0."""
    # No detection: the probe rewrites the parameters between steps, which is no explosion.
    return Learner(Network(1, [Dense(1, act)], task="regression"), mode="backprop", seed=0,
                   scaling="off", target_scaling="off", optimizer="sgd",
                   momentum=0.0, learning_rate=1e-6, max_param_jump=1e30, soft_detection=False)


def engine_activation(act: str) -> tuple[np.ndarray, np.ndarray]:
    """The engine's f(z) and f'(z) at PROBE_Z: f by prediction, f' = v_b / (y - a)."""
    comp = probe_learner(act)
    p = comp.arena.layer_params(0)
    one = np.ones(1, dtype=np.float32)
    comp_f, comp_df = np.empty(PROBE_Z.size), np.empty(PROBE_Z.size)
    for k, z in enumerate(PROBE_Z):
        p["W"][:] = 0.0
        p["b"][:] = z
        comp.arena.pbuf[1] = 0.0
        a = np.float32(comp.predict_one(np.zeros(1, dtype=np.float32)))
        y = a + np.float32(1.0)
        comp.learn_one(one, np.array([y], dtype=np.float32))
        comp_f[k] = a
        comp_df[k] = comp.arena.pbuf[1][1] / np.float64(y - a)  # v_b = (y - a) f'(z)
    assert comp.state()["explosions"] == 0
    return comp_f, comp_df


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_engine_activation_matches_oracle(act: str) -> None:
    comp_f, _ = engine_activation(act)
    ref_f = activation(act, PROBE_Z.astype(np.float64))
    np.testing.assert_allclose(comp_f, ref_f, rtol=ACT_RTOL, atol=ACT_ATOL)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_engine_activation_derivative_matches_oracle(act: str) -> None:
    _, comp_df = engine_activation(act)
    ref_df = activation_derivative(act, PROBE_Z.astype(np.float64))
    np.testing.assert_allclose(comp_df, ref_df, rtol=DACT_RTOL, atol=DACT_ATOL)


def test_engine_sigmoid_tail_relative_precision() -> None:
    comp = probe_learner("sigmoid")
    p = comp.arena.layer_params(0)
    p["W"][:] = 1.0
    p["b"][:] = 0.0
    comp_f = comp.predict_many(TAIL_Z.reshape(-1, 1)).astype(np.float64)
    ref_f = activation("sigmoid", TAIL_Z.astype(np.float64))
    np.testing.assert_allclose(comp_f, ref_f, rtol=TAIL_RTOL, atol=TAIL_ATOL)
