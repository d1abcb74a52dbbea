# The same verbs for people and CI. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
KUSTOMIZATIONS := deploy/k8s/base deploy/k8s/overlays/production
# deploy/k8s is checked against the oldest Kubernetes it supports and kubernetes-validate's newest.
K8S_OLDEST := 1.30.0

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
# One pytest worker a core (pytest-xdist), each with its own database (tests/conftest.py); a worker that finishes
# its share takes tests still waiting in another's (worksteal), so one long test does not hold up the end.
test: install  ## the whole suite, on CALLOUT_TEST_DATABASE_URL or an embedded PostgreSQL, on every core
	@chromium="$$($(BIN)/python -m tests.browser)" && CALLOUT_CHROMIUM="$$chromium" $(BIN)/pytest -n auto --dist worksteal

lint: install  ## ruff, mypy (strict, tests and bench too), the layering's import contracts, and deploy/k8s rendered and checked against Kubernetes' schemas
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	@command -v kubectl >/dev/null || { echo "make lint renders deploy/k8s with kubectl (its built-in kustomize): install kubectl"; exit 1; }
	@rendered=$$(mktemp) && trap 'rm -f "$$rendered"' EXIT && for kustomization in $(KUSTOMIZATIONS); do \
	  echo "kubectl kustomize $$kustomization | kubernetes-validate (Kubernetes $(K8S_OLDEST), newest)"; \
	  kubectl kustomize $$kustomization > "$$rendered" && \
	  $(BIN)/kubernetes-validate --strict --quiet --kubernetes-version $(K8S_OLDEST) "$$rendered" && \
	  $(BIN)/kubernetes-validate --strict --quiet "$$rendered" || exit 1; \
	done

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install  ## measures on this machine and prints the figures
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
