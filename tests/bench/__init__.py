"""Benchmarks of SPEC section 12: `python -m tests.bench [NAME ...] [--n N] [--json FILE]`."""
