"""Online Adam and AdaGrad for backprop: the compiled step against a NumPy oracle and PyTorch,
their state through rollbacks, phase switches and files, and what they learn.

The PyTorch references are in tests/data/torch_optim.npz, made by tests/data/make_torch_optim.py
(torch is not a dependency; that script's docstring says how to make them again).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import quadrant_data
from oracle.optim import adagrad_step, adam_step

from tweenstream import Learner, Network, load
from tweenstream.runtime import layout
from tweenstream.runtime.update import apply_adaptive

DATA = Path(__file__).parent / "data"
RTOL, ATOL = 1e-5, 1e-6  # float32 rounding of a few steps
OPTIMIZERS = {"adam": layout.O_ADAM, "adagrad": layout.O_ADAGRAD}


# --- the compiled step against the oracle ---------------------------------------------------
def _apply(*, table, pbuf, diag, count, optimizer, lr, beta1, beta2, eps, step):
    """The kernel, called by keyword (its argument order is not the test's business)."""
    apply_adaptive(table=table, pbuf=pbuf, diag=diag, count=count, optimizer=optimizer, lr=lr,
                   beta1=beta1, beta2=beta2, eps=eps, step=step)


def _table(sizes: list[int]) -> np.ndarray:
    """A plan table of layers that own ``sizes`` parameters each, packed in order."""
    table = np.zeros((len(sizes), layout.NCOL), np.int64)
    table[:, layout.C_NP] = sizes
    table[:, layout.C_P] = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return table


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])
def test_compiled_step_matches_the_oracle(optimizer, batch):
    rng = np.random.default_rng(3)
    sizes = [7, 0, 13]  # a layer without parameters (an activation row) in the middle
    table = _table(sizes)
    n = sum(sizes)
    pbuf = np.zeros((layout.NPROW, n), np.float32)
    pbuf[layout.P_PARAM] = rng.standard_normal(n)
    diag = np.zeros((layout.NDROW, len(sizes)), np.float64)
    lr, beta1, beta2, eps = 0.03, 0.85, 0.99, 1e-6
    ref_w = pbuf[layout.P_PARAM].astype(np.float64)
    ref_m, ref_v = np.zeros(n), np.zeros(n)
    for t in range(1, 7):
        # the kinds add descent directions (minus the gradient) of `batch` samples to P_ACC
        directions = (rng.standard_normal((batch, n)) * rng.uniform(0.01, 2.0)).astype(np.float32)
        for d in directions:
            pbuf[layout.P_ACC] += d
        grad = -pbuf[layout.P_ACC].astype(np.float64) / batch
        _apply(table=table, pbuf=pbuf, diag=diag, count=batch, optimizer=OPTIMIZERS[optimizer],
               lr=lr, beta1=beta1, beta2=beta2, eps=eps, step=t)
        if optimizer == "adam":
            ref_w, ref_m, ref_v = adam_step(ref_w, ref_m, ref_v, grad, t, lr, beta1, beta2, eps)
            # the engine keeps the first moment of the descent direction: minus the oracle's
            np.testing.assert_allclose(pbuf[layout.P_VEL], -ref_m, rtol=RTOL, atol=ATOL)
        else:
            ref_w, ref_v = adagrad_step(ref_w, ref_v, grad, lr, eps)
            assert not pbuf[layout.P_VEL].any()  # AdaGrad has no first moment
        comp_w = pbuf[layout.P_PARAM]
        np.testing.assert_allclose(comp_w, ref_w, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(pbuf[layout.P_SQ], ref_v, rtol=RTOL, atol=ATOL)
        assert not pbuf[layout.P_ACC].any()  # cleared for the next batch
        ref_norms = [float((ref_w[p:p + k] ** 2).sum())
                     for p, k in zip(table[:, layout.C_P], sizes, strict=True)]
        np.testing.assert_allclose(diag[layout.D_NORM2], ref_norms, rtol=1e-5)


@pytest.mark.parametrize("code", [layout.O_SGD, 7])
def test_the_compiled_step_refuses_other_optimiser_codes(code):
    pbuf = np.zeros((layout.NPROW, 3), np.float32)
    with pytest.raises(ValueError, match="unknown optimiser code"):
        _apply(table=_table([3]), pbuf=pbuf, diag=np.zeros((layout.NDROW, 1)), count=1,
               optimizer=code, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, step=1)


# --- against PyTorch -------------------------------------------------------------------------
INIT = np.load(DATA / "torch_optim_init.npz")
TORCH = np.load(DATA / "torch_optim.npz")
CASES = json.loads(str(TORCH["cases"]))


def _torch_network(task: str) -> tuple[Network, np.ndarray]:
    """The network and initial weights the references started from."""
    net = Network.from_dict(json.loads(str(INIT[f"{task}_network"])))
    params = INIT[f"{task}_params"]
    # the generator unflattened the vector as each Dense's W (out, in) then b, in layer order
    parts = [INIT[f"{task}_{name}{i}"].ravel() for i in range(2) for name in ("W", "b")]
    assert np.array_equal(np.concatenate(parts), params)
    return net, params


def test_the_references_start_from_the_committed_weights():
    for task in ("classification", "regression"):
        net, params = _torch_network(task)
        assert np.array_equal(Learner(net, seed={"classification": 11,
                                                 "regression": 12}[task]).arena.params, params)
    assert str(TORCH["torch_version"]).startswith("2.13.0")


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pytorch(case):
    task, optimizer, settings, batch = CASES[case]
    net, params = _torch_network(task)
    model = Learner(net, mode="backprop", optimizer=optimizer, batch_size=batch,
                    scaling="off", target_scaling="off", **settings)  # PyTorch sees raw data
    model.replace_params(params)
    X, labels, Y = INIT["X"], INIT["labels"], INIT["Y"]
    ref = TORCH[case]
    for s in range(X.shape[0]):
        model.learn_one(X[s], int(labels[s]) if task == "classification" else Y[s])
        if (s + 1) % batch == 0:
            comp = model.arena.params
            np.testing.assert_allclose(comp, ref[s // batch], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{case}, after sample {s}")
    assert model.state()["updates"] == ref.shape[0] and model.state()["explosions"] == 0


# --- state: rollback, phase switches, configure, files ------------------------------------------
def _optimizer_state_is_clear(model: Learner) -> bool:
    a = model.arena
    return bool(not a.pbuf[layout.P_VEL].any() and not a.pbuf[layout.P_ACC].any()
                and not a.pbuf[layout.P_SQ].any() and a.ist[layout.N_OPT_STEP] == 0
                and a.ist[layout.N_BATCH_FILL] == 0)


@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])
def test_an_explosion_rolls_back_and_resets_the_optimiser(net_a, optimizer):
    model = Learner(net_a, mode="backprop", optimizer=optimizer, seed=0, snapshot_every=500)
    model.learn_many(*quadrant_data(2_000, seed=1))  # shadow refreshed at sample 2000
    assert model.arena.pbuf[layout.P_SQ].any() and model.arena.ist[layout.N_OPT_STEP] == 2_000
    shadow = model.arena.pbuf[layout.P_SHADOW].copy()
    model.configure(learning_rate=1e6)  # AdaGrad's accumulated squares damp a smaller one
    X, y = quadrant_data(1, seed=2)
    model.learn_one(X[0], int(y[0]))
    st = model.state()
    assert st["explosions"] == 1 and st["rollbacks"] == 1
    assert st["recent_explosions"][-1]["reason"] == "parameter norm jump"
    assert np.array_equal(model.arena.params, shadow)
    assert _optimizer_state_is_clear(model)
    model.configure(learning_rate=0.01)
    model.learn_many(*quadrant_data(4_000, seed=3))
    Xt, yt = quadrant_data(2_000, seed=4)
    assert np.isfinite(model.arena.pbuf).all()
    assert float((model.predict_many(Xt) == yt).mean()) > 0.9
    assert model.arena.ist[layout.N_OPT_STEP] == 4_000  # bias correction restarted at 1


def test_non_finite_parameters_roll_back_with_adam(net_a):
    model = Learner(net_a, mode="backprop", optimizer="adam", seed=0, snapshot_every=500)
    model.learn_many(*quadrant_data(1_000, seed=1))
    shadow = model.arena.pbuf[layout.P_SHADOW].copy()
    model.arena.params[5] = np.inf  # a stand-in for an overflow
    X, y = quadrant_data(1, seed=2)
    model.learn_one(X[0], int(y[0]))
    assert model.state()["rollbacks"] == 1
    assert np.array_equal(model.arena.params, shadow) and _optimizer_state_is_clear(model)


def test_set_phase_replace_params_and_configure_drop_the_state(net_a):
    X, y = quadrant_data(300, seed=1)
    model = Learner(net_a, mode="backprop", optimizer="adam", seed=0, batch_size=7)
    for change in (lambda: model.set_phase("tween"),
                   lambda: model.replace_params(model.arena.params.copy()),
                   lambda: model.configure(optimizer="adagrad")):
        model.set_phase("backprop")
        model.learn_many(X, y)  # 300 = 42 batches + 6 samples pending
        assert model.arena.ist[layout.N_OPT_STEP] == 42 and model.arena.pbuf[layout.P_ACC].any()
        change()
        assert _optimizer_state_is_clear(model)
    model.configure(beta2=0.99)  # the same optimiser keeps its state
    model.set_phase("backprop")
    model.learn_many(X, y)
    model.configure(beta2=0.9)
    assert model.arena.ist[layout.N_OPT_STEP] == 42 and model.arena.pbuf[layout.P_SQ].any()


def test_the_hybrid_switch_resets_the_optimiser(net_a):
    X, y = quadrant_data(2_000, seed=1)
    model = Learner(net_a, mode="hybrid", optimizer="adam", seed=4, switch_after=800)
    model.learn_many(X[:799], y[:799])
    model.arena.pbuf[layout.P_SQ] = 1.0  # stale state that the switch must not carry over
    model.arena.ist[layout.N_OPT_STEP] = 5
    model.learn_one(X[799], int(y[799]))
    assert model.state()["switched_at"] == 800 and _optimizer_state_is_clear(model)
    model.learn_many(X[800:], y[800:])
    assert model.arena.ist[layout.N_OPT_STEP] == 1_200

    fresh = Learner(net_a, mode="hybrid", optimizer="adam", seed=4, switch_after=800)
    fresh.learn_many(X, y)
    manual = Learner(net_a, mode="tween", optimizer="adam", seed=4)
    manual.learn_many(X[:800], y[:800])
    manual.set_phase("backprop")
    manual.learn_many(X[800:], y[800:])
    assert np.array_equal(fresh.arena.params, manual.arena.params)


@pytest.mark.parametrize("mode", ["tween", "tween-heuristic"])
def test_tween_phases_ignore_the_optimiser(net_a, mode):
    X, y = quadrant_data(1_500, seed=6)
    models = [Learner(net_a, mode=mode, optimizer=o, seed=1) for o in ("sgd", "adam", "adagrad")]
    for model in models:
        model.learn_many(X, y)
    for model in models[1:]:
        assert np.array_equal(model.arena.pbuf, models[0].arena.pbuf)
        assert model.state() == models[0].state()


@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])
def test_save_load_continue_equals_uninterrupted(net_a, tmp_path, optimizer):
    X, y = quadrant_data(3_000, seed=3)
    straight = Learner(net_a, mode="hybrid", optimizer=optimizer, seed=2, switch_after=500,
                       batch_size=3)
    straight.learn_many(X, y)
    stopped = Learner(net_a, mode="hybrid", optimizer=optimizer, seed=2, switch_after=500,
                      batch_size=3)
    stopped.learn_many(X[:1_001], y[:1_001])  # after the switch, mid-batch
    assert stopped.arena.pbuf[layout.P_SQ].any() and stopped.arena.ist[layout.N_OPT_STEP] > 0
    stopped.save(tmp_path / "m.tsm")
    resumed = load(tmp_path / "m.tsm")
    assert resumed.config == stopped.config
    resumed.learn_many(X[1_001:], y[1_001:])
    for name, arr in straight._arrays().items():
        assert np.array_equal(arr, resumed._arrays()[name]), name
    assert resumed.state() == straight.state()


