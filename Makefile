# One-command set-up and run. Needs only Python >= 3.11 (and, for `make test`,
# the Debian packages listed in scripts/system-packages.txt, installed when run as root).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
# pytest runs on two workers: most tests wait on accelerated clocks and sockets, not the CPU
# (make test PYTEST_ARGS="-x tests/unit" runs a subset in one process)
PYTEST_ARGS ?= -n 2

.PHONY: demo serve test check lint typecheck bench system-packages clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

## demo: the service with a simulated fleet on embedded defaults (no external service needed)
demo: $(STAMP_RUN)
	$(BIN)/streetfleet demo

## serve: the service alone, configured by STREETFLEET_* variables or --config
serve: $(STAMP_RUN)
	$(BIN)/streetfleet serve

system-packages:
	@scripts/system-packages.sh

## test: installs everything the tests need, then runs lint, types and the whole suite
test: $(STAMP_DEV) system-packages
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

check: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## bench: every benchmark, each printing ratios against a baseline measured in the same run
bench: $(STAMP_DEV)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
