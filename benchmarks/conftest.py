"""Benchmarks measure; they assert nothing about speed. Compare ratios within one run."""

import importlib.util
from pathlib import Path

# The tests' rule for dataset files (skip locally when absent, fail in CI), shared rather than copied.
_spec = importlib.util.spec_from_file_location("tests_conftest", Path(__file__).resolve().parents[1] / "tests" / "conftest.py")
_tests_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests_conftest)
require_dataset_files = _tests_conftest.require_dataset_files


def pytest_configure(config):
    config.addinivalue_line("markers", "smoke: the quick subset CI runs (pytest benchmarks -m smoke --benchmark-disable)")
