"""Benchmarks run as scripts (``python benchmarks/bench_x.py``) or, where they reuse the test
suite's helpers, as modules from the checkout root (``python -m benchmarks.bench_x``); the tests
import the few helpers they share with the benchmarks as ``benchmarks.NAME``."""
