# The commands a newcomer needs: `make run` and `make test` do all the set-up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install run test soak lint format contracts bench clean

install: $(STAMP)

# uv installs the pinned dependencies in about a fifth of pip's time (ADR 27); pip, which
# every venv has, only fetches uv itself, pinned too. Compiled at install, as pip does:
# where PYTHONDONTWRITEBYTECODE is set, nothing compiles them later, and every process
# would compile every module it imports again.
UV_VERSION := 0.13.10

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

ENGINE ?= embedded

run: install  ## the five services; ENGINE=kafka runs them on PostgreSQL + Apache Kafka
	$(BIN)/pbj up --engine $(ENGINE)

# Tests are spread over the cores, then the fault tests (which SIGKILL processes at random
# and time their recovery) run one at a time, so nothing else competes with them for the
# CPU. Both phases always run; either failing fails the target.
TEST_WORKERS ?= auto

test: install  ## every test; Kafka/PostgreSQL suites are skipped with a reason when absent
	@$(BIN)/pytest -m "not faults" -n $(TEST_WORKERS); spread=$$?; \
	$(BIN)/pytest -m faults; faults=$$?; \
	echo "tests on $(TEST_WORKERS) workers: exit $$spread; fault tests alone: exit $$faults"; \
	test $$spread -eq 0 -a $$faults -eq 0

# The journey model (tests/test_journey_model.py) for far longer than make test runs it.
SOAK_STEPS ?= 50000

soak: install  ## the journey model for SOAK_STEPS steps (make test runs 1,200)
	PBJ_MODEL_STEPS=$(SOAK_STEPS) PBJ_MODEL_SHARDS=2 $(BIN)/pytest -n 2 -q tests/test_journey_model.py

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
