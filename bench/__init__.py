"""Benchmarks, run on demand (never by the test suite): each prints ratios to its target."""
