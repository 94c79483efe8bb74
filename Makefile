# AP Intake: `make run` starts the stack, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench venv clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

## Web + worker + beat on SQLite and a local Redis, in the foreground (Ctrl-C stops all).
run: $(STAMP)
	$(PY) scripts/devstack.py

## The whole test suite (PostgreSQL when DATABASE_URL is set, else SQLite; always the real Redis).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## ruff (lint and format), then mypy on the typed modules (it loads the Django settings: DEBUG=1 needs no SECRET_KEY).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(PY) -m mypy

## Benchmarks (need PostgreSQL and Redis); figures go to docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) bench/jobs_throughput.py
	$(PY) bench/api_latency.py
	$(PY) bench/extract.py

clean:
	rm -rf $(VENV) var/static var/test-db.sqlite3
