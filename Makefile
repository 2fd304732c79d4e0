# Two commands for a new user: `make demo` and `make test`. Everything else here serves them.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
# pip installs the exact versions in constraints.txt (resolved on Python 3.11).
CONSTRAINTS := -c constraints.txt

.PHONY: demo test lint typecheck pytest chromium postgresql clean help

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

# $(call debian_package,PACKAGE,CHECK,NEEDED BY): run CHECK; when it fails, install Debian's PACKAGE
# (as root), or say how to and stop. The tests use real system parts, never downloaded ones.
define debian_package
	@if $(2) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's $(1) for $(3)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1) \
		|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1); }; \
	else \
		echo "make test needs Debian's $(1) for $(3), and installing it needs root:" >&2; \
		echo "  sudo apt-get install -y $(1)    (then run make test again)" >&2; \
		exit 1; \
	fi
endef

# The report's browser tests drive Debian's chromium through Playwright; no browser is ever downloaded.
chromium:
	$(call debian_package,chromium,command -v chromium,the report's browser tests)

# The OMOP import tests start Debian's PostgreSQL server on the loopback, as the postgres user.
postgresql:
	$(call debian_package,postgresql,ls /usr/lib/postgresql/*/bin/initdb,the OMOP import tests)

pytest: $(VENV)/.installed-dev chromium postgresql
	$(BIN)/python -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
