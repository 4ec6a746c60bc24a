"""Build an ONNX model from a Learner, check it, compare it with the engine, write it.

``export`` runs ``onnx.checker`` (full) and strict shape inference, then a parity report:
onnxruntime against the engine's own forward on random inputs and on recorded samples, at
batch 1 and batch N. Above the tolerance the export fails (``ExportError``) and nothing is
written. Optional dynamic int8 quantisation (onnxruntime's quantiser) reports the change in
size, latency and held-out accuracy, and warns when accuracy drops by more than a threshold.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from tweenstream import __version__
from tweenstream.export import format as fmt
from tweenstream.export.format import session
from tweenstream.export.graph import Graph
from tweenstream.export.registry import converter
from tweenstream.files import write_atomic
from tweenstream.models.registry import kind_of
from tweenstream.runtime.learner import Learner


class ExportError(RuntimeError):
    """The exported model does not match the engine (or could not be built); nothing written."""


def build_model(learner: Learner, labels: list[str] | None = None) -> onnx.ModelProto:
    """The ONNX graph of ``learner``'s network with its current weights and metadata.

    Examples
    --------
    >>> from tweenstream import Dense, Learner, Network
    >>> model = build_model(Learner(Network(4, [Dense(8, "gelu"), Dense(3)])))
    >>> [i.name for i in model.graph.input], [o.name for o in model.graph.output]
    (['input'], ['probabilities'])
    """
    net = learner.network
    g = Graph()
    x = scaled = _input_stage(g, learner)
    for i, (spec, in_shape, _) in enumerate(net.rows):
        kind = kind_of(spec)
        params = {k: v.copy() for k, v in learner.arena.layer_params(i).items()}
        x = converter(kind.name)(g, spec, params, x, f"{kind.name}_{i}", in_shape)
    out = fmt.OUTPUTS[net.task]
    if net.task == "classification":
        g.node("Softmax", [x], out, axis=-1)
    elif learner.target_scaler is not None:  # answers in the targets' units: out*std + mean
        ts = learner.target_scaler
        x = g.node("Mul", [x, g.constant("target_std", ts.cache[2].copy())], "unscaled_0")
        g.node("Add", [x, g.constant("target_mean", ts.cache[0].copy())], out)
    else:
        g.node("Identity", [x], out)
    outputs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", net.n_outputs])]
    if learner.config.reconstruct:  # an autoencoder: its reconstruction error, per row
        d = g.node("Sub", [x, scaled], "reconstruction_diff")
        sq = g.node("Mul", [d, d], "reconstruction_sq")
        g.node("ReduceMean", [sq], fmt.ERROR_OUTPUT, axes=[1], keepdims=1)
        outputs.append(helper.make_tensor_value_info(fmt.ERROR_OUTPUT, TensorProto.FLOAT,
                                                     ["batch", 1]))
    graph = helper.make_graph(
        g.nodes, "tweenstream",
        [helper.make_tensor_value_info(fmt.INPUT, TensorProto.FLOAT, ["batch", net.n_inputs])],
        outputs, g.initializers)
    model = helper.make_model(graph, producer_name="tweenstream", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", fmt.OPSET)])
    model.ir_version = fmt.IR_VERSION
    classes = learner.labels.to_list() if learner.labels is not None else None
    if labels is None:
        labels = [str(k if c is None else c) for k, c in enumerate(classes)] if classes \
            else [f"output_{k}" for k in range(net.n_outputs)]
    if len(labels) != net.n_outputs:
        raise ValueError(f"labels: {len(labels)} given for {net.n_outputs} outputs")
    meta = {fmt.META_VERSION: __version__, fmt.META_TASK: net.task,
            fmt.META_LABELS: json.dumps(list(labels)),
            fmt.META_FEATURES: json.dumps(learner.features or None),
            fmt.META_CLASSES: json.dumps(classes),
            fmt.META_SCALING: json.dumps(_scaling_meta(learner)),
            fmt.META_INPUT: json.dumps(_input_meta(learner)),
            fmt.META_SAMPLES: str(learner.state()["samples_seen"]),
            fmt.META_INPUTS: str(net.n_inputs), fmt.META_DIGEST: fmt.weights_digest(model)}
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return model


def _input_stage(g: Graph, learner: Learner) -> str:
    """The model's input standardisation as Sub, Mul and Clip on float32, the operations and
    constants ``runtime/scaling.py`` computes with; returns the name of the scaled input."""
    sc = learner.scaler
    if sc is None:
        return fmt.INPUT
    x = g.node("Sub", [fmt.INPUT, g.constant("scale_shift", sc.cache[0].copy())], "scaled_0")
    x = g.node("Mul", [x, g.constant("scale_inv", sc.cache[1].copy())], "scaled_1")
    clip = learner.config.scale_clip
    if clip is None:
        return x
    c = float(np.float32(min(clip, 3.0e38)))
    return g.node("Clip", [x, g.constant("scale_lo", np.array(-c, np.float32)),
                           g.constant("scale_hi", np.array(c, np.float32))], "scaled")


def _input_meta(learner: Learner) -> dict[str, Any]:
    """What the flat float32 input row holds, for a consumer in any language."""
    net = learner.network
    return {"shape": list(net.input_shape), "layout": "row-major, flattened to one row per "
            "sample", "dtype": "float32", "vocab": learner._vocab or None}


def _scaling_meta(learner: Learner) -> dict[str, Any] | None:
    sc = learner.scaler
    if sc is None:
        return None
    return {"standardise": True, "clip": learner.config.scale_clip, "fixed": sc.fixed,
            "samples": int(sc.seen[0])}


def _engine(learner: Learner, X: np.ndarray) -> np.ndarray:
    if learner.network.task == "classification":
        return learner.predict_proba_many(X)
    return learner.predict_many(X).reshape(len(X), -1)


def tolerance(learner: Learner) -> float:
    """The parity tolerance of a network: the loosest of its kinds' (``LayerKind.tolerance``)."""
    return max(kind_of(s).tolerance for s, _, _ in learner.network.rows)


