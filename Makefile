# The two commands of the README contract: `make run` and `make test`.
# Both create .venv, install what they need (pinned by constraints.txt) and go.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the project needs at run or test time (installed when missing, as root).
APT_PACKAGES ?= espeak-ng
ARGS ?=

.PHONY: run test lint bench apt clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "voxgate needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e '.[offline]'
	@touch $@

$(VENV)/.test-installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e '.[test,offline]'
	@touch $@ $(VENV)/.run-installed

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; exit 1; fi; \
	fi

run: apt $(VENV)/.run-installed
	$(BIN)/voxgate serve $(ARGS)

test: apt $(VENV)/.test-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(VENV)/.run-installed
	$(BIN)/python benchmarks/media_plane.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
