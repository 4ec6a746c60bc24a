"""Benchmarks: pytest-benchmark microbenchmarks and the report that publishes them."""
