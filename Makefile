# One-command set-up and run. Needs only Python >= 3.11 (and, for `make test`,
# the Debian packages listed in scripts/system-packages.txt, installed when run as root).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
# Dependencies are locked: constraints.txt pins every package of the run and dev extras
# (Python 3.11, Linux) at the versions CI tested, and every install below uses it, so a fresh
# machine installs exactly those. Upgrade them all in one command, then run make test and
# commit constraints.txt with the change:
#   make upgrade-deps
# which runs (uv is pinned in the dev extras):
#   .venv/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
#       --python-platform linux --output-file constraints.txt --upgrade
# After editing the dependencies in pyproject.toml, make lock re-resolves without --upgrade
# (every other pin stays).
LOCK := constraints.txt
LOCK_CMD = $(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	--python-platform linux --output-file $(LOCK)
# pytest runs on three workers that steal work from each other: most tests wait on accelerated
# clocks and sockets, not the CPU (the whole suite keeps two cores about a quarter busy), and the
# long tests go first (tests/conftest.py) so the short ones fill the gaps
# (make test PYTEST_ARGS="-x tests/unit" runs a subset in one process)
PYTEST_ARGS ?= -n 3 --dist worksteal

# The third-party VDA 5050 vehicle the tests drive (tests/peers/vda-5050-lib: the npm package
# vda-5050-lib, locked in its package-lock.json) is installed with npm ci. Without npm the
# tests that need it skip with the reason; with CI=true a missing npm fails the set-up.
PEER_DIR   := tests/peers/vda-5050-lib
PEER_STAMP := $(PEER_DIR)/node_modules/.installed

.PHONY: demo serve test check lint typecheck bench system-packages lock upgrade-deps clean peers

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml $(LOCK) | $(PY)
	$(PY) -m pip install --quiet -c $(LOCK) -e .
	touch $@

$(STAMP_DEV): pyproject.toml $(LOCK) | $(PY)
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $@ $(STAMP_RUN)

$(BIN)/uv: | $(PY)
	$(PY) -m pip install --quiet -c $(LOCK) uv

## lock: re-resolve constraints.txt after a change of pyproject.toml, keeping the other pins
lock: | $(BIN)/uv
	$(LOCK_CMD)

## upgrade-deps: every dependency to its newest version allowed by pyproject.toml
upgrade-deps: | $(BIN)/uv
	$(LOCK_CMD) --upgrade

## demo: the service with a simulated fleet on embedded defaults (no external service needed)
demo: $(STAMP_RUN)
	$(BIN)/streetfleet demo

## serve: the service alone, configured by STREETFLEET_* variables or --config
serve: $(STAMP_RUN)
	$(BIN)/streetfleet serve

system-packages:
	@scripts/system-packages.sh

## peers: the third-party VDA 5050 vehicle (vda-5050-lib's virtual AGV, npm ci)
peers: $(PEER_STAMP)

$(PEER_STAMP): $(PEER_DIR)/package.json $(PEER_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then \
		cd $(PEER_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	elif [ "$$CI" = "true" ]; then \
		echo "node and npm are required (CI=true): the tests drive vda-5050-lib's virtual AGV" >&2; \
		exit 1; \
	else \
		echo "node/npm not found: the vda-5050-lib tests will be skipped (install Node.js >= 18)"; \
	fi

## test: installs everything the tests need, then runs lint, types and the whole suite
test: $(STAMP_DEV) system-packages peers
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

check: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## bench: every benchmark against its baseline in the same run, then a table of met, missed and
## skipped; fails if any missed (make bench BENCH_ARGS="--quick" or BENCH_ARGS="dispatch")
bench: $(STAMP_DEV)
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info $(PEER_DIR)/node_modules
