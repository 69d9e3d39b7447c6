#!/bin/sh
# Design-distribution rows for WS2: 20 random candidates of the shipped models at each of
# 15 targets 0.3..1.7 eV, plus the DFT validation rows of earlier models (ws2-dft, -dft2, -dft3),
# labelled into out/ws2/ws2.db beside the earlier rows (resumable: run it again).
# The designs come from the WS2 models of commit 81cdfdd, which this reproduces with
#   git show 81cdfdd:src/matdesinne/materials/ws2/models/<file> for each file, into WS2_MODELS.
set -e
cd "$(dirname "$0")/.."
M=.venv/bin/matdesinne
MODELS=${WS2_MODELS:-src/matdesinne/materials/ws2/models}
mkdir -p out/ws2-design
for t in 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0 1.1 1.2 1.3 1.4 1.5 1.6 1.7; do
  [ -f out/ws2-design/cand-$t.csv ] || $M design --space ws2 --models "$MODELS" --target $t --seed 11 --out out/ws2-design/cand-$t.csv > /dev/null
done
.venv/bin/python - <<'PY'
import json, glob, datetime
import numpy as np, pandas as pd
cols = ["a", "b", "c", "alpha", "beta", "gamma", "efield"]
rng = np.random.default_rng(11)
frames = []
for f in sorted(glob.glob("out/ws2-design/cand-*.csv")):
    d = pd.read_csv(f)
    frames.append(d.iloc[rng.choice(len(d), size=min(20, len(d)), replace=False)][cols])
pd.concat(frames).to_csv("out/ws2/points-design.csv", index=False, float_format="%.17g")
json.dump({"made_by": "20 random candidates (numpy seed 11) of `matdesinne design --space ws2 --target T --seed 11` "
           "with the models shipped at 81cdfdd (585 rows), T = 0.3, 0.4, ..., 1.7 eV",
           "date": str(datetime.date.today())}, open("out/ws2/points-design.json", "w"), indent=1)
PY
.venv/bin/python tools/ok_points.py out/ws2/points-validation.csv out/ws2-dft/results.csv out/ws2-dft2/results.csv \
  out/ws2-dft3/results.csv --made-by "the DFT validations of earlier WS2 models (benchmarks/dft.py --space ws2, \
20 random candidates at 0.5, 1.0, 1.5 eV each): out/ws2-dft (384 rows), out/ws2-dft2 (516), out/ws2-dft3 (585); \
their results stores are folded in with tools/merge_stores.py"
.venv/bin/python tools/join_points.py out/ws2/points-all3.csv out/ws2/points-all2.csv out/ws2/points-validation.csv out/ws2/points-design.csv
for d in ws2-dft ws2-dft2 ws2-dft3; do .venv/bin/python tools/merge_stores.py out/$d/results.db out/ws2/ws2.db; done
cp out/ws2/ws2.db out/ws2/ws2-before-design.db
nice -n 5 $M label out/ws2/points-all3.csv --space ws2 --out out/ws2/ws2.db --workers 2
