# Two entry points that work on a fresh machine: `make demo` (the main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench gpu-check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# The main job: experiments/quickstart.yml through nnictl (MA-DARTS searches on the embedded 8x8 digits).
PORT ?= 8080
demo: setup
	$(BIN)/nni-snn experiment experiments/quickstart.yml --port $(PORT)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check nni_snn search_spaces strategies tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_neuron.py

# On a CUDA machine: pytest -m gpu, then search and retrain step times at the paper's sizes against NNI's DARTS
# (fp32 and bf16) and the projected GPU-hours; results in runs/gpu-check.json. Without CUDA: a tiny CPU run.
gpu-check: setup
	$(BIN)/python benchmarks/gpu_check.py
