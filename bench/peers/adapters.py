"""One adapter per peer, behind one interface.

``load()`` imports the peer's library (an ImportError means "not installed"), ``build(shape,
seed)`` makes a fresh model, and ``learn_one(x, y)`` runs test-then-train on one sample: the
model's prediction is scored first, then it learns. ``scored()`` gives the cumulative (samples
scored, correct predictions). Libraries are imported only in ``load()``, so listing the peers
needs none of them.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np

from bench.peers.numpy_mlp import NumpyMLP
from bench.peers.streams import Shape, mlp_params

LEARNING_RATE = 0.03  # per-sample SGD rate of every backprop peer (momentum 0)


class Peer:
    """Base class: the bookkeeping every adapter shares."""

    name = ""
    requires: tuple[str, ...] = ()  # modules ``load()`` imports
    about = ""  # one line for the report's notes

    def __init__(self) -> None:
        self.modules: dict[str, Any] = {}
        self.params = 0
        self._seen = 0
        self._correct = 0

    def load(self) -> None:
        """Import the peer's libraries; raises ImportError when one is not installed."""
        self.modules = {m: importlib.import_module(m) for m in self.requires}

    def version(self) -> str:
        """The version of the library under test."""
        return "?"

    def build(self, shape: Shape, seed: int) -> None:
        """A fresh model of ``shape`` initialised from ``seed``."""
        raise NotImplementedError

    def learn_one(self, x: np.ndarray, y: int) -> None:
        """Test-then-train on one sample (``x`` float32 of the shape's inputs, ``y`` a class)."""
        raise NotImplementedError

    def scored(self) -> tuple[int, int]:
        """Cumulative (samples scored, correct predictions) of ``learn_one``."""
        return self._seen, self._correct

    def _score(self, predicted: Any, y: int) -> None:
        self._seen += 1
        self._correct += int(predicted == y)


