"""The benchmarks build networks of a dozen kind sets: they share one engine of every kind
(``TWEENSTREAM_ENGINE=all``), compiled once, as the interpreter was before engines per kind
set. bench/test_cold_start.py sets the policy of its own processes."""

import os

os.environ.setdefault("TWEENSTREAM_ENGINE", "all")
