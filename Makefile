# Two entry points (README): `make demo` (main job) and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench

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

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python studies/bench_generation.py
	$(BIN)/python studies/bench_method.py
	$(BIN)/python studies/bench_losses.py
	$(BIN)/python studies/bench_pretrain.py --ray
	$(BIN)/python studies/bench_study.py
