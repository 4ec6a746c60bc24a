"""ONNX export: parity with the engine at batch 1 and 7, metadata, pinned format, int8, CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import quadrant_data

from tweenstream import Dense, Learner, Network
from tweenstream.export import builder, export
from tweenstream.export import format as fmt
from tweenstream.export.registry import converters
from tweenstream.models import kinds
from tweenstream.models.activations import ACTIVATION_CODES

ACTS = sorted(a for a in ACTIVATION_CODES if a != "softmax")


def _trained(net: Network, mode: str = "backprop", n: int = 3000) -> Learner:
    learner = Learner(net, mode=mode, seed=0)
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, (n, net.n_inputs)).astype(np.float32)
    if net.task == "classification":
        learner.learn_many(X, (X[:, 0] > X[:, 1]).astype(np.int64) % net.n_outputs)
    else:
        learner.learn_many(X, np.tile(np.sin(X[:, :1]), (1, net.n_outputs)))
    return learner


def _ort(learner: Learner, X: np.ndarray) -> np.ndarray:
    sess = builder.session(builder.build_model(learner))
    return sess.run(None, {"input": X})[0]


def test_every_kind_has_a_converter():
    assert {k.name for k in kinds()} <= set(converters())


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_parity_per_activation(act, task, batch):
    out = 3 if task == "classification" else 2
    net = Network(5, [Dense(12, act), Dense(9, act), Dense(out)], task=task)
    learner = _trained(net)
    X = np.random.default_rng(batch).standard_normal((batch, 5)).astype(np.float32)
    ref = learner.predict_proba_many(X) if task == "classification" else \
        learner.predict_many(X).reshape(batch, -1)
    assert np.abs(_ort(learner, X) - ref).max() <= 1e-5


@pytest.mark.parametrize("net", [
    Network(8, [Dense(32, "tanh"), Dense(32, "tanh"), Dense(4)]),
    Network(6, [Dense(16, "relu"), Dense(8, "gelu"), Dense(8, "silu"), Dense(5, "sine"),
                Dense(3, "sigmoid"), Dense(2)], task="regression"),
    Network(4, [Dense(3, "softmax")]),
])
def test_parity_report_of_composed_networks(net):
    learner = _trained(net, mode="tween")
    report = builder.parity_report(learner, builder.build_model(learner),
                                   recorded=np.ones((7, net.n_inputs), np.float32))
    assert report["passed"] and report["max_abs"] <= 1e-5
    assert set(report) >= {"random_batch_1", "random_batch_n", "recorded_batch_1",
                           "recorded_batch_n", "tolerance"}


def test_metadata_names_and_format(tmp_path):
    learner = Learner(Network(2, [Dense(4, "tanh"), Dense(3)]), seed=0)
    learner.learn_one({"speed": 1.0, "load": 0.5}, 2)
    report = export(learner, tmp_path / "m.onnx", labels=["low", "mid", "high"])
    model = onnx.load(tmp_path / "m.onnx")
    meta = fmt.metadata(model)
    assert meta[fmt.META_TASK] == "classification"
    assert json.loads(meta[fmt.META_LABELS]) == ["low", "mid", "high"]
    assert sorted(k for k, _ in json.loads(meta[fmt.META_FEATURES])) == ["load", "speed"]
    assert meta[fmt.META_SAMPLES] == "1" and meta[fmt.META_VERSION] == "0.1.0"
    assert meta[fmt.META_DIGEST] == fmt.weights_digest(model) == report["weights_sha256"]
    assert [i.name for i in model.graph.initializer] == [
        "scale_shift", "scale_inv", "scale_lo", "scale_hi",  # the input stage
        "dense_0/W", "dense_0/b", "dense_1/W", "dense_1/b"]
    assert model.ir_version == fmt.IR_VERSION and model.opset_import[0].version == fmt.OPSET
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 2
    assert model.graph.output[0].name == "probabilities"
    fmt.verify((tmp_path / "m.onnx").read_bytes())  # checker, checksum, no custom ops


def test_export_fails_loudly_above_tolerance(tmp_path, monkeypatch):
    monkeypatch.setattr(builder, "tolerance", lambda learner: 1e-12)
    learner = _trained(Network(8, [Dense(32, "tanh"), Dense(4)]))
    with pytest.raises(builder.ExportError, match=r"above the tolerance 1e-12; nothing was "
                       r"written"):
        export(learner, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_int8_reports_and_warns(tmp_path):
    learner = _trained(Network(8, [Dense(64, "tanh"), Dense(64, "tanh"), Dense(4)]))
    X, y = quadrant_data(1000, seed=3)
    report = export(learner, tmp_path / "m.onnx", int8=True, check_data=(X, y))["int8"]
    assert (tmp_path / "m.int8.onnx").exists()
    assert {"bytes", "size_ratio", "latency_us_fp32", "latency_us_int8", "fp32", "int8",
            "change", "metric"} <= set(report)
    fmt.verify((tmp_path / "m.int8.onnx").read_bytes())
    with pytest.warns(UserWarning, match="int8 quantisation lowers accuracy by"):
        export(learner, tmp_path / "n.onnx", int8=True, check_data=(X, y),
               max_accuracy_drop=-1.0)


def test_export_cli(tmp_path, capsys):
    from tweenstream.cli import main

    learner = _trained(Network(8, [Dense(16, "relu"), Dense(4)]))
    learner.save(tmp_path / "m.tsm")
    X, y = quadrant_data(300, seed=0)
    np.savez(tmp_path / "check.npz", X=X, y=y)
    assert main(["export", str(tmp_path / "m.tsm"), str(tmp_path / "m.onnx"), "--int8",
                 "--check-data", str(tmp_path / "check.npz")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parity"]["passed"] and "recorded_batch_1" in report["parity"]
    assert report["int8"]["metric"] == "accuracy"
    assert main(["export", str(tmp_path / "none.tsm"), str(tmp_path / "x.onnx")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_parity_holds_on_a_trained_wide_network(tmp_path):
    # 64-128-128-10 trained on a learnable task: a float32-evaluated tanh once put the engine
    # 1.2e-5 away from onnxruntime here, over the 1e-5 tolerance
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10_000, 64)).astype(np.float32)
    y = (X @ np.random.default_rng(99).standard_normal((64, 10))).argmax(axis=1)
    learner = Learner(Network(64, [Dense(128, "tanh"), Dense(128, "tanh"), Dense(10)]),
                      mode="backprop", seed=0, scaling="off")  # the network that once failed
    learner.learn_many(X, y)
    report = export(learner, tmp_path / "b.onnx", recorded=X[:200])
    assert report["parity"]["max_abs"] < 1e-5


def test_export_of_a_token_id_network(tmp_path):
    """The parity check feeds an Embedding network valid ids, not random floats."""
    from tweenstream.models import Embedding, Flatten

    learner = Learner(Network(5, [Embedding(7, 3), Flatten(), Dense(3)]), seed=0)
    ids = np.random.default_rng(0).integers(0, 7, (50, 5)).astype(np.float32)
    learner.learn_many(ids, ids[:, 0].astype(np.int64) % 3)
    report = export(learner, tmp_path / "ids.onnx")
    assert report["parity"]["passed"] and (tmp_path / "ids.onnx").exists()
