# Two commands do all the set-up on a fresh machine:
#   make run   -> create .venv if missing, install, run the main job on the embedded default data
#   make test  -> create .venv if missing, install, run the test suite (tests marked slow excluded)
#   make pareto -> the L1 Pareto front over 16 candidates (its own command: trains 11, runs Yosys on 13)
#   make test-slow -> the slow tests (training, hls4ml compilation, servers); .ci/run runs both
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-12)
SEED   ?= 1
RUN_DIR ?= runs/default

.PHONY: run test test-slow pareto install system-tools lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,serve,pythia]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# g++ and yosys from Debian when missing (the C-simulation, the Yosys budget report)
system-tools:
	bash scripts/install_system_tools.sh

install: system-tools $(STAMP)

run: install
	$(VENV)/bin/l1ad pipeline --out $(RUN_DIR) --seed $(SEED)

# the L1 Pareto front over the declared candidates, on the run of `make run` (22-38 min on 2 cores)
pareto: install
	$(VENV)/bin/l1ad pareto --run $(RUN_DIR) --seed $(SEED)

test: install
	$(PY) -m pytest -q -m "not slow"

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) scripts/bench_generator.py

clean:
	rm -rf $(RUN_DIR) .pytest_cache
