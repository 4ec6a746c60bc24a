"""EdgePredictor: one onnxruntime session behind a checked, atomic hot swap.

A candidate model (bytes) replaces the served one only if every check passes: it parses (read
by ``export.onnxfile``, without the onnx package) and passes ``onnx.checker`` (full) where onnx
is installed; its weights match the SHA-256 in its metadata and are finite; onnxruntime loads
it; a smoke inference gives finite outputs of the right shape; and its contract (input and
output names and sizes, task, feature names, classes, vocabulary) fits the served model's.
Otherwise it is rejected with a reason code and the old model keeps serving. The swap is one
reference assignment between requests, so no request fails or sees half a model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from tweenstream.errors import CodedError
from tweenstream.export import format as fmt
from tweenstream.latency import LatencyWindow


class SwapRejected(CodedError):
    """A candidate model failed a check; ``code`` names which."""


class PredictError(CodedError):
    """A request the served model cannot answer; ``code`` names why."""


@dataclass(frozen=True)
class Served:
    """A checked model: its session, contract and description."""

    session: ort.InferenceSession
    contract: fmt.ModelContract
    description: dict[str, Any]
    source: str
    data: bytes = b""  # the model file, kept as the last good copy


def check(data: bytes, current: fmt.ModelContract | None, source: str) -> Served:
    """Run every check on candidate bytes; returns the ready model or raises SwapRejected."""
    try:
        model = fmt.verify(data)
        contract = fmt.contract(model)
    except fmt.FormatError as err:
        raise SwapRejected(err.code, err.reason) from None
    if current is not None:
        why = current.compatible(contract)
        if why:
            raise SwapRejected("contract", why)
    bad = fmt.non_finite_weights(model)
    if bad:
        raise SwapRejected("non_finite", f"weights {bad!r} are not finite (NaN or inf)")
    rng = np.random.default_rng(0)
    probe = (rng.integers(0, contract.vocab, (4, contract.n_inputs)) if contract.vocab
             else rng.standard_normal((4, contract.n_inputs))).astype(np.float32)
    try:  # building the session and running it: onnxruntime raises its own classes
        sess = fmt.session(data)
        out = sess.run(None, {contract.input_name: probe})[0]
    except fmt.RUNTIME_ERRORS as err:
        raise SwapRejected("runtime", str(err).splitlines()[0][:300]) from None
    if out.shape != (4, contract.n_outputs):
        raise SwapRejected("smoke", f"output shape {out.shape}, expected "
                           f"(4, {contract.n_outputs})")
    if not np.isfinite(out).all():
        raise SwapRejected("smoke", "the smoke inference gives NaN or inf")
    return Served(sess, contract, fmt.describe(model), source, data)


class EdgePredictor:
    """Predictions from the served model, with latency statistics and checked swaps.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from tweenstream import Dense, Learner, Network
    >>> from tweenstream.export import export
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"
    >>> _ = export(Learner(Network(3, [Dense(2)])), path)
    >>> edge = EdgePredictor.from_file(path)
    >>> edge.predict(np.zeros((1, 3), np.float32)).shape
    (1, 2)
    >>> edge.swap(b"not a model", "test")["code"]
    'corrupt'
    """

    def __init__(self, data: bytes, source: str = "initial") -> None:
        self.served = check(data, None, source)
        self.inference = LatencyWindow()  # onnxruntime's run alone; the server times requests
        self.requests = 0
        self.swaps = 0
        self.rejections: dict[str, int] = {}
        self.last_rejection: dict[str, Any] | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> EdgePredictor:
        """Serve the model in ``path``; ``SwapRejected`` if it fails a check."""
        return cls(Path(path).read_bytes(), str(path))

    @property
    def contract(self) -> fmt.ModelContract:
        return self.served.contract

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Outputs (probabilities or values) for a float32 (n, n_inputs) batch.

        ``PredictError`` (with a code) for token ids the model cannot take, an onnxruntime
        failure, or an output that is not finite: never a NaN answered as a prediction.
        """
        served = self.served  # one read: a swap between requests never splits one
        vocab = served.contract.vocab
        if vocab:
            bad = ~((X >= 0) & (X < vocab) & (X == np.floor(X)))
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise PredictError("bad_value", f"token ids must be integers in [0, {vocab}); "
                                   f"found {X[where]} at position {where}")
        start = time.perf_counter()
        try:
            out = served.session.run(None, {served.contract.input_name: X})[0]
        except fmt.RUNTIME_ERRORS as err:
            raise PredictError("runtime", str(err).splitlines()[0][:300]) from None
        self.inference.record(time.perf_counter() - start)
        self.requests += 1
        if not np.isfinite(out).all():
            rows = np.flatnonzero(~np.isfinite(out).all(axis=1))[:5].tolist()
            raise PredictError("non_finite_output", f"the model's output is not finite for "
                               f"rows {rows}")
        return out

    def swap(self, data: bytes, source: str) -> dict[str, Any]:
        """Replace the served model if ``data`` passes every check; the reply says which."""
        try:
            candidate = check(data, self.served.contract, source)
        except SwapRejected as err:
            self.rejections[err.code] = self.rejections.get(err.code, 0) + 1
            self.last_rejection = {"code": err.code, "reason": err.reason, "source": source}
            return {"ok": False, "code": err.code, "reason": err.reason}
        self.served = candidate
        self.swaps += 1
        return {"ok": True, "code": "ok", "model": candidate.description}

    def status(self) -> dict[str, Any]:
        """The served model, request count, onnxruntime's latency percentiles (µs), swaps and
        rejections."""
        return {"ok": True, "code": "ok", "model": self.served.description,
                "source": self.served.source, "requests": self.requests,
                "inference_latency": self.inference.summary(), "swaps": self.swaps,
                "rejections": dict(self.rejections),
                "last_rejection": self.last_rejection, "onnx_checker": fmt.CHECKER}
