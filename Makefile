# The same verbs for people and CI. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint format bench clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Callout needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(INSTALLED)

run: install  ## start everything in one process (embedded PostgreSQL unless CALLOUT_DATABASE_URL is set)
	$(BIN)/callout serve

# The browser tests' Chromium is found (or installed) first, and handed to them: tests/browser.py says how.
test: install  ## the whole suite, on CALLOUT_TEST_DATABASE_URL or an embedded PostgreSQL
	@chromium="$$($(BIN)/python -m tests.browser)" && CALLOUT_CHROMIUM="$$chromium" $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install  ## measures on this machine and prints the figures
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
