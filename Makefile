# The README's two commands: `make demo` and `make test`. Both create or refresh the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.satpy-prenet-installed
DEMO_DIR ?= demo-output

.PHONY: install demo test test-fast bundle benchmark clean

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

test: install
	$(BIN)/python -m pytest -ra

test-fast: install
	$(BIN)/python -m pytest -ra -m "not slow"

# Rebuild the embedded demo weights bundle (satpy_prenet/weights/demo-small.safetensors).
bundle: install
	$(BIN)/python -m satpy_prenet.training.demo_bundle --out satpy_prenet/weights/demo-small.safetensors

benchmark: install
	$(BIN)/python benchmarks/full_disc_inference.py
	$(BIN)/python benchmarks/chain_latency.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
