"""Reference runs of PyTorch's optimisers for tests/test_optimizers.py (run by hand, not a test).

torch is not a dependency of tweenstream, so the references are computed once and committed.
Two steps, each in its own environment, from the repository root:

1. ``python tests/data/make_torch_optim.py init`` with tweenstream importable (no torch needed)
   writes ``tests/data/torch_optim_init.npz``: the initial weights of two small networks, taken
   from tweenstream Learners with fixed seeds, their descriptions, and the samples.
2. ``python tests/data/make_torch_optim.py`` with torch 2.13.0 (CPU) and numpy, e.g.::

       python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy
       /tmp/torchvenv/bin/python tests/data/make_torch_optim.py

   reads that file (no tweenstream needed) and writes ``tests/data/torch_optim.npz``: for every
   case in ``CASES`` the flat parameter vector after each optimiser step, and the cases
   themselves (JSON), so the test reads its settings from the same place.

The flat vector is tweenstream's arena layout: the Dense layers in order, each ``W`` (out, in)
row-major, then ``b``. The losses are the engine's: softmax cross-entropy of the logits with an
integer label; ½ Σ (y - a)² for regression; a batch of ``batch`` samples steps on the mean loss.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
INIT = HERE / "torch_optim_init.npz"
OUT = HERE / "torch_optim.npz"
N_SAMPLES = 6
TASKS = {"classification": 11, "regression": 12}  # task -> seed of the Learner's initial weights
# name -> task, optimizer, Learner/torch settings, batch size
CASES = {
    "classification-sgd": ("classification", "sgd", {"learning_rate": 0.05, "momentum": 0.9}, 1),
    "classification-adam": ("classification", "adam", {"learning_rate": 0.05}, 1),
    "classification-adagrad": ("classification", "adagrad", {"learning_rate": 0.05}, 1),
    "classification-adam-batch2": ("classification", "adam", {"learning_rate": 0.05}, 2),
    "regression-sgd": ("regression", "sgd", {"learning_rate": 0.05, "momentum": 0.9}, 1),
    "regression-adam": ("regression", "adam",
                        {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6},
                        1),
    "regression-adagrad": ("regression", "adagrad", {"learning_rate": 0.05}, 1),
    "regression-adagrad-batch2": ("regression", "adagrad", {"learning_rate": 0.05}, 2),
}


def make_init() -> None:
    """Initial weights from tweenstream, and the samples (the project's environment)."""
    from tweenstream import Dense, Learner, Network

    rng = np.random.default_rng(5)
    out: dict[str, np.ndarray] = {
        "X": rng.uniform(-1, 1, (N_SAMPLES, 3)).astype(np.float32),
        "labels": rng.integers(0, 2, N_SAMPLES).astype(np.int64),
        "Y": rng.uniform(-1, 1, (N_SAMPLES, 2)).astype(np.float32),
    }
    for task, seed in TASKS.items():
        net = Network(3, [Dense(4, "tanh"), Dense(2)], task=task)
        learner = Learner(net, seed=seed)
        out[f"{task}_network"] = np.array(json.dumps(net.to_dict()))
        out[f"{task}_params"] = learner.arena.params.copy()
        for i in range(2):
            for name, value in learner.arena.layer_params(i).items():
                out[f"{task}_{name}{i}"] = value.copy()
    np.savez(INIT, **out)
    print(f"wrote {INIT}")


def make_reference() -> None:
    """Every case's parameters after each step, from torch (an environment with torch)."""
    import torch

    torch.set_num_threads(1)
    init = np.load(INIT)
    X = torch.from_numpy(init["X"])
    labels = torch.from_numpy(init["labels"])
    Y = torch.from_numpy(init["Y"])
    out: dict[str, np.ndarray] = {"cases": np.array(json.dumps(CASES)),
                                  "torch_version": np.array(torch.__version__)}
    for name, (task, optimizer, settings, batch) in CASES.items():
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
        with torch.no_grad():
            for i, layer in enumerate((model[0], model[2])):
                layer.weight.copy_(torch.from_numpy(init[f"{task}_W{i}"]))
                layer.bias.copy_(torch.from_numpy(init[f"{task}_b{i}"]))
        lr = settings["learning_rate"]
        if optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=settings["momentum"])
        elif optimizer == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=lr,
                                   betas=(settings.get("beta1", 0.9), settings.get("beta2", 0.999)),
                                   eps=settings.get("epsilon", 1e-8))
        else:  # tweenstream's epsilon default, not torch's 1e-10
            opt = torch.optim.Adagrad(model.parameters(), lr=lr, eps=settings.get("epsilon", 1e-8))
        steps = []
        for start in range(0, N_SAMPLES, batch):
            rows = slice(start, start + batch)
            opt.zero_grad()
            a = model(X[rows])
            if task == "classification":
                loss = torch.nn.functional.cross_entropy(a, labels[rows], reduction="mean")
            else:
                loss = (0.5 * ((Y[rows] - a) ** 2).sum(dim=1)).mean()
            loss.backward()
            opt.step()
            with torch.no_grad():
                steps.append(np.concatenate([p.detach().numpy().ravel()
                                             for p in model.parameters()]))
        out[name] = np.stack(steps).astype(np.float32)
    np.savez(OUT, **out)
    print(f"wrote {OUT} (torch {torch.__version__})")


if __name__ == "__main__":
    if sys.argv[1:] == ["init"]:
        make_init()
    elif not sys.argv[1:]:
        make_reference()
    else:
        sys.exit("usage: make_torch_optim.py [init]")
