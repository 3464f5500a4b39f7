# Restorable: the two commands are `make demo` and `make test`. Everything else is a step of them.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STATE ?= .state
export PATH := $(abspath $(VENV))/bin:$(PATH)
# devstack/ (the throwaway servers of the demo, tests and benchmark) is imported from the checkout,
# never installed with the product package.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: all bootstrap venv test test-unit demo stop bench lint screenshot clean

all: test

bootstrap:
	@scripts/bootstrap-system.sh

# uv makes a clean install take seconds; fall back to pip to get uv itself.
$(VENV)/.installed: requirements.txt pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@[ -x $(PY) ] || uv venv --quiet --python python3.11 $(VENV)
	VIRTUAL_ENV=$(abspath $(VENV)) uv pip install --quiet --compile-bytecode -r requirements.txt
	VIRTUAL_ENV=$(abspath $(VENV)) uv pip install --quiet --no-deps -e .
	@touch $@

venv: $(VENV)/.installed

# Three workers on two cores: most tests wait on their servers, not on the CPU (one worker keeps the
# load average near 1). --dist loadfile keeps a file's tests, and its module fixtures, on one worker;
# each worker starts servers of its own.
TEST_WORKERS ?= 3
test: bootstrap venv
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 tests

test-unit: bootstrap venv
	$(VENV)/bin/pytest -q -m "not integration and not airflow" tests

demo: bootstrap venv
	@scripts/demo.sh

stop:
	@scripts/stop.sh

bench: bootstrap venv
	$(PY) scripts/bench.py --out bench-results

lint: venv
	$(VENV)/bin/ruff check plugins devstack dags tests scripts
	$(VENV)/bin/ruff format --check plugins devstack dags tests scripts

screenshot: venv
	$(PY) scripts/screenshot.py

clean: stop
	rm -rf $(STATE) bench-results
