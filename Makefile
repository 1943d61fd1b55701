# helpline-pbx — every set-up step is a target; `make run` and `make test` do all of it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STATE ?= $(or $(HELPLINE_STATE_DIR),/var/lib/helpline-pbx)
# The Debian packages the project needs on the host (the Asterisk root brings Asterisk itself; gcc builds the
# project's Asterisk module against that Asterisk's headers).
APT_PACKAGES := debootstrap sip-tester espeak-ng sox curl iproute2 python3-venv python3-dev gcc libc6-dev openssl
# What only the tests need: fail2ban's fail2ban-regex checks the shipped filter against real log lines;
# Debian's Chromium is the browser the console's tests drive.
TEST_APT_PACKAGES := fail2ban chromium
# The console's front-end libraries: from the npm registry, pinned by web/package-lock.json, copied into the
# service's static folder (the browser never fetches anything from elsewhere).
CONSOLE_VENDOR := src/helpline_pbx/console/static/vendor/chart.umd.js
export HELPLINE_STATE_DIR := $(STATE)

.PHONY: help deps test-deps venv web asterisk asterisk-start asterisk-stop prompts run demo test test-fast lint fmt bench soak clean

help:
	@echo "make run              start Asterisk and the service on SQLite (installs what it needs)"
	@echo "make test             run every test, end-to-end ones on the real Asterisk included"
	@echo "make lint             ruff and mypy (strict on src/)"
	@echo "make asterisk         provision Asterisk 22 (the host's, or a Debian sid root)"
	@echo "make asterisk-start   start it with this project's configuration; asterisk-stop stops it"
	@echo "make prompts          (re)make the line's spoken prompts from prompts/<lang>/*.txt"
	@echo "make bench            what a caller feels: time-to-ring against Queue() and a bare ARI router,"
	@echo "                      capacity, the core; bench-results/bench.{json,md} (BENCH_ARGS=--smoke: tiny)"
	@echo "make demo             the line with six SIPp listeners and a stream of SIPp callers for a few minutes:"
	@echo "                      prints the console's address and a coordinator's sign-in (DEMO_ARGS=--minutes 10)"
	@echo "make soak             a long load run (200 callers, 20 listeners); figures in soak-results/soak.json"

# apt packages, installed only when one is missing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then echo "make: these Debian packages are missing:$$missing — run make as root, or install them with apt-get install$$missing" >&2; exit 1; fi; \
		echo "installing:$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) || \
		{ echo "make: apt-get could not install$$missing — check the network or the apt sources, then run make again" >&2; exit 1; }; \
	fi

test-deps:
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(TEST_APT_PACKAGES)"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "make: Python 3.11 or newer is needed as $(PYTHON)" >&2; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV) || { echo "make: could not create a virtualenv: apt-get install python3-venv" >&2; exit 1; }
	@$(BIN)/pip install -q --upgrade pip >/dev/null
	@$(BIN)/pip install -q -e '.[dev]' || { echo "make: installing the Python dependencies failed (see above): check the network or the package index, then run make again" >&2; exit 1; }
	@touch $@

venv: $(VENV)/.installed

$(CONSOLE_VENDOR): web/package.json web/package-lock.json
	@command -v npm >/dev/null || $(MAKE) --no-print-directory deps APT_PACKAGES="nodejs npm"
	@cd web && npm ci --no-fund --no-audit --loglevel=error >/dev/null || { echo "make: npm could not install the console's libraries (web/package-lock.json): check the network or the npm registry, then run make again" >&2; exit 1; }
	@mkdir -p $(dir $@) && cp web/node_modules/chart.js/dist/chart.umd.js $@

web: $(CONSOLE_VENDOR)

asterisk: deps
	@scripts/asterisk.sh ensure

asterisk-start: deps
	@scripts/asterisk.sh start

asterisk-stop:
	@scripts/asterisk.sh stop

prompts: deps
	@scripts/asterisk.sh install

run: deps venv web asterisk-start
	@set -a; eval "$$(scripts/asterisk.sh env)"; set +a; \
	export HELPLINE_DATABASE_URL=$${HELPLINE_DATABASE_URL:-sqlite+aiosqlite:///$(STATE)/roster.db}; \
	$(BIN)/helpline-pbx db upgrade && $(BIN)/helpline-pbx welcome && exec $(BIN)/helpline-pbx serve

test: deps test-deps venv web asterisk
	@set -a; eval "$$(scripts/asterisk.sh env)"; set +a; \
	$(BIN)/pytest $(PYTEST_ARGS)

# Unit and integration tests only, without Asterisk.
test-fast: venv web
	@$(BIN)/pytest -m "not e2e" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

fmt: venv
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

# The bench adds its reference paths to Asterisk's configuration (HELPLINE_BENCH=1, reloaded if it runs).
bench: deps venv asterisk
	@mkdir -p bench-results
	@set -a; eval "$$(scripts/asterisk.sh env)"; set +a; \
	$(BIN)/python -m tests.bench.run --out bench-results $(BENCH_ARGS)

# A live line to look at: Asterisk, the service on a fresh SQLite roster, SIPp phones and callers.
demo: deps venv web asterisk
	@$(BIN)/python -m tests.load.demo $(DEMO_ARGS)

# A long bounded load on the real Asterisk; exits non-zero if any caller is lost or a listener double-booked.
soak: deps venv asterisk
	@mkdir -p soak-results
	@$(BIN)/python -m tests.load.soak --out soak-results/soak.json

clean:
	rm -rf $(VENV) web/node_modules src/helpline_pbx/console/static/vendor .pytest_cache .mypy_cache .ruff_cache bench-results soak-results src/*.egg-info
