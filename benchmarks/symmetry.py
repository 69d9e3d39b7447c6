"""Do a material's symmetry images really share its properties? A DFT check.

    python benchmarks/symmetry.py [--space ws2] [--rows 4] [--seed 7] [--workers 2] [--out out/symmetry]

Picks ``--rows`` labelled rows of the material's built-in data (seeded, among gapped rows
with a field, α and β away from 90° and a ≠ b, so no map is trivially the identity),
computes the band gap and strain energy of each of their images under the maps
``matdesinne.materials.symmetry`` finds, with ``label`` at the standard settings
(resumable), and prints the largest difference from the rows' own labels (also written to
``--out``/symmetry.json). A map that were wrong would differ by the size of the property's
variation, ~0.1-1 eV.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from matdesinne.io import read_csv, write_json
from matdesinne.materials import material
from matdesinne.validation.labelling import label


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="ws2")
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--settings", default="standard", help="the settings the built-in data was labelled with")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("out/symmetry"))
    args = ap.parse_args(argv)

    found = material(args.space)
    maps = found.symmetries()
    names = list(found.space().names)
    data = read_csv(found.data)
    properties = [p.name for p in found.properties]
    eligible = data[(data[properties[0]] > 0.3) & (data["efield"].abs() > 0.3) & ((data["alpha"] - 90).abs() > 5)
                    & ((data["beta"] - 90).abs() > 5) & ((data["a"] - data["b"]).abs() > 0.1)]
    rows = eligible.iloc[np.sort(np.random.default_rng(args.seed).choice(len(eligible), args.rows, replace=False))]
    x = rows[names].to_numpy()
    points = pd.DataFrame(np.concatenate([m.apply(x, names) for m in maps]), columns=names)
    print(f"{found.name}: {len(maps)} maps ({', '.join(m.name for m in maps)}); {len(points)} images of {len(rows)} rows")
    args.out.mkdir(parents=True, exist_ok=True)
    labelled = label(points, found, args.out / "images.db", settings=args.settings, workers=args.workers,
                     echo=lambda line: print(line, flush=True))
    labelled = labelled.reset_index(drop=True)
    if len(labelled) != len(points) or not np.allclose(labelled[names].to_numpy(), points.to_numpy()):
        raise SystemExit("some images failed to label; see " + str(args.out / "images_results.csv"))
    own = pd.concat([rows[properties]] * len(maps), ignore_index=True)
    report = {"space": found.name, "settings": args.settings, "maps": [m.name for m in maps], "rows": len(rows),
              "images": len(points), "properties": {}}
    for name in properties:
        diff = np.abs(labelled[name].to_numpy() - own[name].to_numpy())
        report["properties"][name] = {"max_difference": float(diff.max()), "rows_spread": float(own[name].std())}
        print(f"{name}: max |image - row| = {diff.max():.2e} over {len(diff)} images "
              f"(the rows' own spread: {own[name].std():.3f})")
    write_json(report, args.out / "symmetry.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
