# Everything goes through .venv, created on first use and refreshed when pyproject.toml changes.
PY := .venv/bin/python
STAMP := .venv/.installed
# Numba invalidates a cached kernel only when its own file changes, not the kernels it inlines,
# so the cache folder is keyed by a hash of the package sources.
SRC_HASH := $(shell cat tweenstream/*.py tweenstream/*/*.py 2>/dev/null | sha1sum | cut -c1-12)
export NUMBA_CACHE_DIR := $(CURDIR)/build/numba-cache/$(SRC_HASH)

.PHONY: demo test lint unit doctest bench hybrid eval peers streams report fuzz clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,river,sklearn,prometheus,top,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tweenstream demo

test: lint unit doctest

lint: $(STAMP)
	$(PY) -m ruff check tweenstream tests bench
	$(PY) -m mypy

# The suite runs on two workers (pytest-xdist); the engine every test shares is compiled first,
# once, so that the workers load it from the cache instead of both compiling it.
unit: $(STAMP)
	$(PY) -m tweenstream compile --all --refine --quiet
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

doctest: $(STAMP)
	$(PY) -m pytest -q --doctest-modules tweenstream --doctest-glob=README.md README.md -p no:cacheprovider

bench: $(STAMP)
	$(PY) -m pytest -q bench --benchmark-only --benchmark-columns=min,median,mean,stddev,rounds --benchmark-json=build/bench.json
	$(PY) -m bench.report build/bench.json

hybrid: $(STAMP)
	$(PY) -m bench.hybrid

# A million malformed messages on the daemon's data and control sockets (bench/daemon_fuzz.py).
fuzz: $(STAMP)
	mkdir -p build
	$(PY) -m bench.daemon_fuzz --messages 1000000 --seed 1 --json build/fuzz.json

# The accuracy suites (bench/accuracy): tables, toy sets, task switching, depth traces, hybrid.
eval: $(STAMP)
	$(PY) -m bench.accuracy all

# Peer comparison (bench/peers): the peers that are installed; torch and deep-river are
# installed by hand (see bench/peers/__init__.py); River comes with the install above.
peers: $(STAMP)
	$(PY) -m bench.peers

# Real streams (bench/streams): River's bundled and synthetic streams, River's models beside
# tweenstream's modes, prequential; build/eval/streams.md and streams.json. The settings sweep
# is `$(PY) -m bench.streams.sweep`.
streams: $(STAMP)
	$(PY) -m bench.streams

# Every figure of docs/benchmarks.md, regenerated: speed benchmarks, accuracy suites, peers
# (those installed), the real-stream suite, plots.
report: $(STAMP)
	$(MAKE) bench
	$(PY) -m bench.accuracy all
	$(PY) -m bench.peers
	$(PY) -m bench.streams --doc docs/benchmarks.md
	$(PY) -m bench.accuracy report

clean:
	rm -rf build .venv .pytest_cache
