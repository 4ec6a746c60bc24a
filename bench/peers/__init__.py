"""Peer comparison: tweenstream against other online learners on the same streams and shapes.

Usage: ``python -m bench.peers [--peers ...] [--shapes ...] [--seeds N] [--samples-scale F]
[--warmup W] [--quick]`` (or ``make peers``). Every peer learns the same seeded stream, one
sample at a time, test-then-train, on MLP shapes with tanh hidden layers and a softmax
cross-entropy output:

- toy = 2-16-16-2 on two moons, A = 8-32-32-4 on the quadrant stream (10% label noise),
  B = 64-128-128-10 and C = 784-256-128-10 on streams labelled by a fixed random tanh network;
- peers: ``tweenstream-backprop``, ``tweenstream-tween``, ``numpy-sgd`` (a plain NumPy MLP),
  ``torch`` (PyTorch eager, per-sample SGD), ``deep-river`` (its ``Classifier`` on the same
  torch module) and ``river-logreg`` (River's logistic regression, one-vs-rest for more than two
  classes).

Each (peer, shape, seed) runs in its own fresh process (``bench/peers/one.py``) so that its peak
resident set is its own. The table (prequential accuracy mean ± std over seeds, µs per sample,
peak RSS, RSS growth while learning) and its notes are printed and written to
``build/eval/peers.md``; the raw records to ``build/eval/peers.json``. A peer whose library is
not installed is listed as "not installed". None of the peers is needed by ``make test``.

Installing the peers
--------------------
The first three peers need nothing beyond tweenstream. For the others, into the project's
environment:

1. River (the ``river-logreg`` peer, and a dependency of deep-river)::

       pip install -e '.[peers]'            # river>=0.25,<0.26

2. PyTorch, a CPU-only build, installed by you (it is not in the extra)::

       pip install torch==2.13.0

   2.13.0 is the version we measure. On Linux the default wheel of torch pulls in the CUDA
   libraries (several GB); take the CPU-only wheel instead, from PyTorch's CPU wheel index as
   PyTorch's own install instructions describe ("Compute Platform: CPU"). On macOS and Windows
   the default wheel is already CPU-only.

3. deep-river 0.3.4 (the latest), without its dependencies, then the one it needs to import::

       pip install --no-deps deep-river==0.3.4
       pip install 'pandas>=2.2,<3'

   deep-river 0.3.4 pins ``torch<2.6``; installed with its dependencies it would replace the
   CPU torch above by a 2.5 build with CUDA. Its other requirements are numpy, river<0.26,
   sortedcontainers and tqdm (already there through tweenstream and step 1), scikit-learn and
   torchviz, which its ``Classifier`` does not import (``pip check`` will still list them and
   the torch pin; the comparison does not need them).

Check with ``python -c "import torch, river, deep_river.classification"``, then
``python -m bench.peers --quick`` for a smoke run.
"""
