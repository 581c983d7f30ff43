"""Benchmarks measure; they assert nothing about speed. Compare ratios within one run."""
