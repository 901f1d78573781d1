# Two commands for a fresh machine: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.medsegai-installed
DEMO_OUT ?= demo-out

.PHONY: setup lint test demo clean-venv

setup: $(STAMP)

# torch is installed first and pinned: 2.13.0 is the CPU wheel on these machines, and
# installing it first stops other packages from pulling a newer CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Lint and formatting rules live in pyproject.toml ([tool.ruff]).
LINTED := MedSegAI Testing lab benchmarks

lint: setup
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

test: lint
	$(PY) -m pytest Testing -q

demo: setup
	$(VENV)/bin/medsegai demo -o $(DEMO_OUT)
	@echo "Results in $(DEMO_OUT)/ (open $(DEMO_OUT)/summary.png)"

clean-venv:
	rm -rf $(VENV)
