"""Benchmark (issue 8): complete verification flows per second, service beside a baseline.

Run with ``make bench`` (``python3 -m bench.run``); bench/README.md explains the figures.
"""
