# Set-up is two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs the package from pyproject.toml by itself.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall when pyproject.toml changes. The demo's environment has the web UI (hotmess serve) too.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[serve]"
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[dev]"
	touch $@ $(VENV)/.base

# The browser tests open the HTML report in Debian's chromium (+ chromedriver). Installed here when
# missing and apt can (root, or passwordless sudo); otherwise those tests skip and say why.
$(VENV)/.chromium: | $(BIN)/python
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then echo "no apt-get: the browser tests will skip"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium and chromium-driver with apt-get (for the report's browser tests)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "could not install chromium: the browser tests will skip"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	  echo "installing Debian's chromium and chromium-driver with sudo apt-get (for the report's browser tests)"; \
	  (sudo -n apt-get update -qq && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	    || echo "could not install chromium: the browser tests will skip"; \
	else echo "chromium is missing and apt-get needs root: the browser tests will skip"; fi
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then touch $@; fi

# The JavaScript agent of the serve tests (tests/js): the OpenTelemetry JS SDK and its OTLP exporters
# from npm, as its lockfile pins them. Without node and npm that test skips and says why.
$(VENV)/.node: tests/js/package-lock.json | $(BIN)/python
	@if command -v npm >/dev/null; then \
	  (cd tests/js && npm ci --no-audit --no-fund --silent) && touch $@ \
	    || echo "npm ci failed in tests/js: the JavaScript agent test will skip"; \
	else echo "node and npm are missing: the JavaScript agent test will skip"; fi

demo: $(VENV)/.base
	$(BIN)/hotmess demo --db hotmess-demo.db
	$(BIN)/hotmess report --db hotmess-demo.db --out hotmess-demo.html

test: $(VENV)/.dev $(VENV)/.chromium $(VENV)/.node
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench

# Peers (MLflow) live only in the benchmark environment, never in hotmess's dependencies.
BENCH_VENV := .venv-bench

$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . mlflow
	touch $@

# Runs every benchmark in bench/ and writes BENCHMARKS.md and BENCHMARKS.json (about 30 minutes on 2 cores).
bench: $(VENV)/.dev $(BENCH_VENV)/.installed
	$(BIN)/python bench/run.py --peer-python $(BENCH_VENV)/bin/python

clean:
	rm -rf $(VENV) $(BENCH_VENV) tests/js/node_modules hotmess-demo.db* hotmess-demo-prod.jsonl hotmess-demo.html .pytest_cache
