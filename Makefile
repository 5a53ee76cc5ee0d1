# Quick start: `make demo` (set-up, a real corpus build on local Ray, stats, a short training run)
# and `make test`. Both create .venv from pyproject.toml first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# `make test` skips the slow end-to-end tests; `make test TEST_MARK=` (as CI does) runs them all.
TEST_MARK ?= not slow

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/codecorpus build configs/demo.toml --out runs/demo
	$(BIN)/codecorpus stats runs/demo
	$(BIN)/codecorpus train configs/model-tiny.toml --data runs/demo --steps 40

test: setup
	$(BIN)/python -m pytest $(if $(TEST_MARK),-m "$(TEST_MARK)") $(PYTEST_ARGS)

bench: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.vs_datatrove
	$(BIN)/python -m bench.fixed_costs
	$(BIN)/python -m bench.opt_out
	$(BIN)/python -m bench.incremental
	$(BIN)/python -m bench.object_storage
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.langid --fetch
	$(BIN)/python -m bench.secrets
	$(BIN)/python -m bench.minhash
	$(BIN)/python -m bench.dedup_quality
	$(BIN)/python -m bench.dedup_scale --sizes 20000,60000
	$(BIN)/python -m bench.pack
	$(BIN)/python -m bench.tokenizer --fetch
	$(BIN)/python -m bench.train_input

clean:
	rm -rf runs .pytest_cache
