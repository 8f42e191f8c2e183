# The single entry point: `make run` (embedded, no services) and `make test` (real
# PostgreSQL + Redis). Everything installs into ./.venv from the project's own files.
# `make test-lowest` runs the same tests in ./.venv-lowest, on the lowest versions
# pyproject.toml allows of SQLAlchemy, asyncpg, FastAPI and Pydantic (constraints/lowest.txt).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOWEST_VENV := .venv-lowest
LOWEST_BIN := $(LOWEST_VENV)/bin
LOWEST_STAMP := $(LOWEST_VENV)/.installed
LOWEST_CONSTRAINTS := constraints/lowest.txt
TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
export TEST_DATABASE_URL TEST_REDIS_URL

.PHONY: run test test-lowest lint fmt typecheck migrations-check bench bench-cpu clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: set PYTHON=python3.x (3.11+)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Same install, pinned down to the floors.
$(LOWEST_STAMP): pyproject.toml $(LOWEST_CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: set PYTHON=python3.x (3.11+)"; exit 1; }
	test -x $(LOWEST_BIN)/python || $(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_BIN)/python -m pip install --quiet --upgrade pip
	$(LOWEST_BIN)/python -m pip install --quiet -e '.[dev]' -c $(LOWEST_CONSTRAINTS)
	touch $(LOWEST_STAMP)

# `make run PORT=8001 HOST=0.0.0.0` serves elsewhere. HOST comes from the command line
# only (some shells export the machine's name as HOST); PORT from it or the environment.
HOST := 127.0.0.1
PORT ?= 8000

run: $(STAMP)
	$(BIN)/helpdesk migrate
	$(BIN)/helpdesk demo
	$(BIN)/helpdesk serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy --strict app

migrations-check: $(STAMP)
	$(BIN)/python -m tests.support.services --check
	$(BIN)/python -m tests.support.alembic_check

test: lint typecheck migrations-check
	$(BIN)/python -m pytest -p no:cacheprovider

# The tests only: lint, types and the migration check are about the code, not the versions.
test-lowest: $(LOWEST_STAMP)
	$(LOWEST_BIN)/python constraints/check_floors.py $(LOWEST_CONSTRAINTS)
	$(LOWEST_BIN)/python -m tests.support.services --check
	$(LOWEST_BIN)/python -m pytest -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-cpu: $(STAMP)
	$(BIN)/python -m bench.cpu

clean:
	rm -rf $(VENV) $(LOWEST_VENV) var .pytest_cache .mypy_cache .ruff_cache
