# Two entry points, both safe on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TARGET ?= 1.0

.PHONY: run test models analyze benchmark benchmark-core clean

# torch==2.13.0 goes in first, alone: a later unpinned resolve would fetch CUDA wheels.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@


## Design 10,000 MoS2 candidates with a 1.0 eV band gap using the shipped models.
run: $(VENV)/.installed
	mkdir -p out
	$(BIN)/matdesinne design --target $(TARGET) --n 10000 --out out/candidates.csv --summary out/summary.json

## Run the test suite.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

## Retrain every shipped MoS2 model (surrogate, cINN, INN, MDN, cVAE): ~40-55 min on 2 cores.
models: $(VENV)/.installed
	$(BIN)/matdesinne train --data mos2 --out src/matdesinne/pretrained/mos2 --seed 0 --split-seed 0

## Figures, metal-insulator transitions and report.html for the shipped MoS2 models (~1 min).
analyze: $(VENV)/.installed
	$(BIN)/matdesinne analyze --out out/analysis

## The paper's Table 1 with honest metrics, written to out/benchmark/ (a few minutes).
benchmark: $(VENV)/.installed
	$(BIN)/matdesinne benchmark --out out/benchmark

## The core benchmark: surrogate accuracy, design yield and speed per stage.
benchmark-core: $(VENV)/.installed
	$(BIN)/python benchmarks/core.py

clean:
	rm -rf $(VENV) out
