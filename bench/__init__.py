"""Benchmarks (not part of the site or its tests); run each as ``python -m bench.NAME``, see README.md."""
