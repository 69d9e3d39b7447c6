#!/bin/sh
# The sixth WS2 fold: 300 DFT rows where designs for 0.4-0.6 eV land. They are the candidates
# of the 1,325-row models (std cap 0.03 eV), computed by
#   python benchmarks/dft.py --space ws2 --targets 0.5 0.45 0.55 0.4 0.6 --per-target 60 \
#     --calibration none --seed 4 --max-std 0.03 --out out/ws2-dft9-rows
# and labelled into out/ws2/ws2.db from that run's own store (no new DFT). Resumable: run it again.
set -e
cd "$(dirname "$0")/.."
for need in out/ws2-dft9-rows/results.csv out/ws2-dft9-rows/results.db out/ws2/points-all4.csv out/ws2/ws2.db; do
  if [ ! -f "$need" ]; then
    echo "ws2_half_points.sh: $need is missing: run the earlier WS2 folds (make ws2-data ... ws2-more-data) and the DFT command above first" >&2
    exit 2
  fi
done
.venv/bin/python tools/ok_points.py out/ws2/points-half.csv out/ws2-dft9-rows/results.csv --made-by \
  "the candidates of the 1,325-row WS2 models at 0.5, 0.45, 0.55, 0.4 and 0.6 eV, 60 each (std cap 0.03 eV): \
\`python benchmarks/dft.py --space ws2 --targets 0.5 0.45 0.55 0.4 0.6 --per-target 60 --calibration none \
--seed 4 --max-std 0.03 --out out/ws2-dft9-rows\`; its store out/ws2-dft9-rows/results.db is folded into ws2.db with \
tools/merge_stores.py"
.venv/bin/python tools/join_points.py out/ws2/points-all6.csv out/ws2/points-all4.csv out/ws2/points-half.csv
.venv/bin/python tools/merge_stores.py out/ws2-dft9-rows/results.db out/ws2/ws2.db
nice -n 5 .venv/bin/matdesinne label out/ws2/points-all6.csv --space ws2 --out out/ws2/ws2.db --workers 2
