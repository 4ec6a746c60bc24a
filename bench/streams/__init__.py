"""Real-stream suite: River's models and tweenstream's modes on River's streams, prequentially.

Usage: ``python -m bench.streams [--streams ...] [--models ...] [--heuristic] [--ways ...]
[--limit N] [--quick] [--json PATH] [--markdown PATH]`` (or ``make streams``); the settings
sweep is ``python -m bench.streams.sweep`` (see ``sweep.py``). Needs River
(``pip install -e '.[river]'``, river>=0.25,<0.26).

Streams (``catalog.py``), each in River's order, nothing downloaded:

- bundled with River, full length: ``phishing`` (``datasets.Phishing()``, 1,250 samples, 9
  features, binary), ``bananas`` (``datasets.Bananas()``, 5,300, 2 features, binary),
  ``chick-weights`` (``datasets.ChickWeights()``, 578, regression on time, chick id and diet,
  all ints used as numbers);
- synthetic, seed 42, the first 10,000 samples: ``sea-drift`` (River's documented
  ``ConceptDriftStream(stream=SEA(variant=0, seed=42), drift_stream=SEA(variant=1,
  seed=42), seed=1)`` at its default position 5,000 and width 1,000: the threshold of
  x0 + x1 moves from 8 to 9), ``sine-drift`` (the same drift from ``Sine(classification_function=0,
  seed=42)``, SINE1, to ``Sine(classification_function=2, seed=42)``, SINE2), ``waveform``
  (``Waveform(seed=42)``, 21 features, 3 classes), ``random-tree`` (``RandomTree(seed_tree=42,
  seed_sample=42)``, 2 classes, 5 numeric and 5 int-coded categorical features) and
  ``planes2d`` (``Planes2D(seed=42)``, regression, 10 features in {-1, 0, 1}).

Models, each fresh for each stream and run in-process one after the other:

- River, default settings (``river_models.py``): ``river-linear`` (``StandardScaler() |
  LogisticRegression()``, one-vs-rest for Waveform, ``| LinearRegression()`` for
  regression), ``river-hat`` (Hoeffding Adaptive Tree, seed 42) and ``river-arf`` (Adaptive
  Random Forest, 10 trees, seed 42), each through ``predict_one`` then ``learn_one`` per sample;
- tweenstream (``tweenstream_models.py``), library defaults in modes ``tween``, ``backprop``
  and ``hybrid`` (``tween-heuristic`` with ``--heuristic``), network ``n -> Dense(32, relu) ->
  classes`` (or ``-> 1`` for regression), seed 42, each measured two ways: ``learn_one``
  (``predict_one`` then ``learn_one`` per sample, on dicts) and ``learn_many`` (the whole
  stream as one float64 array, scored by the learner's own test-then-train counters).

Scores are prequential over the whole stream: accuracy (classification) or MAE (regression).
µs per sample is the loop's wall time over the samples, compile time excluded. The table
(stream rows; per model "score / µs"; the best River model; tweenstream's best mode and its
gap to it) is printed and written to ``build/eval/streams.md``, the raw records to
``build/eval/streams.json``.
"""
