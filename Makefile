# Tastebase — the verbs people already know.
#   make demo   set everything up (venv, deps, DB, MovieLens 100K, demo login) and serve http://127.0.0.1:$(PORT)
#               (8000 unless you say otherwise: `make demo PORT=8001` or `PORT=8001 make demo`)
#   make test   run the whole test suite on the embedded default (SQLite, eager Celery)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/tastebase
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
# The broker and results live in another database: tests clear the cache (FLUSHDB).
BROKER_TEST_URL ?= redis://127.0.0.1:6379/14
PYTEST_ARGS ?=
# The SQLite leg runs on two processes (pytest-xdist); each gets its own test database.
# The Postgres leg stays in one: its real Celery worker shares one broker database.
XDIST ?= -n 2
# Port of `make demo` / `make serve` (127.0.0.1 only).
PORT ?= 8000

.PHONY: demo serve test test-postgres lint types check bench up down clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime
	DEBUG=1 $(PY) manage.py migrate --no-input
	DEBUG=1 $(PY) manage.py load_demo_data
	DEBUG=1 $(PY) manage.py retrain --if-missing
	DEBUG=1 $(PY) manage.py setup_schedules
	DEBUG=1 $(PY) manage.py create_demo_user
	$(MAKE) serve

serve: $(VENV)/.runtime
	@echo "Tastebase is at http://127.0.0.1:$(PORT)/  (Ctrl-C stops it; another port: make serve PORT=8001)"
	DEBUG=1 $(PY) manage.py runserver 127.0.0.1:$(PORT)

test: $(VENV)/.dev
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-postgres: $(VENV)/.dev
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) CELERY_BROKER_URL=$(BROKER_TEST_URL) \
		CELERY_RESULT_BACKEND=$(BROKER_TEST_URL) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(VENV)/.dev
	DEBUG=1 $(VENV)/bin/mypy .

check: lint types test

bench: $(VENV)/.dev
	$(PY) -m pip install --quiet -r bench/requirements.txt
	$(PY) -m bench.bench_ml100k

up:
	docker compose up --build

down:
	docker compose down

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .mypy_cache .ruff_cache
