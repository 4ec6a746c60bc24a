"""Losses: softmax cross-entropy, squared error, cosine, and their mix (``loss="cosine"``,
``cosine_weight``), checked against finite differences of a float64 NumPy twin, and the twins
(tests/oracle/losses.py) against PyTorch's values and gradients (tests/data/torch_losses.npz)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from oracle import losses as ref_losses

from tweenstream import Dense, Learner, Network, TimeDense
from tweenstream.runtime.refine import GradientShare


def _loss(params: np.ndarray, x: np.ndarray, y: np.ndarray, w: float) -> float:
    """The twin: Dense(5, tanh) then Dense(4) on 3 inputs; (1 - w) 0.5 |y - a|^2 +
    w (1 - cos(a, y)), in float64."""
    W1, b1 = params[:15].reshape(5, 3), params[15:20]
    W2, b2 = params[20:40].reshape(4, 5), params[40:44]
    a = W2 @ np.tanh(W1 @ x + b1) + b2
    cos = a @ y / (np.linalg.norm(a) * np.linalg.norm(y))
    return (1 - w) * 0.5 * float(((y - a) ** 2).sum()) + w * (1.0 - cos)


@pytest.mark.parametrize("loss, weight", [("squared", 0.9), ("cosine", 0.5), ("cosine", 0.9),
                                          ("cosine", 1.0)])
def test_the_kernel_gradient_matches_finite_differences(loss, weight):
    rng = np.random.default_rng(0)
    net = Network(3, [Dense(5, "tanh"), Dense(4)], task="regression")
    params = rng.normal(0, 0.5, net.param_count)
    x, y = rng.normal(size=3), rng.normal(size=4)
    share = GradientShare(net, x[None].astype(np.float32), np.zeros(1, np.int64),
                          y[None].astype(np.float32), loss=(loss, weight))
    descent = share.accumulate(params.astype(np.float32), np.array([0])).astype(np.float64)
    w = weight if loss == "cosine" else 0.0
    numeric = np.zeros_like(params)
    for i in range(len(params)):
        step = np.zeros_like(params)
        step[i] = 1e-6
        numeric[i] = (_loss(params + step, x, y, w) - _loss(params - step, x, y, w)) / 2e-6
    assert np.allclose(descent, -numeric, rtol=1e-3, atol=1e-5)


def test_a_cosine_learner_aligns_its_outputs_with_the_targets():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4_000, 6)).astype(np.float32)
    M = rng.normal(size=(6, 4))
    Y = (X @ M * rng.uniform(0.5, 2.0, (4_000, 1))).astype(np.float32)  # direction matters
    model = Learner(Network(6, [Dense(16, "tanh"), Dense(4)], task="regression"),
                    mode="backprop", loss="cosine", cosine_weight=1.0, target_scaling="off",
                    seed=0)
    model.learn_many(X[:3_000], Y[:3_000])
    out = model.predict_many(X[3_000:])
    cos = (out * Y[3_000:]).sum(1) / (np.linalg.norm(out, axis=1)
                                       * np.linalg.norm(Y[3_000:], axis=1))
    assert np.median(cos) > 0.95


def test_bad_loss_settings_are_refused():
    with pytest.raises(ValueError, match="loss must be one of"):
        Learner(Network(3, [Dense(2)], task="regression"), loss="hinge")
    with pytest.raises(ValueError, match=r"cosine_weight must be in \[0, 1\]"):
        Learner(Network(3, [Dense(2)], task="regression"), loss="cosine", cosine_weight=1.5)
    with pytest.raises(ValueError, match="is for regression"):
        Learner(Network(3, [Dense(2)]), loss="cosine")


# --- against PyTorch ------------------------------------------------------------------------
TORCH = np.load(Path(__file__).parent / "data" / "torch_losses.npz")


def test_the_oracle_losses_are_pytorchs():
    """The float64 twins of tests/oracle/losses.py give PyTorch's values and gradients
    (tests/data/make_torch_losses.py): cross-entropy, squared error and the cosine hybrid,
    per step and over a flat output."""
    for z, c, value, grad in zip(TORCH["ce_logits"], TORCH["ce_labels"], TORCH["ce_loss"],
                                 TORCH["ce_grad"], strict=True):
        mine = ref_losses.cross_entropy(z, int(c))
        np.testing.assert_allclose(mine[0], value, rtol=1e-12)
        np.testing.assert_allclose(mine[1], grad, rtol=1e-10, atol=1e-14)
    for a, y, value, grad in zip(TORCH["sq_a"], TORCH["sq_y"], TORCH["sq_loss"],
                                 TORCH["sq_grad"], strict=True):
        mine = ref_losses.squared(a, y)
        np.testing.assert_allclose(mine[0], value, rtol=1e-12)
        np.testing.assert_allclose(mine[1], grad, rtol=1e-12)
    for tag in ("seq", "flat"):
        for w in TORCH["weights"]:
            cases = zip(TORCH[f"cos_{tag}_a"], TORCH[f"cos_{tag}_y"],
                        TORCH[f"cos_{tag}_{w}_loss"], TORCH[f"cos_{tag}_{w}_grad"], strict=True)
            for a, y, value, grad in cases:
                mine = ref_losses.cosine_mix(a, y, float(w))
                np.testing.assert_allclose(mine[0], value, rtol=1e-12, err_msg=f"{tag} {w}")
                np.testing.assert_allclose(mine[1], grad, rtol=1e-10, atol=1e-14,
                                           err_msg=f"{tag} {w}")


def _identity(learner_net: Network) -> np.ndarray:
    """The parameters of a one-layer network whose output is its input: W = I, b = 0."""
    n = learner_net.shapes[-1][-1]
    return np.concatenate([np.eye(n).ravel(), np.zeros(n)]).astype(np.float32)


@pytest.mark.parametrize("w", [0.0, 0.5, 0.9, 1.0])
def test_the_compiled_cosine_loss_is_the_oracles_per_step_and_flat(w):
    """Through an identity layer the engine's loss is the oracle's and its descent direction
    is minus the oracle's gradient: on b directly for a flat output (Dense), summed over the
    steps as W's and b's gradients for a sequence output (TimeDense)."""
    a_seq, y_seq = TORCH["cos_seq_a"], TORCH["cos_seq_y"]
    steps, d = a_seq.shape[1:]
    net = Network((steps, d), [TimeDense(d)], task="regression")
    for a, y in zip(a_seq, y_seq, strict=True):
        share = GradientShare(net, a.reshape(1, -1).astype(np.float32), np.zeros(1, np.int64),
                              y.reshape(1, -1).astype(np.float32), loss=("cosine", w))
        descent = share.accumulate(_identity(net), np.array([0])).astype(np.float64)
        value, grad = ref_losses.cosine_mix(a.astype(np.float32).astype(np.float64),
                                            y.astype(np.float32).astype(np.float64), w)
        assert share.last_loss == pytest.approx(value, rel=1e-5, abs=1e-6)
        x = a.astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(descent[:d * d].reshape(d, d), -(grad.T @ x), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(descent[d * d:], -grad.sum(0), rtol=1e-4, atol=1e-5)
    a_flat, y_flat = TORCH["cos_flat_a"][:, 0], TORCH["cos_flat_y"][:, 0]
    n = a_flat.shape[1]
    net = Network(n, [Dense(n)], task="regression")
    for a, y in zip(a_flat, y_flat, strict=True):
        share = GradientShare(net, a[None].astype(np.float32), np.zeros(1, np.int64),
                              y[None].astype(np.float32), loss=("cosine", w))
        descent = share.accumulate(_identity(net), np.array([0])).astype(np.float64)
        value, grad = ref_losses.cosine_mix(a[None].astype(np.float32).astype(np.float64),
                                            y[None].astype(np.float32).astype(np.float64), w)
        assert share.last_loss == pytest.approx(value, rel=1e-5, abs=1e-6)
        np.testing.assert_allclose(descent[n * n:], -grad[0], rtol=1e-4, atol=1e-5)


def test_the_compiled_cross_entropy_is_the_oracles():
    net = Network(5, [Dense(5)])
    for z, c in zip(TORCH["ce_logits"], TORCH["ce_labels"], strict=True):
        share = GradientShare(net, z[None].astype(np.float32), np.array([c], np.int64),
                              np.zeros((1, 5), np.float32))
        descent = share.accumulate(_identity(net), np.array([0])).astype(np.float64)
        value, grad = ref_losses.cross_entropy(z.astype(np.float32).astype(np.float64), int(c))
        assert share.last_loss == pytest.approx(value, rel=1e-5, abs=1e-6)
        np.testing.assert_allclose(descent[25:], -grad, rtol=1e-4, atol=1e-6)
