# The two commands a newcomer needs: `make run` and `make test`. Both set everything up.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint typecheck format install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: set up, migrate and load the demo, then serve on http://127.0.0.1:8000 (SQLite)
run: install
	$(BIN)/terreau init
	$(BIN)/terreau migrate
	$(BIN)/terreau demo
	$(BIN)/terreau serve --host $(HOST) --port $(PORT)

## test: lint, type-check and run the whole suite, one worker per core (pytest-xdist)
test: install-dev lint typecheck
	$(BIN)/pytest -n auto --durations=15

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
