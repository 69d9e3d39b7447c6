"""Relax the 1H-WS2 reference cell (in-plane lattice and ions) with GPAW PBE at the standard
label settings (300 eV plane waves, 9x9x1 Γ-centred k-mesh, 0.01 eV Fermi-Dirac), the source
of ``materials/ws2/ws2.cif``. Run: ``.venv/bin/python tools/relax_ws2.py OUT.cif``.

The slab keeps MoS2's convention: c = 12.30 Å (vacuum along c), so that strains of c mean
the same thing for both materials. The relaxation is fully periodic (a neutral, symmetric
layer at zero field needs no dipole correction) so that GPAW's plane-wave stress applies.
"""

import json
import sys
import time
from pathlib import Path

from ase.build import mx2
from ase.filters import FrechetCellFilter
from ase.io import write
from ase.optimize import BFGS
from gpaw import GPAW, PW, FermiDirac
from threadpoolctl import threadpool_limits

C = 12.30  # Å, as MoS2's published cell
out = Path(sys.argv[1])
atoms = mx2("WS2", kind="2H", a=3.18, thickness=3.14, vacuum=(C - 3.14) / 2)
atoms.calc = GPAW(mode=PW(300), xc="PBE", kpts={"size": (9, 9, 1), "gamma": True},
                  occupations=FermiDirac(0.01), txt=str(out.with_suffix(".txt")))
start = time.perf_counter()
with threadpool_limits(1):
    # In-plane cell (xx, yy, xy) and ions; c stays, the layer keeps its hexagonal symmetry.
    BFGS(FrechetCellFilter(atoms, mask=[1, 1, 0, 0, 0, 1]), logfile=str(out.with_suffix(".log"))).run(fmax=0.005)
    energy = atoms.get_potential_energy()
cell = atoms.cell.cellpar()
z = atoms.positions[:, 2]
write(out, atoms, format="cif")
record = {"a": cell[0], "b": cell[1], "c": cell[2], "gamma": cell[5], "thickness_SS": float(z.max() - z.min()),
          "energy_per_atom": energy / len(atoms), "settings": {"cutoff": 300, "kpoints": 9, "smearing": 0.01, "xc": "PBE"},
          "fmax": 0.005, "seconds": time.perf_counter() - start, "date": time.strftime("%Y-%m-%d")}
out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
print(json.dumps(record))
