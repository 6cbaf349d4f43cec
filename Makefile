# Two entry points that work on a fresh machine: `make demo` (the main job) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test test-quick test-deps lint bench gpu-check gpu-study fuzz docs docs-generate

setup: $(VENV)/.installed

# With the test extra: every optional dependency, the test tools and Sphinx.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-core

# The demo needs the core only (the embedded digits, the NNI manager).
$(VENV)/.installed-core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e .
	touch $@

# The main job: experiments/quickstart.yml through nnictl (MA-DARTS searches on the embedded 8x8 digits).
PORT ?= 8080
demo: $(VENV)/.installed-core
	$(BIN)/nni-snn experiment experiments/quickstart.yml --port $(PORT)

test: setup test-deps
	$(BIN)/python -m pytest -q

# The documentation site, warnings as errors: HTML in docs/_build/html, from the committed Markdown pages.
docs: setup
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

# The pages' generated parts (CLI reference, file schemas, API summary, results tables, the zoo's list) and their
# plots (docs/images), rewritten from the code and benchmarks/results; commit what changed (tests/test_docs.py fails
# on a stale page).
docs-generate: setup
	$(BIN)/python docs/generate.py --write

# A quick loop: everything but the tests marked slow (the NNI manager, multi-process, kill-and-resume).
test-quick: setup
	$(BIN)/python -m pytest -q -m "not slow"

# tests/test_remote.py runs NNI's remote training service against a real OpenSSH server: install Debian's
# openssh-server where it is missing and we may (root with apt-get); elsewhere that test says how, and skips.
test-deps:
	@if { [ ! -x /usr/sbin/sshd ] || [ ! -x /usr/lib/openssh/sftp-server ]; } && [ "$$(id -u)" = 0 ] && \
			command -v apt-get >/dev/null; then \
		echo "installing openssh-server (for tests/test_remote.py)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q openssh-server openssh-sftp-server >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q openssh-server openssh-sftp-server >/dev/null; }; \
	fi

# tests/test_fuzz.py's long profile (10x the examples of the one `make test` runs): every input kind generated and
# mutated; the counts go to benchmarks/results/fuzz/long.json (docs/security.md's table). Then the size grid (about
# 40 minutes on 2 cores): real 1-epoch searches and retrains, every pair of sizes and 750 combinations at random,
# counted in benchmarks/results/fuzz/sizes.json.
fuzz: setup
	NNI_SNN_FUZZ=long NNI_SNN_FUZZ_COUNTS=benchmarks/results/fuzz/long.json $(BIN)/python -m pytest -q tests/test_fuzz.py
	OMP_NUM_THREADS=1 $(BIN)/python -m benchmarks.fuzz_sizes --random 750 --seed 0
	$(BIN)/python -m benchmarks.fuzz_table

lint: setup
	$(BIN)/ruff check nni_snn search_spaces strategies tests benchmarks

bench: setup
	$(BIN)/python -m benchmarks.neuron

# On a CUDA machine: pytest -m gpu, then search and retrain step times at the paper's sizes against NNI's DARTS
# (fp32 and bf16) and the projected GPU-hours; results in runs/gpu-check.json. Without CUDA: a tiny CPU run.
gpu-check: setup
	$(BIN)/python -m benchmarks.gpu_check

# On a CUDA machine: MA-DARTS with and without the energy penalty against random cells and the spiking CNN on all of
# Fashion-MNIST, within ~7 minutes (runs/gpu-study/gpu-study.json). The idx files travel in data/fashion-mnist (a GPU
# machine has no network): copied here from Debian's dataset-fashion-mnist where they are missing.
FASHION_MNIST ?= /usr/share/datasets/fashion-mnist
gpu-study: setup
	@mkdir -p data/fashion-mnist
	@[ -f data/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || cp $(FASHION_MNIST)/*.gz data/fashion-mnist/ 2>/dev/null || true
	$(BIN)/python -m benchmarks.gpu_study
