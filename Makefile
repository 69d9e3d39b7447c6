# Two entry points, both safe on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TARGET ?= 1.0

.PHONY: run test dft validate calibration models ws2-data ws2-loop-data ws2-design-data ws2-more-data ws2-half-data ws2-models benchmark-rows analyze benchmark benchmark-core loop benchmark-loop clean
GPAW_BUILD := GPAW_CONFIG=$(CURDIR)/tools/gpaw-siteconfig.py

# torch==2.13.0 goes in first, alone: a later unpinned resolve would fetch CUDA wheels.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

# GPAW builds from source against Debian's libxc, FFTW and OpenBLAS (installed if missing).
$(VENV)/.installed-dft: $(VENV)/.installed tools/gpaw-siteconfig.py tools/install-system-packages.sh
	tools/install-system-packages.sh
	$(GPAW_BUILD) $(BIN)/python -m pip install -q -e '.[dft]'
	touch $@

# The tests cover DFT validation with real GPAW calculations, so they need the DFT extra too.
$(VENV)/.installed-test: $(VENV)/.installed-dft
	$(GPAW_BUILD) $(BIN)/python -m pip install -q -e '.[test,dft]'
	touch $@


## Design 10,000 MoS2 candidates with a 1.0 eV band gap using the shipped models.
run: $(VENV)/.installed
	mkdir -p out
	$(BIN)/matdesinne design --target $(TARGET) --n 10000 --out out/candidates.csv --summary out/summary.json

## Run the test suite.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

## DFT validation stack: system packages, GPAW (built here), its PAW setups, Dask.
dft: $(VENV)/.installed-dft

## Check 10 of the `make run` candidates with DFT (GPAW): ~1 min on 2 cores -> out/results.*
validate: $(VENV)/.installed-dft
	@test -f out/candidates.csv || $(MAKE) run
	$(BIN)/matdesinne validate out/candidates.csv --sample 10 --out out/results.db

## Closed loop on MoS2: 3 rounds x 20 DFT calls at 0.5 and 1.0 eV (~15 min on 2 cores; resumable) -> out/loop/
loop: $(VENV)/.installed-dft
	$(BIN)/matdesinne loop --targets 0.5 1.0 --rounds 3 --batch 20 --out out/loop

## The closed-loop benchmark: the same campaign, with its per-round table, diversity and timings.
benchmark-loop: $(VENV)/.installed-dft
	$(BIN)/python benchmarks/loop.py --out out/loop-benchmark

## Refit the shipped DFT gap calibrations (standard ~6 min, fast ~3 min on 2 cores).
calibration: $(VENV)/.installed-dft
	mkdir -p out
	$(BIN)/matdesinne calibrate --settings standard --out src/matdesinne/materials/mos2/models/calibration-standard.json --store out/calibration-standard.db
	$(BIN)/matdesinne calibrate --settings fast --out src/matdesinne/materials/mos2/models/calibration-fast.json --store out/calibration-fast.db

## Retrain every shipped MoS2 model (surrogate, cINN, INN, MDN, cVAE, CFM): ~75-90 min on 2 cores.
## They predate symmetry images, so --no-symmetry reproduces them.
models: $(VENV)/.installed
	$(BIN)/matdesinne train --data mos2 --out src/matdesinne/materials/mos2/models --seed 0 --split-seed 0 --no-symmetry

## 1H-WS2 from its structure: 256 Sobol' points of the whole box and 128 of the inner ±10 %
## box (where the larger gaps are), labelled with GPAW at the standard settings (~65 min on
## 2 cores; resumable), shipped as materials/ws2/ws2_data.csv with its provenance.
WS2 := src/matdesinne/materials/ws2
INNER := --constrain a=2.8579:3.4929 --constrain b=2.8579:3.4929 --constrain c=11.07:13.53 \
	--constrain alpha=81:99 --constrain beta=81:99 --constrain gamma=108:132
ws2-data: $(VENV)/.installed-dft
	mkdir -p out/ws2
	$(BIN)/matdesinne sample --space ws2 --n 256 --method sobol --seed 0 --out out/ws2/points-256.csv
	$(BIN)/matdesinne sample --space ws2 --n 128 --method sobol --seed 1 $(INNER) --out out/ws2/points-inner-128.csv
	$(BIN)/python tools/join_points.py out/ws2/points-384.csv out/ws2/points-256.csv out/ws2/points-inner-128.csv
	$(BIN)/matdesinne label out/ws2/points-384.csv --space ws2 --out out/ws2/ws2.db
	cp out/ws2/ws2.csv $(WS2)/ws2_data.csv
	cp out/ws2/ws2.json $(WS2)/ws2_data.json

