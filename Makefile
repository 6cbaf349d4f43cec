# Two entry points that work on a fresh machine: `make demo` (the main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# The main job: a real MA-DARTS search on the embedded 8x8 digits (a few minutes on 2 CPU cores).
demo: setup
	$(BIN)/nni-snn search --dataset digits --width 8 --cells 5 --epochs 4 --batch-size 32 --lr 0.05 --output runs/demo
	$(BIN)/nni-snn show runs/demo/arch.json --width 8 --in-channels 1

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check nni_snn search_spaces strategies tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_neuron.py
