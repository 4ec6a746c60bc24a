"""TimeDense and RepeatVector: compiled kernels against the NumPy oracle (tests/oracle/sequence.py),
float64 finite differences of the oracle, the per-step cosine loss against finite differences,
the shapes they refuse, and sequence networks (the issue's LSTM + attention + per-step head, an
LSTM autoencoder) that learn in every mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import central_difference
from oracle import sequence as ref

from tweenstream import LSTM, Dense, Flatten, Learner, MultiHeadAttention, Network
from tweenstream.models import RepeatVector, TimeDense
from tweenstream.runtime import layout
from tweenstream.runtime.conv import conv_forward, conv_signal, conv_update
from tweenstream.runtime.refine import GradientShare
from tweenstream.runtime.sequence import repeat_forward, repeat_signal

T, D, U = 4, 3, 5
F32 = np.float32


def _model(net: Network, seed: int = 0):
    model = Learner(net, seed=seed)
    rng = np.random.default_rng(seed)
    return model, model._plan.table[0], model.arena.pbuf, model.arena.work, rng


@pytest.mark.parametrize("act", ["linear", "tanh", "relu", "sigmoid"])
def test_time_dense_kernels_match_the_oracle(act):
    model, row, pbuf, work, rng = _model(Network((T, D), [TimeDense(U, act), Flatten(),
                                                          Dense(2)]))
    x = rng.standard_normal((T, D)).astype(F32)
    work[layout.W_ACT, :T * D] = x.ravel()
    conv_forward(row, pbuf, work)
    p = {k: v.astype(np.float64) for k, v in model.arena.layer_params(0).items()}
    z, a = ref.time_dense_forward(x.astype(np.float64), p["W"], p["b"], act)
    oo = int(row[layout.C_OUT])
    np.testing.assert_allclose(work[layout.W_ACT, oo:oo + T * U], a.ravel(), atol=1e-6)
    np.testing.assert_allclose(work[layout.W_PRE, oo:oo + T * U], z.ravel(), atol=1e-6)
    g = rng.standard_normal((T, U)).astype(F32)
    work[layout.W_DELTA, oo:oo + T * U] = g.ravel()
    conv_signal(row, pbuf, work, True)
    ref_dx, ref_dW, ref_db = ref.time_dense_backward(x.astype(np.float64), z, p["W"], g, act)
    np.testing.assert_allclose(work[layout.W_DELTA, :T * D].reshape(T, D), ref_dx, atol=1e-5)
    before = {k: v.copy() for k, v in model.arena.layer_params(0).items()}
    pbuf[layout.P_VEL] = 0.0
    conv_update(row, pbuf, work, F32(1), F32(1), F32(np.inf), F32(0), F32(1), F32(1), False)
    after = model.arena.layer_params(0)
    for name, grad in (("W", ref_dW), ("b", ref_db)):
        np.testing.assert_allclose(after[name] - before[name], grad, atol=2e-5, err_msg=name)


def test_repeat_vector_kernels_match_the_oracle():
    steps = 6
    _, row, pbuf, work, rng = _model(Network(D, [RepeatVector(steps), Flatten(), Dense(2)]))
    v = rng.standard_normal(D).astype(F32)
    work[layout.W_ACT, :D] = v
    repeat_forward(row, pbuf, work)
    oo = int(row[layout.C_OUT])
    expected = ref.repeat_forward(v.astype(np.float64), steps).ravel()
    np.testing.assert_array_equal(work[layout.W_ACT, oo:oo + steps * D], expected)
    np.testing.assert_array_equal(work[layout.W_PRE, oo:oo + steps * D], expected)
    g = rng.standard_normal((steps, D)).astype(F32)
    work[layout.W_DELTA, oo:oo + steps * D] = g.ravel()
    repeat_signal(row, pbuf, work, True)
    np.testing.assert_allclose(work[layout.W_DELTA, :D], ref.repeat_backward(g), atol=1e-6)
    np.testing.assert_array_equal(work[layout.W_DZ, oo:oo + steps * D], g.ravel())


def test_the_oracles_match_finite_differences():
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((T, D)), rng.standard_normal((U, D)), rng.standard_normal(U)
    w = rng.standard_normal((T, U))
    for act in ("tanh", "sigmoid", "gelu"):
        z, _ = ref.time_dense_forward(x, W, b, act)
        analytic = dict(zip(("x", "W", "b"), ref.time_dense_backward(x, z, W, w, act),
                            strict=True))
        for name, arr in (("x", x), ("W", W), ("b", b)):
            numeric = central_difference(
                lambda act=act: float((w * ref.time_dense_forward(x, W, b, act)[1]).sum()), arr)
            np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8,
                                       err_msg=f"{act} {name}")
    v, g = rng.standard_normal(D), rng.standard_normal((5, D))
    numeric = central_difference(lambda: float((g * ref.repeat_forward(v, 5)).sum()), v)
    np.testing.assert_allclose(ref.repeat_backward(g), numeric, rtol=1e-6, atol=1e-8)


def _sequence_loss(params, x, y, w):
    """Twin of Network((T, D), [TimeDense(U, tanh), TimeDense(D)]) with (1 - w) 0.5 |y - a|² +
    w mean_t (1 - cos(a_t, y_t)), float64."""
    W1, b1 = params[:U * D].reshape(U, D), params[U * D:U * D + U]
    o = U * D + U
    W2, b2 = params[o:o + D * U].reshape(D, U), params[o + D * U:]
    _, h = ref.time_dense_forward(x, W1, b1, "tanh")
    _, a = ref.time_dense_forward(h, W2, b2, "linear")
    cos = (a * y).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(y, axis=1))
    return (1 - w) * 0.5 * float(((y - a) ** 2).sum()) + w * float((1.0 - cos).mean())


@pytest.mark.parametrize("weight", [0.0, 0.5, 0.9, 1.0])
def test_the_cosine_loss_is_taken_per_step(weight):
    """The descent direction of the compiled loss equals minus the finite-difference gradient
    of the per-step twin (a whole-output cosine would differ)."""
    rng = np.random.default_rng(0)
    net = Network((T, D), [TimeDense(U, "tanh"), TimeDense(D)], task="regression")
    params = rng.normal(0, 0.5, net.param_count)
    x, y = rng.normal(size=(T, D)), rng.normal(size=(T, D))
    share = GradientShare(net, x.reshape(1, -1).astype(F32), np.zeros(1, np.int64),
                          y.reshape(1, -1).astype(F32), loss=("cosine", weight))
    descent = share.accumulate(params.astype(F32), np.array([0])).astype(np.float64)
    numeric = np.zeros_like(params)
    for i in range(len(params)):
        step = np.zeros_like(params)
        step[i] = 1e-6
        numeric[i] = (_sequence_loss(params + step, x, y, weight)
                      - _sequence_loss(params - step, x, y, weight)) / 2e-6
    np.testing.assert_allclose(descent, -numeric, rtol=1e-3, atol=1e-5)


def test_shapes_they_refuse_say_what_to_use():
    with pytest.raises(ValueError, match="use TimeDense for a Dense at every step"):
        Network((8, 4), [LSTM(16, return_sequences=True), MultiHeadAttention(2), Dense(4)],
                task="regression")
    with pytest.raises(ValueError, match=r"TimeDense expects a sequence \(steps, d\)"):
        Network(4, [TimeDense(3)], task="regression")
    with pytest.raises(ValueError, match=r"RepeatVector expects a flat input"):
        Network((3, 4), [RepeatVector(2)], task="regression")
    with pytest.raises(ValueError, match="softmax"):
        TimeDense(3, "softmax")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        RepeatVector(0)
    with pytest.raises(TypeError, match="units must be an int"):
        TimeDense(2.5)


def _sequences(n: int, seed: int) -> np.ndarray:
    """(n, 8, 4) sequences with structure: each channel a sine of a random phase and one of two
    frequencies, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(8)[None, :, None]
    freq = rng.choice([0.4, 0.8], size=(n, 1, 4))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 4))
    return (np.sin(freq * t + phase) + 0.05 * rng.standard_normal((n, 8, 4))).astype(F32)


