"""Join point files from ``matdesinne sample`` into one, keeping each one's record of how it
was drawn: ``python tools/join_points.py OUT.csv A.csv B.csv ...`` writes OUT.csv (rows of
A, then B, ...) and OUT.json (``{"parts": [A's record, B's record, ...]}``)."""

import json
import sys
from pathlib import Path

import pandas as pd

out, parts = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
frames = [pd.read_csv(p) for p in parts]
if any(list(f.columns) != list(frames[0].columns) for f in frames):
    raise SystemExit("join_points.py: the point files have different columns")
pd.concat(frames, ignore_index=True).to_csv(out, index=False, float_format="%.17g")
records = [json.loads(p.with_suffix(".json").read_text()) if p.with_suffix(".json").is_file() else None for p in parts]
out.with_suffix(".json").write_text(json.dumps({"parts": [{"file": p.name, "rows": len(f), "made_by": r}
                                                          for p, f, r in zip(parts, frames, records)]}, indent=1) + "\n")
print(f"wrote {out} ({sum(map(len, frames))} rows)")
