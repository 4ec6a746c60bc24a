"""The exported file format: pinned versions, stable names, metadata, and its checks.

This module needs only ``onnxruntime`` and ``numpy`` (files are read by ``onnxfile``): the edge
predictor uses it to verify a model before serving it, and runs ``onnx.checker`` only where the
``onnx`` package is installed. Graph contract:

- one input ``input``: float32 ``[batch, n_inputs]``, batch dynamic;
- one output: ``probabilities`` (classification, softmax over ``n_outputs`` classes) or
  ``outputs`` (regression), float32 ``[batch, n_outputs]``;
- opset ``OPSET`` of the default domain, IR version ``IR_VERSION``, no custom ops;
- ``metadata_props`` under ``META_*`` keys, among them a SHA-256 of the weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from typing import Any

import onnxruntime as ort

from tweenstream.export.onnxfile import FormatError, ModelFile

OPSET = 17  # supported by every onnxruntime >= 1.14, and so by the pinned range
IR_VERSION = 8
INPUT = "input"
OUTPUTS = {"classification": "probabilities", "regression": "outputs"}
ERROR_OUTPUT = "reconstruction_error"  # an autoencoder's second output: mean squared error
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

__all__ = ["FormatError", "ModelContract", "ModelFile", "contract", "describe", "metadata",
           "non_finite_weights", "session", "verify", "weights_digest"]


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


ModelLike = Any  # a ModelFile, the bytes of a model, or an onnx.ModelProto


def read(model: ModelLike) -> ModelFile:
    """The checked fields of ``model``, whatever form it comes in.

    Examples
    --------
    >>> read(b"").inputs
    []
    """
    if isinstance(model, ModelFile):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        return ModelFile.parse(bytes(model))
    return ModelFile.parse(model.SerializeToString())  # an onnx.ModelProto


def session(model: ModelLike) -> ort.InferenceSession:
    """An onnxruntime session tuned for single-sample latency: one intra-op and one inter-op
    thread, sequential execution, every graph optimisation. ``model``: bytes or a ModelProto."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    data = bytes(model) if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def weights_digest(model: ModelLike) -> str:
    """SHA-256 over every initializer's name and little-endian bytes, in name order.

    Examples
    --------
    >>> len(weights_digest(b""))  # no initializers: the digest of nothing
    64
    """
    h = hashlib.sha256()
    for init in sorted(read(model).initializers, key=lambda t: t.name):
        h.update(init.name.encode())
        h.update(init.values.tobytes())  # every dtype in onnxfile.DTYPES is little-endian
    return h.hexdigest()


def _runtime_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's exception classes (they derive from Exception, not from RuntimeError or
    ValueError), with the two standard ones its Python layer raises."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    found = [v for v in vars(state).values()
             if isinstance(v, type) and issubclass(v, Exception)]
    return (RuntimeError, ValueError, *found)


RUNTIME_ERRORS = _runtime_errors()


def non_finite_weights(model: ModelLike) -> str:
    """The first initializer holding NaN or inf, or ''."""
    return next((t.name for t in read(model).initializers if not t.finite()), "")


def metadata(model: ModelLike) -> dict[str, str]:
    """The model's ``metadata_props`` as a dict (the ``META_*`` keys, among others)."""
    return dict(read(model).metadata)


def contract(model: ModelLike) -> ModelContract:
    """Read the contract of an exported model; ``FormatError`` if it has none."""
    m = read(model)
    meta = m.metadata
    missing = [k for k in (META_TASK, META_INPUTS, META_LABELS, META_DIGEST) if k not in meta]
    if missing:
        raise FormatError("metadata", f"not a tweenstream export: missing {missing}")
    if len(m.inputs) != 1 or not (len(m.outputs) == 1 or (
            len(m.outputs) == 2 and m.outputs[1] == ERROR_OUTPUT)):
        raise FormatError("contract", "a tweenstream model has one input and one output (an "
                          f"autoencoder a second, {ERROR_OUTPUT!r})")
    try:
        labels = tuple(json.loads(meta[META_LABELS]))
        features = json.loads(meta.get(META_FEATURES, "null"))
        classes = json.loads(meta.get(META_CLASSES, "null"))
        shape = json.loads(meta.get(META_INPUT, "{}"))
        vocab = int(shape.get("vocab") or 0) if isinstance(shape, dict) else 0
        n_inputs = int(meta[META_INPUTS])
    except (ValueError, TypeError) as err:
        raise FormatError("metadata", f"unreadable metadata ({err})") from None
    return ModelContract(n_inputs, len(labels), meta[META_TASK], m.inputs[0], m.outputs[0],
                         labels,
                         tuple(tuple(f) if isinstance(f, list) else f for f in features)
                         if features is not None else None,
                         tuple(classes) if isinstance(classes, list) else None, vocab)


# onnx.checker is run where the onnx package is installed; an edge install leaves it out, and
# onnxruntime then checks the graph when it builds the session (the swap's runtime check)
CHECKER = ("onnx.checker (full)" if importlib.util.find_spec("onnx") is not None
           else "skipped: the onnx package is not installed (onnxruntime checks the graph "
                "when it builds the session)")


def _onnx_checker(data: bytes) -> None:
    import onnx  # imported here: an edge install has no onnx, and the import takes ~1 s
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise FormatError("corrupt", f"not an ONNX model ({type(err).__name__})") from None
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise FormatError("checker", str(err).splitlines()[0]) from None


def verify(data: bytes, checker: bool = True) -> ModelFile:
    """Parse and check exported bytes: protobuf, opsets, checksum, contract, and
    ``onnx.checker`` (full) when ``checker`` and the onnx package is installed.

    Examples
    --------
    >>> verify(b"junk")
    Traceback (most recent call last):
    ...
    tweenstream.export.onnxfile.FormatError: corrupt: not an ONNX model (a field runs past the end)
    """
    model = ModelFile.parse(data)
    if checker and CHECKER.startswith("onnx"):
        _onnx_checker(data)
    domains = set(model.opsets)
    if not domains <= {"", "ai.onnx"}:
        raise FormatError("custom_ops", f"uses operator domains {sorted(domains)}")
    expected = model.metadata.get(META_DIGEST)
    if expected is None:
        raise FormatError("metadata", "no weights checksum in the metadata")
    if weights_digest(model) != expected:
        raise FormatError("checksum", "the weights do not match the recorded SHA-256")
    contract(model)
    return model


def _count(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def describe(model: ModelLike) -> dict[str, Any]:
    """A JSON-able summary of an exported model."""
    m = read(model)
    c = contract(m)
    meta = m.metadata
    return {"task": c.task, "inputs": c.n_inputs, "outputs": c.n_outputs,
            "input": c.input_name, "output": c.output_name, "labels": list(c.labels),
            "features": [list(f) if isinstance(f, tuple) else f for f in c.features]
            if c.features else None,
            "samples_learned": _count(meta.get(META_SAMPLES, "0")),
            "tweenstream": meta.get(META_VERSION), "weights_sha256": meta[META_DIGEST],
            "opset": max(m.opsets.values(), default=0), "ir_version": m.ir_version}
