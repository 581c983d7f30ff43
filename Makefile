# Two commands on a fresh machine: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench bench-smoke install clean docs

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; run make PYTHON=python3.X (3.11 or newer)"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and by exact version: on the project's machines these wheels lie on disk.
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1" || $(PY) -m pip install -q torch torchvision
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/qkd demo

# The tests a change is checked with (under 6 minutes on 2 cores); test-slow: real processes,
# whole-data runs, hardware emulation, the docs build. CI runs both (.ci/run).
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) -m pytest benchmarks -q --benchmark-only --benchmark-columns=median,ops,rounds

# CI: every kind of benchmark once, untimed, so they keep working (no thresholds anywhere).
bench-smoke: $(STAMP)
	$(PY) -m pytest benchmarks -q -m smoke --benchmark-disable

# The documentation site (Sphinx, sources in docs/), warnings as errors, as CI builds it.
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html in a browser"

clean:
	rm -rf $(VENV) runs .pytest_cache .benchmarks