## The closed loop's DFT rows join the data: a campaign on the first models, and a second on
## the models retrained with the first's rows (each ~50 min on 2 cores; resumable; both were
## stopped part-way, see ws2_data.json), then their designs are labelled from their own
## stores (no new DFT but the reference).
ws2-loop-data: $(VENV)/.installed-dft
	$(BIN)/matdesinne loop --space ws2 --out out/ws2-loop --targets 0.5 1.0 1.5 --batch 10 --rounds 4 --calibration none
	$(BIN)/python tools/ok_points.py out/ws2/points-loop.csv out/ws2-loop/dft.csv --made-by "the DFT rows of \`matdesinne loop --space ws2 --out out/ws2-loop\` (make ws2-loop-data)"
	$(BIN)/python tools/join_points.py out/ws2/points-all.csv out/ws2/points-384.csv out/ws2/points-loop.csv
	$(BIN)/python tools/merge_stores.py out/ws2-loop/dft.db out/ws2/ws2.db
	$(BIN)/matdesinne label out/ws2/points-all.csv --space ws2 --out out/ws2/ws2.db
	cp out/ws2/ws2.csv $(WS2)/ws2_data.csv
	$(MAKE) ws2-models
	$(BIN)/matdesinne loop --space ws2 --out out/ws2-loop2 --targets 0.5 1.0 1.5 --batch 10 --rounds 2 --calibration none
	$(BIN)/python tools/ok_points.py out/ws2/points-loop2.csv out/ws2-loop2/dft.csv --made-by "the DFT rows of \`matdesinne loop --space ws2 --out out/ws2-loop2\` (make ws2-loop-data)"
	$(BIN)/python tools/join_points.py out/ws2/points-all2.csv out/ws2/points-384.csv out/ws2/points-loop.csv out/ws2/points-loop2.csv
	$(BIN)/python tools/merge_stores.py out/ws2-loop2/dft.db out/ws2/ws2.db
	$(BIN)/matdesinne label out/ws2/points-all2.csv --space ws2 --out out/ws2/ws2.db
	cp out/ws2/ws2.csv $(WS2)/ws2_data.csv
	cp out/ws2/ws2.json $(WS2)/ws2_data.json

## The shipped WS2 models: one surrogate for the band gap and the strain energy, and the
## cINN conditioned on both (~5 min on 2 cores).
ws2-models: $(VENV)/.installed
	$(BIN)/matdesinne train --data ws2 --y band_gap,strain_energy --model surrogate --out $(WS2)/models --seed 0 --split-seed 0
	$(BIN)/matdesinne train --data ws2 --y band_gap,strain_energy --model cinn --out $(WS2)/models --seed 0 --split-seed 0

## More WS2 rows where designs land: 300 candidates of the 585-row models at 15 targets, and
## the 180 rows of three earlier DFT validations (~85 min on 2 cores; resumable).
ws2-design-data: $(VENV)/.installed-dft
	sh tools/ws2_design_points.sh
	cp out/ws2/ws2.csv $(WS2)/ws2_data.csv
	cp out/ws2/ws2.json $(WS2)/ws2_data.json

## The fourth fold (1,325 rows): a third loop campaign and two DFT checks of the 1,065-row
## models (run those first, see tools/ws2_more_points.sh); no new DFT beyond them.
ws2-more-data: $(VENV)/.installed-dft
	sh tools/ws2_more_points.sh
	cp out/ws2/ws2.csv $(WS2)/ws2_data.csv
	cp out/ws2/ws2.json $(WS2)/ws2_data.json

## The sixth fold (1,625 rows): 300 candidates of the 1,325-row models at 0.4-0.6 eV (run
## that DFT first, see tools/ws2_half_points.sh); no new DFT beyond it.
ws2-half-data: $(VENV)/.installed-dft
	sh tools/ws2_half_points.sh
	cp out/ws2/ws2.csv $(WS2)/ws2_data.csv
	cp out/ws2/ws2.json $(WS2)/ws2_data.json

## How many DFT rows WS2 needs: surrogate error on held-out rows against training rows.
benchmark-rows: $(VENV)/.installed
	$(BIN)/python benchmarks/rows.py --data $(WS2)/ws2_data.csv --space ws2

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
