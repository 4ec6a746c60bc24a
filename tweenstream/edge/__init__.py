"""The edge predictor: serves exported ONNX models with onnxruntime, and hot-swaps them.

It needs onnxruntime, onnx (for ``onnx.checker``), numpy, pyzmq and msgpack - never numba:
nothing here imports the compiled engine.
"""

from tweenstream.edge.predictor import EdgePredictor, SwapRejected

__all__ = ["EdgePredictor", "SwapRejected"]