def parity_report(learner: Learner, model: onnx.ModelProto, recorded: np.ndarray | None = None,
                  n_random: int = 64, seed: int = 0) -> dict[str, Any]:
    """Max absolute / relative error of onnxruntime against the engine, per input set.

    Sets: random standard-normal inputs and the recorded samples (if any), each at batch 1
    (row by row) and batch N (all rows in one call).
    """
    sess = session(model)
    rng = np.random.default_rng(seed)
    shape = (n_random, learner.network.n_inputs)
    vocab = getattr(learner.network.layers[0], "vocab", None)  # a network that reads token ids
    random = rng.integers(0, vocab, shape) if vocab else rng.standard_normal(shape)
    sets = {"random": random.astype(np.float32)}
    if recorded is not None and len(recorded):
        sets["recorded"] = np.ascontiguousarray(recorded, dtype=np.float32)
    report: dict[str, Any] = {"tolerance": tolerance(learner)}
    worst = 0.0
    for name, X in sets.items():
        ref = _engine(learner, X)
        batch = sess.run(None, {fmt.INPUT: X})[0]
        single = np.concatenate([sess.run(None, {fmt.INPUT: X[i:i + 1]})[0]
                                 for i in range(len(X))])
        for label, got in (("batch_n", batch), ("batch_1", single)):
            diff = np.abs(got.astype(np.float64) - ref)
            rel = diff / np.maximum(np.abs(ref), 1e-6)
            report[f"{name}_{label}"] = {"rows": len(X), "max_abs": float(diff.max()),
                                         "max_rel": float(rel.max())}
            worst = max(worst, float(diff.max()))
    if learner.config.reconstruct:  # the second output against error_one, row by row
        X = sets["random"]
        ref = np.array([learner.error_one(x) for x in X])
        got = sess.run(None, {fmt.INPUT: X})[1][:, 0].astype(np.float64)
        diff = np.abs(got - ref)
        report["reconstruction_error"] = {"rows": len(X), "max_abs": float(diff.max()),
                                          "max_rel": float((diff / np.maximum(ref, 1e-6)).max())}
        worst = max(worst, float((diff / np.maximum(ref, 1.0)).max()))  # relative above 1
    report["max_abs"] = worst
    report["passed"] = bool(worst <= report["tolerance"])
    return report


