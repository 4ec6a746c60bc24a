"""The edge predictor: serves exported ONNX models with onnxruntime, and hot-swaps them.

It needs onnxruntime, numpy, pyzmq and msgpack; never numba (nothing here imports the compiled
engine), and the onnx package only for ``onnx.checker``, which runs where onnx is installed.
"""

from tweenstream.edge.predictor import EdgePredictor, SwapRejected

__all__ = ["EdgePredictor", "SwapRejected"]
