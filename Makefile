# Two entry points (README): `make demo` (main job) and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test coverage bench

install: $(STAMP)

# torch==2.13.0 first: this pin resolves to the CPU build on local disk; an open torch pulls CUDA (GBs).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/anomclr validate --data-dir data/default
	$(BIN)/python studies/ablation_augmentations.py --smoke

# Two pytest-xdist workers, a test file each at a time, in conftest.py's order (the longest first; xdist would
# otherwise sort files by their number of tests); each worker has its own Ray temp dir; the 25 slowest tests listed
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=25

# The same run with line coverage of anomclr_ray (docs/development.md has the last figure)
coverage: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --cov=anomclr_ray --cov-report=term

bench: $(STAMP)
	$(BIN)/python studies/bench_generation.py
	$(BIN)/python studies/bench_method.py
	$(BIN)/python studies/bench_losses.py
	$(BIN)/python studies/bench_pretrain.py --ray
	$(BIN)/python studies/bench_study.py
