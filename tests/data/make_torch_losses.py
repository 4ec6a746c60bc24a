"""Reference values of PyTorch's losses for tests/test_losses.py (run by hand, not a test).

torch is not a dependency of tweenstream, so the references are computed once and committed:
with torch 2.13.0 (CPU) and numpy (see make_torch_optim.py for an environment), from the
repository root::

    /tmp/torchvenv/bin/python tests/data/make_torch_losses.py

writes ``tests/data/torch_losses.npz``: for seeded float64 inputs, each loss's value and its
gradient with respect to the network's output, as PyTorch's autograd computes them:

- ``ce_*``: ``F.cross_entropy(logits, label)`` (softmax cross-entropy of one sample);
- ``sq_*``: ``0.5 * F.mse_loss(a, y, reduction="sum")``;
- ``cos_*``: the hybrid of the cosine loss, ``(1 - w) * 0.5 * F.mse_loss(a, y, reduction="sum")
  + w * (1 - F.cosine_similarity(a, y, dim=-1)).mean()`` on outputs shaped (steps, d), so the
  cosine is taken per step (token level) and averaged; one case per weight w, plus cases of
  one step (a flat output: one cosine over the whole vector).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

OUT = Path(__file__).resolve().parent / "torch_losses.npz"
WEIGHTS = (0.0, 0.5, 0.9, 1.0)
CASES = 6  # per loss
STEPS, WIDTH = 4, 3


def _grad(fn, *inputs):
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in inputs]
    value = fn(*leaves)
    value.backward()
    return float(value.detach()), leaves[0].grad.numpy().copy()


def main() -> None:
    rng = np.random.default_rng(2026)
    out: dict[str, np.ndarray] = {}
    logits = rng.normal(0, 3, (CASES, 5))
    labels = rng.integers(0, 5, CASES)
    ce = [_grad(lambda z, c=c: F.cross_entropy(z[None], torch.tensor([int(c)])), z)
          for z, c in zip(logits, labels, strict=True)]
    out |= {"ce_logits": logits, "ce_labels": labels, "ce_loss": np.array([v for v, _ in ce]),
            "ce_grad": np.array([g for _, g in ce])}
    a, y = rng.normal(size=(CASES, 7)), rng.normal(size=(CASES, 7))
    sq = [_grad(lambda p, t=t: 0.5 * F.mse_loss(p, torch.tensor(t), reduction="sum"), p)
          for p, t in zip(a, y, strict=True)]
    out |= {"sq_a": a, "sq_y": y, "sq_loss": np.array([v for v, _ in sq]),
            "sq_grad": np.array([g for _, g in sq])}
    for steps, width, tag in ((STEPS, WIDTH, "seq"), (1, STEPS * WIDTH, "flat")):
        a = rng.normal(size=(CASES, steps, width))
        y = rng.normal(size=(CASES, steps, width))
        for w in WEIGHTS:
            def hybrid(p, t, w=w):
                cos = F.cosine_similarity(p, t, dim=-1)
                return (1 - w) * 0.5 * F.mse_loss(p, t, reduction="sum") + w * (1 - cos).mean()
            res = [_grad(hybrid, p, t) for p, t in zip(a, y, strict=True)]
            out[f"cos_{tag}_{w}_loss"] = np.array([v for v, _ in res])
            out[f"cos_{tag}_{w}_grad"] = np.array([g for _, g in res])
        out[f"cos_{tag}_a"], out[f"cos_{tag}_y"] = a, y
    out["weights"] = np.array(WEIGHTS)
    out["torch_version"] = np.array(torch.__version__)
    np.savez(OUT, **out)
    print(f"wrote {OUT} ({len(out)} arrays, torch {torch.__version__})")


if __name__ == "__main__":
    main()