@pytest.mark.parametrize("mode", ["backprop", "tween", "hybrid"])
def test_the_issues_sequence_network_learns_a_per_step_target(mode):
    """LSTM -> attention -> TimeDense: each step's target is the step's input shifted by one
    channel, so the per-step head must learn; its error falls well below predicting zero."""
    X = _sequences(3_000, 0)
    Y = np.roll(X, 1, axis=2)
    net = Network((8, 4), [LSTM(16, return_sequences=True), MultiHeadAttention(2),
                           TimeDense(4)], task="regression")
    model = Learner(net, mode=mode, optimizer="adam" if mode != "tween" else "sgd",
                    learning_rate=0.003, seed=0)
    model.learn_many(X[:2_500].reshape(2_500, -1), Y[:2_500].reshape(2_500, -1))
    out = model.predict_many(X[2_500:].reshape(500, -1))
    mse = float(((out - Y[2_500:].reshape(500, -1)) ** 2).mean())
    assert out.shape == (500, 32)
    assert mse < 0.2 * float((Y[2_500:] ** 2).mean()), mse


@pytest.mark.parametrize("mode", ["backprop", "tween"])
def test_an_lstm_autoencoder_reconstructs_its_sequences(mode):
    """Encoder LSTM -> 6-unit bottleneck -> RepeatVector -> decoder LSTM -> TimeDense, learning
    without targets (reconstruct) with the per-step cosine mix: held-out token-level cosine
    similarity well above an untrained model's."""
    X = _sequences(4_000, 1).reshape(4_000, -1)
    net = Network((8, 4), [LSTM(16), Dense(6, "tanh"), RepeatVector(8),
                           LSTM(16, return_sequences=True), TimeDense(4)], task="regression")

    def token_cosine(model):
        out = model.predict_many(X[3_500:]).reshape(-1, 4)
        ref_x = X[3_500:].reshape(-1, 4)
        return float(((out * ref_x).sum(1) / (np.linalg.norm(out, axis=1)
                                              * np.linalg.norm(ref_x, axis=1) + 1e-12)).mean())

    model = Learner(net, mode=mode, reconstruct=True, loss="cosine", cosine_weight=0.9,
                    optimizer="adam" if mode == "backprop" else "sgd", learning_rate=0.003,
                    seed=0)
    untrained = token_cosine(model)
    model.learn_many(X[:3_500])
    trained = token_cosine(model)
    assert trained > max(0.5, untrained + 0.3), (untrained, trained)
    scores = [model.score_one(x) for x in X[3_500:3_520]]
    assert all(0.0 <= s <= 1.0 for s in scores)


