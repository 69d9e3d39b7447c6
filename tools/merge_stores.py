"""Copy the finished DFT results of one results store into another of the same design
space and settings, so that ``label`` or ``validate`` on the second reuses them instead of
computing them again: ``python tools/merge_stores.py FROM.db INTO.db``.

Used to fold a closed-loop campaign's DFT rows (``<campaign>/dft.db``) into a material's
labelling store. A design already in INTO.db is kept as it is; stores of different spaces
or settings are refused.
"""

import sys
from pathlib import Path

from ase.db import connect

from matdesinne.validation.store import ResultStore

source, target = Path(sys.argv[1]), Path(sys.argv[2])
if not source.is_file() or not target.is_file():
    raise SystemExit("merge_stores.py: give two existing results databases, FROM.db INTO.db")
meta = connect(source, type="db", use_lock_file=False).metadata
if meta.get("format") != "matdesinne-dft-results":
    raise SystemExit(f"merge_stores.py: {source} is not a matdesinne DFT results database")
identity = {k: meta[k] for k in ("design_space", "settings", "relax_ions") if k in meta}
into = ResultStore(target, identity)  # refuses a store of another space or other settings
have = {r.key for r in into.records()}
added = 0
for row in connect(source, type="db", use_lock_file=False).select(sort="id"):
    if row.key_value_pairs.get("key") in have:
        continue
    into._db.write(row.toatoms(), key_value_pairs=row.key_value_pairs, data=row.data)
    have.add(row.key_value_pairs.get("key"))
    added += 1
print(f"added {added} results from {source} to {target}")
