# The commands a newcomer needs: `make run` and `make test` do all the set-up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install run test lint format contracts bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

ENGINE ?= embedded

run: install  ## the five services; ENGINE=kafka runs them on PostgreSQL + Apache Kafka
	$(BIN)/pbj up --engine $(ENGINE)

test: install  ## every test; Kafka/PostgreSQL suites are skipped with a reason when absent
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

contracts: install  ## regenerate contracts/schemas and contracts/asyncapi.yaml from the models
	$(BIN)/python -m contracts.generate

bench: install  ## every benchmark in bench/; each prints a table and writes bench/results/*.json
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf var test-artifacts .pytest_cache
