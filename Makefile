# Two entry points the README opens with; both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup benchmark test lint

$(BIN)/bench: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/bench

setup: $(BIN)/bench

# The main job: a short real ladder against the embedded simulator (about 2 minutes),
# ending in reports/<run-id>/ with the results file and HDR interval logs.
benchmark: setup
	$(BIN)/locust -f locustfiles/async_sessions.py --headless --only-summary \
		--ladder 1,2,4,8,16 --step-time 15 --settle 3 --release local-demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
