# The README's two commands: `make demo` and `make test`. Both create or refresh the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.satpy-prenet-installed
DEMO_DIR ?= demo-output

.PHONY: install demo test test-fast lint bundle benchmark clean

install: $(STAMP)

# torch is pinned first: 2.13.0 is the CPU build on disk; an unpinned torch pulls gigabytes of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: install
	$(BIN)/satpy-prenet demo --out $(DEMO_DIR)

# Two test processes (pytest-xdist), each test file whole in one of them: the module fixtures are made once.
test: install
	$(BIN)/python -m pytest -ra -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check .

test-fast: install
	$(BIN)/python -m pytest -ra -n 2 --dist loadfile -m "not slow"

# Rebuild the embedded demo weights bundle (satpy_prenet/weights/demo-small.safetensors): the whole training on a
# freshly simulated archive, as `satpy-prenet-train all` runs it.
BUNDLE_DIR ?= build/demo-bundle
bundle: install
	rm -rf $(BUNDLE_DIR)
	$(BIN)/satpy-prenet-train all --config etc/training/small.yaml --simulate --workdir $(BUNDLE_DIR) --device cpu
	cp $(BUNDLE_DIR)/prenet-small.safetensors satpy_prenet/weights/demo-small.safetensors

benchmark: install
	$(BIN)/python benchmarks/full_disc_inference.py
	$(BIN)/python benchmarks/chain_latency.py
	OMP_NUM_THREADS=2 $(BIN)/python benchmarks/training_throughput.py --config etc/training/small.yaml --device cpu --steps 12

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
