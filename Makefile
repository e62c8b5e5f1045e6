# The README's two commands: `make demo` and `make test`. Each sets up what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint typecheck prometheus clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

prometheus:
	@bash scripts/ensure-prometheus.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) prometheus lint typecheck
	$(VENV)/bin/edgectl env validate environments/*.yaml
	$(VENV)/bin/pytest

demo: $(STAMP) prometheus
	$(VENV)/bin/edgectl demo --env environments/local.yaml

bench: $(STAMP)
	$(PY) -m bench.run_all --write docs/benchmarks.md --jobs 2
	@bash scripts/ensure-wrk.sh
	$(PY) -m bench.selector_benchmark --splice docs/benchmarks.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
