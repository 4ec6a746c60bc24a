"""Hostile ONNX models for the edge's swap checks: each a valid export changed in one way, with
its weights checksum made to match, so that a later check (not the checksum) has to catch it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tweenstream.export import format as fmt


def rebuilt(model: onnx.ModelProto, change: Callable[[onnx.ModelProto], None]) -> bytes:
    """A copy of ``model`` with ``change(model)`` applied and its checksum made to match."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    change(model)
    for prop in model.metadata_props:
        if prop.key == fmt.META_DIGEST:
            prop.value = fmt.weights_digest(model)
    return model.SerializeToString()


def wrong_width(m: onnx.ModelProto) -> None:
    """The graph declares one input more than its weights take and its metadata says."""
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value += 1


def tampered(m: onnx.ModelProto) -> bytes:
    """The bytes of ``m`` with one bit of a weight flipped (the checksum no longer matches)."""
    raw = next(i for i in m.graph.initializer if i.name.endswith("/W")).raw_data
    data = m.SerializeToString()
    assert data.count(raw) == 1
    return data.replace(raw, raw[:-1] + bytes([raw[-1] ^ 1]))


def fails_when_run(m: onnx.ModelProto) -> None:
    """Passes onnx.checker and builds, then fails in onnxruntime: the logits (n, k) are reshaped
    to (-1, k - 1), which k·n values do not fill."""
    softmax = m.graph.node[-1]
    k = m.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    m.graph.initializer.extend([numpy_helper.from_array(np.array([-1, k - 1]), "bad_a"),
                                numpy_helper.from_array(np.array([-1, k]), "bad_b")])
    reshape = helper.make_node("Reshape", [softmax.input[0], "bad_a"], ["bad_ra"])
    back = helper.make_node("Reshape", ["bad_ra", "bad_b"], ["bad_rb"])
    softmax.input[0] = "bad_rb"
    m.graph.node.insert(len(m.graph.node) - 1, reshape)
    m.graph.node.insert(len(m.graph.node) - 1, back)


def inf_weight(m: onnx.ModelProto) -> None:
    """One weight matrix holds an inf."""
    init = next(i for i in m.graph.initializer if i.name.endswith("/W"))
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] = np.inf
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
