# The two commands that matter: `make run` (the whole app, embedded default) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/tollgate
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test test-fast lint format bench clean axe
AXE := tests/axe/node_modules/axe-core/axe.min.js

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.runtime

# DEBUG=true, a generated SECRET_KEY and the demo's callback allowance come from data/local.env, written
# once here; management commands run by hand read the same file (exceptions_app/local_env.py).
run: $(VENV)/.runtime
	@$(BIN)/python -m exceptions_app.local_env $${TOLLGATE_DATA_DIR:-data}/local.env
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py createcachetable
	$(BIN)/python manage.py seed_demo
	TOLLGATE_CALLBACK_ALLOW=$${TOLLGATE_CALLBACK_ALLOW:-127.0.0.1} PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

# axe-core for the accessibility browser tests: from npm at the version tests/axe/package-lock.json pins.
$(AXE): tests/axe/package.json tests/axe/package-lock.json
	npm ci --prefix tests/axe --no-audit --no-fund --silent
	touch $@

axe: $(AXE)

# collectstatic runs with DEBUG=false, as the tests do: after `make run`, data/local.env says DEBUG=true and
# collectstatic then wrote no manifest, so every page the tests rendered failed (60 tests).
test: $(VENV)/.dev $(AXE)
	DEBUG=false SECRET_KEY=collectstatic-only $(BIN)/python manage.py collectstatic --no-input --verbosity 0
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	DEBUG=$${DEBUG:-false} SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} DJANGO_ALLOW_ASYNC_UNSAFE=true TOLLGATE_CALLBACK_ALLOW=127.0.0.1 \
	$(BIN)/pytest $(PYTEST_ARGS)

# The inner loop, under 2 minutes: the engine-free unit tests, then the API and service tests (PostgreSQL
# and Redis, no browser, no worker process). The full suite (`make test`) is CI's.
FAST_TESTS ?= tests/test_lifecycle_api.py tests/test_gate_verdicts.py tests/test_gate_errors.py \
	tests/test_gate_batch_and_items.py tests/test_delivery_api.py tests/test_workflows_api.py tests/test_item_reads.py \
	tests/test_queue_configuration.py tests/test_tokens.py tests/test_rules_everywhere.py tests/test_item_state_changes.py
# The pages the fast tests render name their static files through the manifest collectstatic writes.
STATIC_MANIFEST := staticfiles/staticfiles.json
$(STATIC_MANIFEST): $(VENV)/.dev $(shell find static -type f)
	DEBUG=false SECRET_KEY=collectstatic-only $(BIN)/python manage.py collectstatic --no-input --verbosity 0

test-fast: $(VENV)/.dev $(STATIC_MANIFEST)
	env -u DATABASE_URL -u REDIS_URL SECRET_KEY=unit-tests-only $(BIN)/pytest -q -p no:cacheprovider tests/unit
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} DJANGO_ALLOW_ASYNC_UNSAFE=true TOLLGATE_CALLBACK_ALLOW=127.0.0.1 \
	$(BIN)/pytest -q -p no:cacheprovider -m "not browser and not worker and not demo" $(FAST_TESTS) $(PYTEST_ARGS)

# Every benchmark in bench/ with one table (bench/run.py); FULL=1 for full sizes (about an hour) and the fuzz test.
bench: $(VENV)/.dev
	$(BIN)/python bench/run.py $(if $(filter 1 yes true,$(FULL)),--full,--quick) $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf data staticfiles .pytest_cache