# --- learning, and the settings -----------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])
def test_default_settings_learn_the_quadrant_task(net_a, optimizer):
    X, y = quadrant_data(20_000, seed=1)
    model = Learner(net_a, mode="backprop", optimizer=optimizer, seed=0)
    model.learn_many(X, y)
    Xt, yt = quadrant_data(2_000, seed=2)
    accuracy = float((model.predict_many(Xt) == yt).mean())
    assert accuracy > 0.95, accuracy
    st = model.state()
    sgd = Learner(net_a, mode="backprop", seed=0)
    sgd.learn_many(X, y)
    assert st.keys() == sgd.state().keys()
    assert st["explosions"] == 0 and st["updates"] == st["samples_seen"] == 20_000
    assert st["prequential_accuracy"] > 0.9 and st["phase"] == "backprop"


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"optimizer": "rmsprop"}, ValueError,
     r"optimizer must be one of sgd, adam, adagrad, found 'rmsprop'"),
    ({"optimizer": 1}, TypeError, r"optimizer must be a string, one of sgd, adam, adagrad"),
    ({"beta1": 1.0}, ValueError, r"beta1 must be in \[0, 1\), found 1.0"),
    ({"beta2": -0.1}, ValueError, r"beta2 must be in \[0, 1\), found -0.1"),
    ({"beta2": "0.9"}, TypeError, r"beta2 must be a number, found str"),
    ({"epsilon": 0}, ValueError, r"epsilon must be > 0, found 0"),
    ({"epsilon": 1e-45}, ValueError, r"epsilon must be at least 1.18e-38"),
    ({"epsilon": float("inf")}, ValueError, r"epsilon must be finite, found inf"),
])
def test_bad_settings_name_the_field(net_a, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        Learner(net_a, mode="backprop", **kwargs)
    model = Learner(net_a, mode="backprop")
    with pytest.raises(exc, match=message):
        model.configure(**kwargs)
    assert model.config.optimizer == "adam"  # the default, kept