def _lstm_autoencoder(seed: int = 0) -> Learner:
    net = Network((8, 4), [LSTM(12), Dense(6, "tanh"), RepeatVector(8),
                           LSTM(12, return_sequences=True), TimeDense(4)], task="regression")
    return Learner(net, mode="backprop", reconstruct=True, loss="cosine", seed=seed)


def test_an_exported_lstm_autoencoder_matches_and_gives_its_reconstruction_error(tmp_path):
    from tweenstream.export.builder import export
    from tweenstream.export.format import ERROR_OUTPUT, session

    ae = _lstm_autoencoder()
    X = _sequences(600, 2).reshape(600, -1)
    ae.learn_many(X)
    report = export(ae, tmp_path / "ae.onnx", recorded=X[:40])
    assert report["parity"]["passed"], report["parity"]
    out, err = session((tmp_path / "ae.onnx").read_bytes()).run(None, {"input": X[:5]})
    assert out.shape == (5, 32) and ERROR_OUTPUT == "reconstruction_error"
    np.testing.assert_allclose(out, ae.predict_many(X[:5]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(err[:, 0], [ae.error_one(x) for x in X[:5]], rtol=1e-4,
                               atol=1e-6)


def test_a_daemon_learns_an_unlabelled_sequence_stream_and_scores_it():
    """Over real sockets: learn messages of flattened sequences without Y, then predictions
    are anomaly scores, and a sequence that breaks the structure ranks high."""
    from stream_helpers import Served

    from tweenstream.stream.client import Producer

    served = Served(_lstm_autoencoder())
    try:
        X = _sequences(2_000, 3).reshape(2_000, -1)
        with Producer(served.config.data, stream="machine") as p:
            for start in range(0, 2_000, 100):
                assert p.learn(X[start:start + 100], None)
        served.wait(lambda s: s["samples_seen"] == 2_000)
        normal = _sequences(20, 4).reshape(20, -1)
        broken = np.random.default_rng(5).standard_normal((20, 32)).astype(F32) * 2.0
        scores = served.control.predict(np.concatenate([normal, broken]))
        assert scores.shape == (40, 1)
        assert np.median(scores[:20]) < np.median(scores[20:]) and scores[20:].min() > 0.9
    finally:
        served.stop()


def test_the_sequence_autoencoder_benchmark_runs_small(capsys):
    """bench/sequence_autoencoder.py end to end on a few sequences: a row per mode, loss and
    seed, with similarities in range; and its similarity measure on exact reconstructions."""
    from bench import sequence_autoencoder as bench

    X = bench.sequences(5, 0, np.ones((bench.DIM, bench.FACTORS)))
    assert bench.similarities(X, X) == pytest.approx((1.0, 1.0, 0.0))
    assert bench.similarities(X, -X)[:2] == pytest.approx((-1.0, -1.0))
    assert bench.main(["--train", "40", "--test", "10", "--seeds", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(rows) == len(bench.MODES) * len(bench.LOSSES)
    assert all(-1.0 <= json.loads(r)["token_cos"] <= 1.0 for r in rows)
