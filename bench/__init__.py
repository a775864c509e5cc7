"""Benchmarks: `make bench`, or one of them with `.venv/bin/python -m bench.NAME` from the repository root."""
