"""A resumable store of DFT results: an ASE database (SQLite), one row per finished structure.

Every result is committed the moment it arrives, so a run killed at any point loses no
finished result, and a re-run skips what is stored. The database's metadata pins the
design space and DFT settings it was made with; opening it for another space or other
settings is refused unless the caller asks to discard it (``force``). The rows also hold
the structure itself, so ``ase db results.db`` browses them.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Mapping

from ase import Atoms

from matdesinne.data.splits import design_key  # noqa: F401 -- the store's identity of a design
from matdesinne.errors import UserInputError
from matdesinne.validation.result import StoredResult

STORE_FORMAT = "matdesinne-dft-results"
STORE_VERSION = 1
#: The fields of :meth:`StoredResult.to_dict` kept as ASE key-value pairs (``ase db`` shows and
#: queries them); the others go in each row's data.
KEY_VALUE = ("candidate", "key", "status", "seconds", "dft_gap_raw", "error")


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
    if stored.get("relax_ions") != wanted.get("relax_ions"):
        return "relaxed ions, not fixed ones" if stored.get("relax_ions") else "fixed ions, not relaxed ones"
    return f"{settings(stored)}, not {settings(wanted)}"


class ResultStore:
    """Finished results of one design space at one set of DFT settings.

    ``identity`` is ``{"design_space": DesignSpace.to_dict(), "settings": DFTSettings.to_dict()}``,
    with ``"relax_ions": True`` for results of relaxed ions.
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
                        "use another out=, or force=True to discard them and start afresh"
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
        return {k: meta[k] for k in ("design_space", "settings", "relax_ions") if k in meta}

    def records(self) -> list[StoredResult]:
        """Every stored result, oldest first."""
        return [StoredResult.from_dict({**row.data, **row.key_value_pairs}, row.id) for row in self._db.select(sort="id")]

    def counts(self) -> dict[str, int]:
        """How many results the store holds in all (``n``), finished (``ok``) and ``failed``;
        a run's summary covers only its own designs, and reports these beside them."""
        statuses = [row.get("status") for row in self._db.select()]
        ok = sum(s == "ok" for s in statuses)
        return {"n": len(statuses), "ok": ok, "failed": len(statuses) - ok}

    def add(self, stored: StoredResult, atoms: Atoms | None) -> int:
        """Commit one finished result, with its structure if it was built; returns its row id."""
        data = stored.to_dict()
        # ASE is strict about key-value pairs, so only values of our own making go there (and no
        # None); anything a user names, such as the settings, goes in data.
        kv = {k: v for k in KEY_VALUE if (v := data.pop(k)) not in (None, "")}
        data["settings"] = self.identity["settings"]
        try:
            return self._db.write(atoms if atoms is not None else Atoms(), key_value_pairs=kv, data=data)
        except (OSError, sqlite3.Error) as err:
            raise UserInputError(f"{self.path}: cannot be written ({err})") from None

    def delete(self, row_ids: Iterable[int]) -> None:
        ids = list(row_ids)
        if ids:
            self._db.delete(ids)

