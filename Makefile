# Two commands for a new user: `make demo` and `make test`. Everything else here serves them.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
# pip installs the exact versions in constraints.txt (resolved on Python 3.11).
CONSTRAINTS := -c constraints.txt

.PHONY: demo test lint typecheck pytest clean help

help:
	@echo "make demo   create .venv, install linewise, run the demo job"
	@echo "make test   create .venv, install dev extras, run ruff, mypy and the whole test suite"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v[:2] == (3, 11) else "linewise needs Python 3.11, found %d.%d (set PYTHON=...)" % v[:2])'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --quiet $(CONSTRAINTS) -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet $(CONSTRAINTS) -e '.[dev]'
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/linewise demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
