#!/bin/sh
# The fourth WS2 fold: the DFT rows of a third loop campaign on the 1,065-row models
# (out/ws2-loop3), and of the DFT checks of those models (out/ws2-dft4: benchmarks/dft.py,
# 20 random candidates at 0.5, 1.0, 1.5 eV; out/goals-ws2c: benchmarks/goals.py, the 20
# best candidates for band_gap=1.0 at the least strain energy), labelled into out/ws2/ws2.db
# beside the earlier rows from their own stores (no new DFT). Resumable: run it again.
set -e
cd "$(dirname "$0")/.."
M=.venv/bin/matdesinne
.venv/bin/python tools/ok_points.py out/ws2/points-more.csv out/ws2-loop3/dft.csv out/ws2-dft4/results.csv \
  out/goals-ws2c/dft.csv --made-by "DFT rows of the 1,065-row WS2 models: \`matdesinne loop --space ws2 \
--out out/ws2-loop3 --targets 0.5 1.0 1.5 --batch 10 --rounds 6 --calibration none\`, \`benchmarks/dft.py \
--space ws2 --targets 0.5 1.0 1.5 --per-target 20 --calibration none --out out/ws2-dft4\` and \
\`benchmarks/goals.py --space ws2 --minimize strain_energy --top 20 --calibration none --out out/goals-ws2c\`"
.venv/bin/python tools/join_points.py out/ws2/points-all4.csv out/ws2/points-all3.csv out/ws2/points-more.csv
for s in out/ws2-loop3/dft.db out/ws2-dft4/results.db out/goals-ws2c/dft.db; do .venv/bin/python tools/merge_stores.py $s out/ws2/ws2.db; done
nice -n 5 $M label out/ws2/points-all4.csv --space ws2 --out out/ws2/ws2.db --workers 2
