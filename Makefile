# flask-cart: development tasks (GNU make).
#
#   make test    install into .venv, start the services, lint, type-check, run pytest
#   make test-lowest  pytest in .venv-lowest, every dependency at its declared lower bound
#   make demo    run the demo shop on http://127.0.0.1:5000
#   make lint    ruff (check and format --check) and mypy only
#   make docs    the Sphinx site in docs/_build/html (warnings are errors), then its doctests
#   make dist-check  sdist and wheel, twine check, their contents, the wheel in a fresh venv
#   make bench   run the benchmarks in bench/
#   make clean   remove build output and caches (make distclean: the venv too)
#
# Extra pytest arguments: make test PYTEST_ARGS='-k merge -x'

PY ?= python3
VENV = .venv
BIN = $(VENV)/bin
PYTEST_ARGS ?=
# Chromium is needed by the browser tests; a missing one is fatal only when CI=true.
SERVICES_ARGS ?= --chromium

TEST_STAMP = $(VENV)/.installed-test
DEMO_STAMP = $(VENV)/.installed-demo
DOCS_STAMP = $(VENV)/.installed-docs
DIST_STAMP = $(VENV)/.installed-dist
LOWEST = .venv-lowest
LOWEST_STAMP = $(LOWEST)/.installed-lowest

.PHONY: all test test-lowest services lint demo bench bench-more docs dist dist-check clean distclean

all: test

$(TEST_STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# The runtime and test requirements pinned to their floors (scripts/lowest_pins.py); pip
# resolves what they need in turn. The linters have no floor and are not installed there.
$(LOWEST_STAMP): setup.cfg pyproject.toml scripts/lowest_pins.py
	rm -rf $(LOWEST)
	$(PY) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install -q --upgrade pip
	$(PY) scripts/lowest_pins.py setup.cfg test > $(LOWEST)/pins.txt
	$(LOWEST)/bin/python -m pip install -q -e . -r $(LOWEST)/pins.txt
	touch $@

$(DEMO_STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[sqlalchemy,login,redis,mail]' 'flask-wtf>=1.2'
	touch $@

services:
	bash scripts/ensure_services.sh $(SERVICES_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check flask_cart tests demo_app bench docs scripts
	$(BIN)/ruff format --check flask_cart tests demo_app bench docs scripts
	$(BIN)/mypy

test: $(TEST_STAMP) services lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-lowest: $(LOWEST_STAMP) services
	@echo "test-lowest: $$(sed 's/;.*//' $(LOWEST)/pins.txt | tr '\n' ' ')"
	$(LOWEST)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# DEMO_PORT (default 5000) and DEMO_HOST change where it listens; a busy port is named.
# DEMO_QA=1 opens the QA page of abandoned carts and their reminders' outbox
# (/status/abandoned); DEMO_ABANDONED_STAGES=30s makes a cart due after 30 s.
demo: $(DEMO_STAMP)
	@$(BIN)/python -m demo_app

BENCH_STAMP = $(VENV)/.installed-bench

$(BENCH_STAMP): $(TEST_STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	command -v wrk >/dev/null || apt-get install -y -qq wrk
	touch $@

# Peers side by side: callgrind instructions per request (the fair peer's table and the
# goals), then real servers (adds per second, ratios to Flask-Session and the fair peer).
bench: $(BENCH_STAMP) services
	$(BIN)/python bench/icount.py -j 2
	$(BIN)/python bench/serve.py

# The rest: an add's parts, the bare-page cost, cleanup of a million carts.
bench-more: $(BENCH_STAMP) services
	$(BIN)/python bench/icount_parts.py
	$(BIN)/python bench/callgrind_bare_page.py --requests 1000
	$(BIN)/python bench/cleanup_scale.py

# Only what the site needs: Sphinx and its theme, and the extras its examples import.
$(DOCS_STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[docs,sqlalchemy,login,redis]'
	touch $@

# -E: read every page again, so a warning of an unchanged page still fails the build.
# The doctests run the examples against SQLite and the Redis server on 127.0.0.1:6379.
docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -E -q -W --keep-going -b html docs docs/_build/html
	$(BIN)/sphinx-build -E -q -W --keep-going -b doctest docs docs/_build/doctest

$(DIST_STAMP): $(TEST_STAMP)
	$(BIN)/python -m pip install -q build twine
	touch $@

dist: $(DIST_STAMP)
	rm -rf build dist
	$(BIN)/python -m build

# What the sdist and the wheel carry, and the wheel installed into a fresh venv.
dist-check: dist
	$(BIN)/twine check --strict dist/*
	$(BIN)/python scripts/check_dist.py dist

clean:
	rm -rf build dist docs/_build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .ci/junit*.xml
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(LOWEST)
