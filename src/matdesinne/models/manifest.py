"""The manifest of a models folder: which checkpoints form one set, and from which training.

``train`` writes ``models.json`` last, after every checkpoint of the run is in place::

    {"format": "matdesinne-models", "format_version": 1, "run": "<the latest run id>",
     "members": {"surrogate": {"run": "<run id>", "sha256": {"surrogate.json": "...",
                                                              "surrogate.safetensors": "..."}},
                 "cinn": {...}},
     "note": "..."}

A checkpoint whose files differ from their sums here (a ``train`` that was interrupted
while moving files in, or a file copied in by hand) is not part of the set. A folder with
no manifest is a set written before manifests existed, or by ``Estimator.save`` alone.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from matdesinne.data import schema
from matdesinne.errors import UserInputError
from matdesinne.io import read_json, write_json
from matdesinne.models.checkpoint import checkpoint_files, first_line

MANIFEST = "models.json"
MANIFEST_FORMAT = "matdesinne-models"
MANIFEST_VERSION = 1

_HEX = frozenset("0123456789abcdef")


def new_run_id() -> str:
    """A fresh training-run id: UTC time to the second and 32 random bits, e.g.
    ``20261125T143501Z-3f9a1c07``; it sorts by time and two runs never share one."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as err:
        raise UserInputError(f"{path}: cannot be read ({err.strerror or first_line(err)})") from None
    return digest.hexdigest()


def member_entry(directory: str | os.PathLike, kind: str, run: str | None) -> dict:
    """The manifest entry of the ``kind`` checkpoint in ``directory``: its training run and
    the SHA-256 of both its files."""
    return {"run": run, "sha256": {name: file_sha256(Path(directory) / name) for name in checkpoint_files(kind)}}


def sha256_hex(value: Any, field: str) -> str:
    """``value`` checked to be 64 lower-case hex digits (a SHA-256)."""
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise ValueError(f"{field} must be a SHA-256 in hex")
    return value


def read_manifest(directory: str | os.PathLike) -> dict | None:
    """The checked manifest of ``directory``, or None when it has none; a damaged one is a
    one-line ``UserInputError``."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = schema.fields(read_json(path), "the manifest", ("format", "format_version", "run", "members"), ("note",))
        if manifest["format"] != MANIFEST_FORMAT or manifest["format_version"] != MANIFEST_VERSION:
            raise ValueError(f"not a version {MANIFEST_VERSION} {MANIFEST_FORMAT} manifest")
        if manifest["run"] is not None:
            schema.text(manifest["run"], "run", empty=False)
        if not isinstance(manifest["members"], dict):
            raise ValueError("members must be a JSON object")
        for kind, entry in manifest["members"].items():
            entry = schema.fields(entry, f"members.{kind}", ("run", "sha256"))
            if entry["run"] is not None:
                schema.text(entry["run"], f"members.{kind}.run", empty=False)
            sums = schema.fields(entry["sha256"], f"members.{kind}.sha256", checkpoint_files(kind))
            for name, digest in sums.items():
                sha256_hex(digest, f"members.{kind}.sha256.{name}")
    except ValueError as err:
        raise UserInputError(f"{path}: the models manifest is corrupt ({first_line(err)})") from None
    return manifest


def write_manifest(directory: str | os.PathLike, members: Mapping[str, dict], run: str | None,
                   note: str | None = None) -> Path:
    """Write ``models.json`` (replacing any older one whole) listing ``members`` (kind ->
    :func:`member_entry`); ``run`` is the training run that wrote it, None when none did."""
    manifest = {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "run": run,
                "members": dict(sorted(members.items()))}
    if note:
        manifest["note"] = note
    path = Path(directory) / MANIFEST
    write_json(manifest, path)
    return path


def unlisted_or_changed(directory: str | os.PathLike, kinds: Iterable[str], manifest: Mapping) -> str | None:
    """The first of ``kinds`` whose checkpoint files differ from ``manifest`` (as a phrase
    for a message), or None when all match."""
    for kind in kinds:
        entry = manifest["members"].get(kind)
        if entry is None:
            return f"{kind} is not listed in {MANIFEST}"
        for name, digest in entry["sha256"].items():
            if file_sha256(Path(directory) / name) != digest:
                return f"{name} differs from its checksum in {MANIFEST}"
    return None
