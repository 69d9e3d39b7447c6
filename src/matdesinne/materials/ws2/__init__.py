"""1H-WS2, built by matdesinne from its structure alone: the reference cell relaxed with GPAW
PBE (``reference-relaxation.json``, ``tools/relax_ws2.py``), the MoS2 strain box and field
(``ws2.toml``), and data that ``matdesinne sample`` + ``label`` made (see ``README.md``)."""

from dataclasses import replace
from pathlib import Path

from matdesinne.materials.spacefile import read_space_file

HERE = Path(__file__).parent
_found = read_space_file(HERE / "ws2.toml")
_data = HERE / "ws2_data.csv"
MATERIAL = replace(_found, data=_data if _data.is_file() else None,
                   models=HERE / "models" if (HERE / "models").is_dir() else None)
