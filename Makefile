# Two set-up commands, both idempotent: `make demo` and `make test`.
# The virtual environment is rebuilt only when pyproject.toml changes or a module is added
# (stamp files).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Editable, in setuptools' strict mode: a tree of links to search/ and models/ named hpsearch
# on sys.path, so that a folder named hpsearch in the current directory (a clone at ~/hpsearch,
# Python started in ~) cannot stand in for the package. Its links are per file: a new module
# needs a reinstall, hence the stamps' dependency on the list of modules.
EDITABLE := --config-settings editable_mode=strict
MODULES := $(wildcard search/*.py search/*/*.py models/*.py models/data/*.py)

.PHONY: demo test lint clean FORCE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.modules: FORCE | $(BIN)/python
	@echo "$(MODULES)" | cmp -s - $@ || echo "$(MODULES)" > $@

$(VENV)/.installed: pyproject.toml $(VENV)/.modules | $(BIN)/python
	$(BIN)/pip install --quiet $(EDITABLE) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.modules | $(BIN)/python
	$(BIN)/pip install --quiet $(EDITABLE) -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/hpsearch run studies/quickstart.toml
	$(BIN)/hpsearch show quickstart --top 5

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q -n 2 --durations=15

clean:
	rm -rf $(VENV) hpsearch.db build
