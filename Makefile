# Two entry points the README opens with; both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup chromium benchmark test lint

$(BIN)/bench: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/bench

setup: $(BIN)/bench

# The report tests open the HTML in a real headless Chromium (Debian's package).
# Installed only when missing, and only where apt-get can run (root on Debian/Ubuntu).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
	  echo "note: chromium not installed; the report's browser test will be skipped"

# The main job: a real 5-step ladder against the embedded simulator (about 2 minutes)
# through `bench run`: results, Locust CSV, report, the CI's SLO gates and a combined
# summary in reports/local-demo/<run-id>/.
benchmark: setup
	$(BIN)/bench run --ladder 1,2,4,8,16 --step-time 15 --settle 3 --release local-demo \
		--thresholds .github/bench/thresholds.toml

# Most tests wait on Locust processes and the simulator, so three at a time on two
# cores; the `serial` ones judge timing against the truth and run alone afterwards.
# pytest's exit 5 (no test collected) fails either step.
test: setup chromium
	$(BIN)/ruff check .
	$(BIN)/pytest -n 3 -m "not serial"
	$(BIN)/pytest -m serial

lint: setup
	$(BIN)/ruff check .