def _dist(name: str) -> str:
    """Installed version of distribution ``name``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


class Tweenstream(Peer):
    """``tweenstream.Learner.learn_one``, whose own test-then-train counters score it."""

    requires = ("tweenstream",)
    mode = "backprop"
    # plain SGD like the other backprop peers: named, since the library's default is Adam
    settings: ClassVar[dict[str, Any]] = {"optimizer": "sgd", "learning_rate": LEARNING_RATE,
                                          "momentum": 0.0}

    def version(self) -> str:
        return str(self.modules["tweenstream"].__version__)

    def build(self, shape: Shape, seed: int) -> None:
        ts = self.modules["tweenstream"]
        *hidden, classes = shape.sizes[1:]
        layers = [ts.Dense(h, "tanh") for h in hidden] + [ts.Dense(classes)]
        self.model = ts.Learner(ts.Network(shape.sizes[0], layers), mode=self.mode, seed=seed,
                                **self.settings)
        self.model.warm()  # compile (or load the cached kernels) now
        self.params = mlp_params(shape.sizes)

    def learn_one(self, x: np.ndarray, y: int) -> None:
        self.model.learn_one(x, y)

    def scored(self) -> tuple[int, int]:
        seen, correct, _ = self.model.totals()
        return seen, round(correct)


class TweenstreamBackprop(Tweenstream):
    """tweenstream with exact backprop, the same SGD settings as the other backprop peers."""

    name = "tweenstream-backprop"
    about = (f"tweenstream `Learner(mode=\"backprop\", optimizer=\"sgd\", "
             f"learning_rate={LEARNING_RATE}, momentum=0)`, `learn_one` per sample (scored by "
             "its own test-then-train counters)")


class TweenstreamTween(Tweenstream):
    """tweenstream's chain-rule tweening with the library's default settings."""

    name = "tweenstream-tween"
    mode = "tween"
    settings: ClassVar[dict[str, Any]] = {}
    about = ("tweenstream `Learner(mode=\"tween\")` with library defaults, `learn_one` per "
             "sample")


class NumpySGD(Peer):
    """The plain NumPy MLP of ``numpy_mlp``."""

    name = "numpy-sgd"
    requires = ("numpy",)
    about = ("plain NumPy MLP, buffers preallocated, one forward + backward + SGD step per "
             "sample, Glorot-uniform init (bench/peers/numpy_mlp.py)")

    def version(self) -> str:
        return np.__version__

    def build(self, shape: Shape, seed: int) -> None:
        self.model = NumpyMLP(shape.sizes, lr=LEARNING_RATE, seed=seed)
        self.params = self.model.params

    def learn_one(self, x: np.ndarray, y: int) -> None:
        self._score(self.model.learn_one(x, y), y)


def torch_mlp(torch: Any, sizes: tuple[int, ...]) -> Any:
    """``nn.Sequential`` of Linear layers with tanh between them (PyTorch's default init)."""
    layers: list[Any] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def single_thread(torch: Any) -> None:
    """Run torch on one thread (intra- and inter-op)."""
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work already started
        pass


class Torch(Peer):
    """PyTorch eager: one forward gives the prediction and the loss, then backward and step."""

    name = "torch"
    requires = ("torch",)
    about = (f"PyTorch eager, 1 thread, `nn.Sequential` MLP, `optim.SGD(lr={LEARNING_RATE})`; "
             "per sample one forward (scored), `cross_entropy`, `backward()`, `step()`")

    def version(self) -> str:
        return str(self.modules["torch"].__version__)

    def build(self, shape: Shape, seed: int) -> None:
        torch = self.modules["torch"]
        single_thread(torch)
        torch.manual_seed(seed)
        self.model = torch_mlp(torch, shape.sizes)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.target = torch.zeros(1, dtype=torch.long)
        self.loss = torch.nn.functional.cross_entropy
        self.params = sum(p.numel() for p in self.model.parameters())

    def learn_one(self, x: np.ndarray, y: int) -> None:
        torch = self.modules["torch"]
        logits = self.model(torch.from_numpy(x).unsqueeze(0))
        self._score(int(logits.argmax()), y)
        self.target[0] = y
        self.optimizer.zero_grad()
        self.loss(logits, self.target).backward()
        self.optimizer.step()


class DictPeer(Peer):
    """A peer with River's dict API: each sample's array becomes a ``{feature: value}`` dict
    (what ``river.stream.iter_array`` yields), then ``predict_one`` and ``learn_one``."""

    def build(self, shape: Shape, seed: int) -> None:
        self.keys = [f"x{j}" for j in range(shape.sizes[0])]
        self.model = self.make(shape, seed)

    def make(self, shape: Shape, seed: int) -> Any:
        """The River-style model."""
        raise NotImplementedError

    def label(self, y: int) -> Any:
        """The class as the model takes it."""
        return y

    def learn_one(self, x: np.ndarray, y: int) -> None:
        features = dict(zip(self.keys, x.tolist(), strict=True))
        target = self.label(y)
        self._score(self.model.predict_one(features), target)
        self.model.learn_one(features, target)


class DeepRiver(DictPeer):
    """deep-river's ``Classifier`` around the same torch module as the torch peer."""

    name = "deep-river"
    requires = ("torch", "deep_river.classification")
    about = ("deep-river `classification.Classifier(module, loss_fn=\"cross_entropy\", "
             f"optimizer_fn=\"sgd\", lr={LEARNING_RATE})` on the torch peer's module, 1 thread; "
             "per sample `predict_one` then `learn_one` (two forwards), on dict features")

    def version(self) -> str:
        return f"{_dist('deep-river')} (torch {self.modules['torch'].__version__})"

    def make(self, shape: Shape, seed: int) -> Any:
        torch = self.modules["torch"]
        single_thread(torch)
        torch.manual_seed(seed)
        module = torch_mlp(torch, shape.sizes)
        self.params = sum(p.numel() for p in module.parameters())
        classification = self.modules["deep_river.classification"]
        return classification.Classifier(module=module, loss_fn="cross_entropy",
                                         optimizer_fn="sgd", lr=LEARNING_RATE, seed=seed)


class RiverLogReg(DictPeer):
    """River's online logistic regression; one-vs-rest for more than two classes."""

    name = "river-logreg"
    requires = ("river.linear_model", "river.multiclass", "river.optim")
    about = (f"River `linear_model.LogisticRegression(optimizer=optim.SGD({LEARNING_RATE}))`, "
             "a linear model for scale; wrapped in `multiclass.OneVsRestClassifier` (one "
             "model per class) for more than two classes; `predict_one` then `learn_one` on "
             "dict features")

    def version(self) -> str:
        return _dist("river")

    def make(self, shape: Shape, seed: int) -> Any:
        linear = self.modules["river.linear_model"]
        optim = self.modules["river.optim"]
        model = linear.LogisticRegression(optimizer=optim.SGD(LEARNING_RATE))
        n_inputs, classes = shape.sizes[0], shape.sizes[-1]
        if classes == 2:
            self.params = n_inputs + 1
            return model
        self.params = (n_inputs + 1) * classes
        return self.modules["river.multiclass"].OneVsRestClassifier(model)

    def label(self, y: int) -> Any:
        """A boolean for the binary model, the class index for one-vs-rest."""
        return bool(y) if self.binary else y

    def build(self, shape: Shape, seed: int) -> None:
        self.binary = shape.sizes[-1] == 2
        super().build(shape, seed)


PEERS: dict[str, type[Peer]] = {p.name: p for p in (
    TweenstreamBackprop, TweenstreamTween, NumpySGD, Torch, DeepRiver, RiverLogReg)}
ALWAYS = ("tweenstream-backprop", "tweenstream-tween", "numpy-sgd")  # need no extra install
