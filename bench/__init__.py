"""Benchmarks: ``python -m bench`` (``make bench``) measures the pipeline and the pages.

See ``docs/performance.md`` for what is measured, how, and the latest figures.
"""
