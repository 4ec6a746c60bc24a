"""The protobuf reader the edge checks models with, against the onnx package as its oracle.

``onnxfile.ModelFile`` reads metadata, opsets, input and output names and initializers without
the onnx package. Here onnx itself is the twin: the same digest, the same finiteness verdicts and
the same fields for every exported kind, for the int8 model, and for tensors written in every
encoding protobuf allows (raw bytes, packed and unpacked typed fields); malformed bytes raise
``FormatError`` and nothing else.
"""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kinds import EXAMPLES, ID_INPUTS
from onnx import TensorProto, helper, numpy_helper

from tweenstream import Dense, Learner, Network
from tweenstream.export import builder
from tweenstream.export import format as fmt
from tweenstream.export.onnxfile import FormatError, ModelFile


def oracle_digest(model: onnx.ModelProto) -> str:
    """The digest as the onnx package computes it (the exporter's definition)."""
    h = hashlib.sha256()
    for init in sorted(model.graph.initializer, key=lambda t: t.name):
        h.update(init.name.encode())
        arr = numpy_helper.to_array(init)
        h.update(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


def oracle_non_finite(model: onnx.ModelProto) -> str:
    """The first initializer with a NaN or inf among its floating-point values (bfloat16 too,
    whose numpy type onnx takes from ml_dtypes, of kind 'V')."""
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if init.data_type == TensorProto.BFLOAT16:
            arr = arr.astype(np.float32)
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            return init.name
    return ""


def assert_same_as_onnx(model: onnx.ModelProto) -> None:
    got = ModelFile.parse(model.SerializeToString())
    assert got.ir_version == model.ir_version
    assert got.opsets == {o.domain: o.version for o in model.opset_import}
    assert got.metadata == {p.key: p.value for p in model.metadata_props}
    assert got.inputs == [i.name for i in model.graph.input]
    assert got.outputs == [o.name for o in model.graph.output]
    assert [t.name for t in got.initializers] == [t.name for t in model.graph.initializer]
    for mine, theirs in zip(got.initializers, model.graph.initializer, strict=True):
        assert mine.dims == tuple(theirs.dims)
        want = numpy_helper.to_array(theirs)
        assert mine.values.tobytes() == np.ascontiguousarray(
            want, dtype=want.dtype.newbyteorder("<")).tobytes()
    assert fmt.weights_digest(got) == oracle_digest(model)
    assert fmt.non_finite_weights(got) == oracle_non_finite(model)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_every_exported_kind_reads_as_onnx_reads_it(kind):
    learner = Learner(EXAMPLES[kind], seed=0)
    model = builder.build_model(learner)
    assert_same_as_onnx(model)
    assert fmt.metadata(model)[fmt.META_DIGEST] == oracle_digest(model)
    if kind in ID_INPUTS:
        assert fmt.contract(model).vocab == ID_INPUTS[kind]


def test_the_int8_model_reads_as_onnx_reads_it(tmp_path):
    learner = Learner(Network(6, [Dense(16, "relu"), Dense(3)]), seed=0)
    report = builder.export(learner, tmp_path / "m.onnx", int8=True)
    model = onnx.load(report["int8"]["path"])
    kinds = {t.data_type for t in model.graph.initializer}
    assert {TensorProto.INT8, TensorProto.FLOAT} <= kinds, kinds
    assert_same_as_onnx(model)
    fmt.verify(model.SerializeToString(), checker=False)


TYPES = [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT8,
         TensorProto.UINT8, TensorProto.INT16, TensorProto.UINT16, TensorProto.INT32,
         TensorProto.INT64, TensorProto.UINT32, TensorProto.UINT64, TensorProto.BOOL,
         TensorProto.BFLOAT16, TensorProto.COMPLEX64, TensorProto.COMPLEX128]


@st.composite
def tensors(draw):
    data_type = draw(st.sampled_from(TYPES))
    dims = draw(st.lists(st.integers(0, 4), max_size=3))
    n = int(np.prod(dims)) if dims else 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bits = rng.integers(0, 256, n * 16, dtype=np.uint8).tobytes()
    np_type = helper.tensor_dtype_to_np_dtype(data_type)
    if data_type == TensorProto.BFLOAT16:
        values = np.frombuffer(bits[:2 * n], np.uint16)
    elif data_type == TensorProto.BOOL:
        values = np.frombuffer(bits[:n], np.uint8) % 2 == 1
    else:
        values = np.frombuffer(bits[:np.dtype(np_type).itemsize * n], np_type)
    if np.dtype(np_type).kind in "fc" and n and draw(st.booleans()):  # plant a NaN or an inf
        values = values.copy()
        values.reshape(-1)[draw(st.integers(0, n - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf]))
    values = values.reshape(dims)
    name = draw(st.text(min_size=1, max_size=8))
    raw = draw(st.booleans())
    if data_type == TensorProto.BFLOAT16:
        t = TensorProto(name=name, data_type=data_type, dims=dims)
        if raw:
            t.raw_data = values.astype("<u2").tobytes()
        else:
            t.int32_data.extend(int(v) for v in values.reshape(-1))
        return t
    return helper.make_tensor(name, data_type, dims,
                              values.tobytes() if raw else values.reshape(-1), raw=raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tensors(), max_size=5), st.booleans())
