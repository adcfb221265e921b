# Swamp Club — the two everyday commands are `make run` and `make test`.
PYTHON ?= python3.12
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench install migrate clean

$(STAMP): requirements.txt pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(BIN)/python || uv venv --quiet --python $(PYTHON) $(VENV) || $(PYTHON) -m venv $(VENV)
	uv pip install --quiet --python $(BIN)/python -r requirements.txt
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

## make run: set everything up, then serve web + worker + beat on http://127.0.0.1:8000
run: migrate
	@test -f var/.seeded || ($(BIN)/python manage.py seed_demo && touch var/.seeded)
	@$(BIN)/python manage.py demo_login
	DEBUG=$${DEBUG-1} $(BIN)/honcho -f Procfile.dev start

## make test: the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## make bench: throughput and latency figures (see README "Performance")
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf var/swampclub.sqlite3* var/broker var/.seeded var/celerybeat-schedule*
