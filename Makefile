# `make test`, `make lint`: create or refresh .venv (when missing or the requirements changed),
# then run. Pins for this project's machines are in requirements/constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := setup.py requirements/runtime.txt requirements/tests.txt requirements/constraints.txt
# -qq hides the warnings this machine's pip config prints for absent mirror folders; errors show.
PIP := $(BIN)/python -m pip install -qq --disable-pip-version-check -c requirements/constraints.txt
PYTEST_ARGS ?=

.PHONY: venv test lint clean

venv: $(STAMP)

$(STAMP): $(REQUIREMENTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned stack into $(VENV) (first time: a few minutes)"
	$(PIP) 'setuptools<82' wheel
	$(PIP) -r requirements/runtime.txt -r requirements/tests.txt
	$(PIP) --no-deps --no-build-isolation -e .
	@touch $@

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