def test_tensors_in_every_encoding_read_as_onnx_reads_them(inits, two_graph_fields):
    graph = helper.make_graph([], "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"k": "v", "ü": "ß"})
    assert_same_as_onnx(model)
    if two_graph_fields:  # a singular message written twice merges, as protobuf defines
        data = model.SerializeToString()
        extra = onnx.ModelProto(graph=onnx.GraphProto(initializer=inits[:1])).SerializeToString()
        merged = onnx.load_model_from_string(data + extra)
        assert_same_as_onnx(merged)
        assert fmt.weights_digest(data + extra) == oracle_digest(merged)


def _exported() -> bytes:
    return builder.build_model(Learner(Network(4, [Dense(5, "tanh"), Dense(3)]),
                                       seed=0)).SerializeToString()


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_malformed_bytes_raise_format_error_only(data):
    good = bytearray(_exported())
    how = data.draw(st.sampled_from(["truncate", "flip", "splice"]))
    if how == "truncate":
        bad = bytes(good[:data.draw(st.integers(0, len(good) - 1))])
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            good[data.draw(st.integers(0, len(good) - 1))] = data.draw(st.integers(0, 255))
        bad = bytes(good)
    else:
        at = data.draw(st.integers(0, len(good)))
        bad = bytes(good[:at]) + data.draw(st.binary(max_size=40)) + bytes(good[at:])
    try:
        model = ModelFile.parse(bad)
    except FormatError as err:
        assert err.code == "corrupt"
        return
    fmt.weights_digest(model)  # whatever parses can be digested and described
    fmt.non_finite_weights(model)
    try:
        fmt.describe(model)
    except FormatError as err:
        assert err.code in ("metadata", "contract")


@pytest.mark.parametrize("bad, why", [
    (b"\x0b", "wire type 3"),  # a group: not in ONNX files
    (b"\x08" + b"\xff" * 10, "overlong varint"),
    (b"\x3a\x05\x2a\x03\x08\x01", "past the end"),  # graph: initializer longer than the graph
    (b"\x3a\x06\x2a\x04\x10\x08\x1a\x00", "data type 8"),  # a string tensor (segment field)
    (b"\x3a\x06\x2a\x04\x10\x01\x4a\x02", "past the end"),
    (b"\x3a\x08\x2a\x06\x08\x02\x10\x01\x4a\x00", "holds 0 bytes"),  # dims 2 floats, no data
    (b"\x72\x04\x0a\x02\xff\xfe", "UTF-8"),  # a metadata key that is not text
])
def test_specific_malformations_are_named(bad, why):
    with pytest.raises(FormatError, match=why):
        ModelFile.parse(bad)


def test_external_data_and_sparse_initializers_are_refused():
    t = helper.make_tensor("w", TensorProto.FLOAT, [2], np.ones(2, np.float32).tobytes(),
                           raw=True)
    t.data_location = TensorProto.EXTERNAL
    graph = helper.make_graph([], "g", [], [], [t])
    with pytest.raises(FormatError, match="outside the file"):
        ModelFile.parse(helper.make_model(graph).SerializeToString())
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]),
        helper.make_tensor("i", TensorProto.INT64, [1], [0]), [3])
    graph = helper.make_graph([], "g", [], [], sparse_initializer=[sparse])
    with pytest.raises(FormatError, match="sparse"):
        ModelFile.parse(helper.make_model(graph).SerializeToString())