def export(learner: Learner, path: str | Path, *, recorded: np.ndarray | None = None,
           check_data: tuple[np.ndarray, np.ndarray] | None = None, int8: bool = False,
           max_accuracy_drop: float = 0.01, labels: list[str] | None = None) -> dict[str, Any]:
    """Export ``learner`` to ``path`` (and ``path`` with ``.int8.onnx`` if ``int8``).

    ``recorded`` inputs join the parity check; ``check_data`` (X, y) measures the int8
    accuracy change. Returns the report; raises ``ExportError`` above the parity tolerance.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from tweenstream import Dense, Learner, Network
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"
    >>> export(Learner(Network(4, [Dense(8, "tanh"), Dense(3)])), out)["parity"]["passed"]
    True
    """
    model = build_model(learner, labels)
    parity = parity_report(learner, model, recorded)
    if not parity["passed"]:
        raise ExportError(f"onnxruntime differs from the engine by {parity['max_abs']:.3g}, "
                          f"above the tolerance {parity['tolerance']:g}; nothing was written. "
                          f"Report: {json.dumps(parity)}")
    data = model.SerializeToString()
    path = Path(path)
    write_atomic(path, data)
    report: dict[str, Any] = {"path": str(path), "bytes": len(data), "parity": parity,
                              **fmt.describe(model)}
    if int8:
        report["int8"] = _quantize(learner, data, path.with_suffix(".int8.onnx"), check_data,
                                   max_accuracy_drop)
    return report


def _latency_us(sess: Any, n_inputs: int, runs: int = 2000) -> float:
    x = np.zeros((1, n_inputs), np.float32)
    for _ in range(50):
        sess.run(None, {fmt.INPUT: x})
    times = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {fmt.INPUT: x})
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e6)


def _accuracy(sess: Any, X: np.ndarray, y: np.ndarray, task: str) -> float:
    out = sess.run(None, {fmt.INPUT: np.ascontiguousarray(X, dtype=np.float32)})[0]
    if task == "classification":
        return float((out.argmax(axis=1) == y).mean())
    return -float(np.abs(out - np.asarray(y, np.float32).reshape(out.shape)).mean())  # -MAE


def _quantize(learner: Learner, data: bytes, out: Path,
              check_data: tuple[np.ndarray, np.ndarray] | None,
              max_drop: float) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fp32.onnx"
        src.write_bytes(data)
        dst = Path(tmp) / "int8.onnx"
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        quantized = dst.read_bytes()
    q_model = onnx.load_model_from_string(quantized)
    q_model.metadata_props.clear()
    helper.set_model_props(q_model, {**fmt.metadata(data),
                                     fmt.META_DIGEST: fmt.weights_digest(q_model)})
    quantized = q_model.SerializeToString()
    write_atomic(out, quantized)
    fp32, int8 = session(data), session(quantized)
    n_in = learner.network.n_inputs
    report: dict[str, Any] = {
        "path": str(out), "bytes": len(quantized), "size_ratio": len(quantized) / len(data),
        "latency_us_fp32": _latency_us(fp32, n_in), "latency_us_int8": _latency_us(int8, n_in)}
    if check_data is None:
        report["accuracy"] = "not measured: pass check data (X, y)"
        return report
    X, y = check_data
    task = learner.network.task
    metric = "accuracy" if task == "classification" else "negative_mae"
    before, after = _accuracy(fp32, X, y, task), _accuracy(int8, X, y, task)
    report.update({"metric": metric, "fp32": before, "int8": after, "change": after - before})
    if before - after > max_drop:
        message = (f"int8 quantisation lowers {metric} by {before - after:.4f} (from "
                   f"{before:.4f} to {after:.4f}), more than {max_drop}; prefer the fp32 model")
        report["warning"] = message
        warnings.warn(message, stacklevel=3)
    return report
