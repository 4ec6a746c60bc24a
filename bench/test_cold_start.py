"""Cold start under pytest-benchmark: one round per case (each round compiles from scratch).

The figure benchmarked is the whole cold run (spawn, import, compile, first sample); the warm
run of the same cache and the child's own figure go into ``extra_info``. See bench/cold_start.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bench.cold_start import CASES, run_case


@pytest.mark.parametrize("case", list(CASES))
def test_cold_start(benchmark, case):
    with tempfile.TemporaryDirectory(prefix="tweenstream-cold-") as folder:
        cold = benchmark.pedantic(run_case, args=(case, Path(folder)), rounds=1, iterations=1)
        warm = run_case(case, Path(folder))
    benchmark.extra_info.update(table="cold", case=case, cold_s=round(cold, 2),
                                warm_s=round(warm, 2))
    assert cold > 0 and warm > 0
