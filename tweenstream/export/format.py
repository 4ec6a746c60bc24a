"""The exported file format: pinned versions, stable names, metadata, and its checks.

This module needs only ``onnx`` and ``numpy``: the edge predictor uses it to verify a model
before serving it. Graph contract:

- one input ``input``: float32 ``[batch, n_inputs]``, batch dynamic;
- one output: ``probabilities`` (classification, softmax over ``n_outputs`` classes) or
  ``outputs`` (regression), float32 ``[batch, n_outputs]``;
- opset ``OPSET`` of the default domain, IR version ``IR_VERSION``, no custom ops;
- ``metadata_props`` under ``META_*`` keys, among them a SHA-256 of the weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from tweenstream.errors import CodedError

OPSET = 17  # supported by every onnxruntime >= 1.14, and so by the pinned range
IR_VERSION = 8
INPUT = "input"
OUTPUTS = {"classification": "probabilities", "regression": "outputs"}
META_VERSION = "tweenstream.version"
META_TASK = "tweenstream.task"
META_LABELS = "tweenstream.output_labels"
META_FEATURES = "tweenstream.features"  # dict feature slots: [[name, slot], ...]
META_CLASSES = "tweenstream.classes"  # class label of every output unit (null: none yet)
META_SCALING = "tweenstream.scaling"  # the input standardisation inside the graph, or null
META_INPUT = "tweenstream.input"  # {"shape", "layout", "vocab"}: what the flat input holds
META_SAMPLES = "tweenstream.samples_learned"
META_DIGEST = "tweenstream.weights_sha256"
META_INPUTS = "tweenstream.n_inputs"


class FormatError(CodedError):
    """A model file that is not a valid tweenstream export; ``code`` names the check."""


@dataclass(frozen=True)
class ModelContract:
    """What a served model promises: input and output names, sizes and task."""

    n_inputs: int
    n_outputs: int
    task: str
    input_name: str
    output_name: str
    labels: tuple[str, ...]
    features: tuple[Any, ...] | None
    classes: tuple[Any, ...] | None = None  # label of every output unit, None where free
    vocab: int = 0  # token ids must be integers in [0, vocab) (0: real-valued inputs)

    def compatible(self, other: ModelContract) -> str:
        """Why ``other`` cannot replace this model, or '' if it can. A model whose dict
        features kept every slot they had (and maybe took new ones) can replace it."""
        for field in ("n_inputs", "n_outputs", "task", "input_name", "output_name", "features"):
            mine, theirs = getattr(self, field), getattr(other, field)
            if field == "features" and mine and theirs and set(mine) <= set(theirs):
                continue
            if mine != theirs:
                return f"{field} is {theirs!r}, the served model has {mine!r}"
        if self.classes is not None:  # a unit may gain a class, never change it
            theirs_c = other.classes or (None,) * len(self.classes)
            for k, (a, b) in enumerate(zip(self.classes, theirs_c, strict=True)):
                if a is not None and a != b:
                    return (f"classes: output unit {k} holds {a!r} in the served model, "
                            f"{b!r} in this one")
        for k, (a, b) in enumerate(zip(self.labels, other.labels, strict=True)):
            if (self.classes is None or self.classes[k] is not None) and a != b:
                return (f"output_labels: unit {k} is named {a!r} in the served model, {b!r} "
                        "in this one")
        if self.vocab != other.vocab:
            return f"vocab is {other.vocab}, the served model has {self.vocab}"
        return ""


def session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    """An onnxruntime session tuned for single-sample latency: one intra-op and one inter-op
    thread, sequential execution, every graph optimisation."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def weights_digest(model: onnx.ModelProto) -> str:
    """SHA-256 over every initializer's name and little-endian bytes, in name order.

    Examples
    --------
    >>> g = onnx.helper.make_graph([], "g", [], [],
    ...     [numpy_helper.from_array(np.ones(2, np.float32), "w")])
    >>> len(weights_digest(onnx.helper.make_model(g)))
    64
    """
    h = hashlib.sha256()
    for init in sorted(model.graph.initializer, key=lambda t: t.name):
        h.update(init.name.encode())
        arr = numpy_helper.to_array(init)
        h.update(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


def _runtime_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's exception classes (they derive from Exception, not from RuntimeError or
    ValueError), with the two standard ones its Python layer raises."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    found = [v for v in vars(state).values()
             if isinstance(v, type) and issubclass(v, Exception)]
    return (RuntimeError, ValueError, *found)


RUNTIME_ERRORS = _runtime_errors()


def non_finite_weights(model: onnx.ModelProto) -> str:
    """The first initializer holding NaN or inf, or ''."""
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            return init.name
    return ""


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def contract(model: onnx.ModelProto) -> ModelContract:
    """Read the contract of an exported model; ``FormatError`` if it has none."""
    meta = metadata(model)
    missing = [k for k in (META_TASK, META_INPUTS, META_LABELS, META_DIGEST) if k not in meta]
    if missing:
        raise FormatError("metadata", f"not a tweenstream export: missing {missing}")
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise FormatError("contract", "a tweenstream model has one input and one output")
    try:
        labels = tuple(json.loads(meta[META_LABELS]))
        features = json.loads(meta.get(META_FEATURES, "null"))
        classes = json.loads(meta.get(META_CLASSES, "null"))
        shape = json.loads(meta.get(META_INPUT, "{}"))
        vocab = int(shape.get("vocab") or 0) if isinstance(shape, dict) else 0
        n_inputs = int(meta[META_INPUTS])
    except (ValueError, TypeError) as err:
        raise FormatError("metadata", f"unreadable metadata ({err})") from None
    return ModelContract(n_inputs, len(labels), meta[META_TASK], graph.input[0].name,
                         graph.output[0].name, labels,
                         tuple(tuple(f) if isinstance(f, list) else f for f in features)
                         if features is not None else None,
                         tuple(classes) if isinstance(classes, list) else None, vocab)


def verify(data: bytes) -> onnx.ModelProto:
    """Parse and check exported bytes: protobuf, ``onnx.checker`` (full), opset, checksum."""
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise FormatError("corrupt", f"not an ONNX model ({type(err).__name__})") from None
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise FormatError("checker", str(err).splitlines()[0]) from None
    domains = {op.domain for op in model.opset_import}
    if not domains <= {"", "ai.onnx"}:
        raise FormatError("custom_ops", f"uses operator domains {sorted(domains)}")
    expected = metadata(model).get(META_DIGEST)
    if expected is None:
        raise FormatError("metadata", "no weights checksum in the metadata")
    if weights_digest(model) != expected:
        raise FormatError("checksum", "the weights do not match the recorded SHA-256")
    contract(model)
    return model


def describe(model: onnx.ModelProto) -> dict[str, Any]:
    """A JSON-able summary of an exported model."""
    c = contract(model)
    meta = metadata(model)
    return {"task": c.task, "inputs": c.n_inputs, "outputs": c.n_outputs,
            "input": c.input_name, "output": c.output_name, "labels": list(c.labels),
            "features": [list(f) if isinstance(f, tuple) else f for f in c.features]
            if c.features else None,
            "samples_learned": int(meta.get(META_SAMPLES, "0")),
            "tweenstream": meta.get(META_VERSION), "weights_sha256": meta[META_DIGEST],
            "opset": max(op.version for op in model.opset_import),
            "ir_version": model.ir_version}
