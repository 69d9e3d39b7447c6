"""A resumable store of DFT results: an ASE database (SQLite), one row per finished structure.

Every result is committed the moment it arrives, so a run killed at any point loses no
finished result, and a re-run skips what is stored. The database's metadata pins the
design space and DFT settings it was made with; opening it for another space or other
settings is refused unless the caller asks to discard it (``force``). The rows also hold
the structure itself, so ``ase db results.db`` browses them.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Mapping

from ase import Atoms

from matdesinne.errors import UserInputError

STORE_FORMAT = "matdesinne-dft-results"
STORE_VERSION = 1


def design_key(values: Iterable[float]) -> str:
    """A stable identity for one design point: a hash of its values to 10 significant digits."""
    text = ",".join(f"{float(v):.10g}" for v in values)
    # The "d" keeps an all-digit digest a string: ASE refuses strings that read as numbers.
    return "d" + hashlib.sha1(text.encode()).hexdigest()[:16]


def _mismatch(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    """What differs between a store's identity and the one asked for, in words."""
    def space(identity):
        d = identity.get("design_space", {})
        return f"design space {d.get('name')!r} ({', '.join(p['name'] for p in d.get('parameters', []))})"

    def settings(identity):
        s = identity.get("settings", {})
        return f"DFT settings {s.get('name')!r} ({', '.join(f'{k} {v}' for k, v in s.items() if k != 'name')})"

    if stored.get("design_space") != wanted.get("design_space"):
        return f"{space(stored)}, not {space(wanted)}"
    return f"{settings(stored)}, not {settings(wanted)}"


class ResultStore:
    """Finished results of one design space at one set of DFT settings.

    ``identity`` is ``{"design_space": DesignSpace.to_dict(), "settings": DFTSettings.to_dict()}``.
    """

    def __init__(self, path: str | os.PathLike, identity: Mapping[str, Any], force: bool = False):
        from ase.db import connect

        self.path = Path(path)
        self.identity = dict(identity)
        if self.path.is_dir():
            raise UserInputError(f"{self.path}: is a directory, expected a results database file")
        if self.path.exists() and self.path.stat().st_size > 0:
            stored = self._read_metadata()
            if stored != self.identity:
                if not force:
                    raise UserInputError(
                        f"{self.path}: holds results for {_mismatch(stored, self.identity)}; "
                        "use another --out, or --force to discard them and start afresh"
                    )
                self.path.unlink()
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise UserInputError(f"{self.path}: cannot be written, folder {parent} does not exist")
        try:
            # No ASE lock file: a run killed mid-write would leave it behind and hang the next run;
            # SQLite's own locking keeps each write atomic.
            self._db = connect(self.path, type="db", use_lock_file=False)
            if not self._db.metadata:
                self._db.metadata = {"format": STORE_FORMAT, "format_version": STORE_VERSION, **self.identity}
        except (OSError, sqlite3.Error) as err:
            raise UserInputError(f"{self.path}: cannot be written ({err})") from None

    def _read_metadata(self) -> dict:
        from ase.db import connect

        try:
            meta = dict(connect(self.path, type="db", use_lock_file=False).metadata)
        except (sqlite3.Error, ValueError, KeyError, OSError) as err:
            raise UserInputError(f"{self.path}: not a results database ({err})") from None
        if meta.get("format") != STORE_FORMAT:
            raise UserInputError(f"{self.path}: not a matdesinne DFT results database")
        if meta.get("format_version") != STORE_VERSION:
            raise UserInputError(f"{self.path}: results database version {meta.get('format_version')} "
                                 f"is not {STORE_VERSION}")
        return {k: meta[k] for k in ("design_space", "settings") if k in meta}

    def records(self) -> list[dict]:
        """Every stored result as a flat dict (see :meth:`add`), oldest first."""
        out = []
        for row in self._db.select(sort="id"):
            kv, data = row.key_value_pairs, row.data
            raw = kv.get("dft_gap_raw")
            out.append({
                "candidate": kv["candidate"], "key": kv["key"], "inputs": data["inputs"],
                "target": _nan(data.get("target")), "pred": _nan(data.get("pred")),
                "status": kv["status"], "dft_gap_raw": math.nan if raw is None else raw,
                "error": kv.get("error", ""), "seconds": kv.get("seconds", math.nan),
                "host": data.get("host", ""), "versions": data.get("versions", {}), "row_id": row.id,
            })
        return out

    def add(self, record: Mapping[str, Any], atoms: Atoms | None) -> int:
        """Commit one finished result; returns its database row id.

        ``record`` holds ``candidate`` (row of the candidates file), ``key`` (:func:`design_key`),
        ``inputs`` (parameter -> value), ``target``, ``pred``, ``status``, ``dft_gap_raw`` (eV),
        ``error``, ``seconds``, ``host`` and ``versions``.
        """
        # Only values of our own making go in key-value pairs (ASE is strict about them);
        # anything a user names, such as the settings, goes in data.
        kv = {"candidate": int(record["candidate"]), "key": record["key"], "status": record["status"],
              "seconds": float(record["seconds"])}
        if math.isfinite(record["dft_gap_raw"]):
            kv["dft_gap_raw"] = float(record["dft_gap_raw"])
        if record["error"]:
            kv["error"] = record["error"]
        data = {"inputs": dict(record["inputs"]), "target": _none(record.get("target")),
                "pred": _none(record.get("pred")), "settings": self.identity["settings"],
                "host": record.get("host", ""), "versions": record.get("versions", {})}
        try:
            return self._db.write(atoms if atoms is not None else Atoms(), key_value_pairs=kv, data=data)
        except (OSError, sqlite3.Error) as err:
            raise UserInputError(f"{self.path}: cannot be written ({err})") from None

    def delete(self, row_ids: Iterable[int]) -> None:
        ids = list(row_ids)
        if ids:
            self._db.delete(ids)


def _none(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)


def _nan(value):
    return math.nan if value is None else float(value)
