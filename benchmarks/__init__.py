"""
Benchmark scripts: each prints its figures, the last line JSON.

Run them from the repository root as modules, e.g. ``python -m benchmarks.sim2real``; the
shared parts (``sim2real_pool``, ``sim2real_report``) are imported as ``benchmarks.<name>``.
"""
