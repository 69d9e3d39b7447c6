"""Checkpoint files: writing them, and reading them back strictly.

A checkpoint is two files per model in a folder: ``<kind>.safetensors`` (weights; loading
runs no code) and ``<kind>.json`` (settings, design space, normalisation, training record).
A file edited by hand or damaged is refused in one line before any network is built: the
JSON's every field is checked, and the weights' sizes are read from the safetensors header
(no tensor is loaded) so that a claim of a million ensemble members is refused before the
memory for them is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from matdesinne import __version__
from matdesinne.data import schema
from matdesinne.errors import UserInputError
from matdesinne.io import atomic_path, read_json, write_json

CHECKPOINT_FORMAT = "matdesinne-checkpoint"
CHECKPOINT_VERSION = 1

#: The metadata holds settings and a training record, a few kB; a larger file is not one.
MAX_META_BYTES = 1 << 20

#: Every key of a checkpoint's JSON, in the order written.
META_KEYS = ("format", "format_version", "kind", "matdesinne_version", "params", "design_space",
             "x_scaler", "y_scaler", "y_range", "extra", "training")

#: Keys of a training record whose type later code relies on (see models/train.py).
RECORD_TEXT = ("run", "data", "space", "surrogate_sha256")


def checkpoint_files(kind: str) -> tuple[str, str]:
    """File names of a ``kind`` checkpoint: (metadata JSON, weights)."""
    return f"{kind}.json", f"{kind}.safetensors"


def checkpoint_paths(directory: str | os.PathLike, kind: str) -> tuple[Path, Path]:
    """Paths of the ``kind`` checkpoint in ``directory``; a missing one (or one that is not a
    regular file) is a one-line ``UserInputError``."""
    paths = tuple(Path(directory) / name for name in checkpoint_files(kind))
    for path in paths:
        if not path.is_file():
            raise UserInputError(f"{path}: no such checkpoint file")
    return paths


def first_line(err: BaseException) -> str:
    """An exception's message cut to its first line, or its type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def write_checkpoint(directory: str | os.PathLike, kind: str, body: Mapping[str, Any],
                     state: Mapping[str, torch.Tensor]) -> Path:
    """Write ``state`` (a state dict) as ``<kind>.safetensors`` and ``body`` (the keys of
    :data:`META_KEYS` after ``matdesinne_version``) as ``<kind>.json`` into ``directory``
    (created if missing). Either file is replaced whole or not at all; a full disk is a
    one-line ``UserInputError``."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(f"{directory}: cannot create the models folder ({err.strerror or err})") from None
    meta_path, weights_path = (directory / name for name in checkpoint_files(kind))
    meta = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "kind": kind,
            "matdesinne_version": __version__, **body}
    write_tensors(weights_path, state)
    write_json(meta, meta_path)
    return directory


def write_tensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` (and string ``metadata`` in the header) as a safetensors file that
    replaces ``path`` whole or not at all; a full disk is a one-line ``UserInputError``."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=dict(metadata) if metadata is not None else None)
    except SafetensorError as err:  # safetensors reports a full disk as its own error, not OSError
        raise UserInputError(f"{path}: cannot be written ({first_line(err)})") from None


def read_checkpoint(meta_path: Path, weights_path: Path, kind: str) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """The checkpoint's metadata, with its envelope checked (size, keys, format, kind,
    training record), and its weights' shapes from the safetensors header.

    Raises ``ValueError`` naming the first problem; the settings, design space and
    normalisation are left to the estimator (they depend on its kind).
    """
    if meta_path.stat().st_size > MAX_META_BYTES:
        raise ValueError(f"{meta_path.name} is larger than {MAX_META_BYTES >> 10} kB")
    meta = schema.fields(read_json(meta_path), "the metadata", META_KEYS)
    if meta["format"] != CHECKPOINT_FORMAT or meta["kind"] != kind:
        raise ValueError(f"not a matdesinne {kind} checkpoint")
    if meta["format_version"] != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint format version {meta['format_version']!r} is not {CHECKPOINT_VERSION}")
    schema.text(meta["matdesinne_version"], "matdesinne_version")
    check_record(meta["training"])
    return meta, weight_shapes(weights_path)


def check_record(record: Any) -> dict:
    """A training record: a JSON object whose :data:`RECORD_TEXT` entries, where present, are strings."""
    if not isinstance(record, dict):
        raise ValueError(f"training must be a JSON object, got {type(record).__name__}")
    for key in RECORD_TEXT:
        if key in record:
            schema.text(record[key], f"training.{key}", empty=False)
    return record


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, from its header alone.

    safetensors checks that the header's offsets cover the file exactly, so every size
    here is backed by bytes on disk. All matdesinne weights are float32.
    """
    shapes = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            tensor = f.get_slice(name)
            if tensor.get_dtype() != "F32":
                raise ValueError(f"tensor {name!r} is {tensor.get_dtype()}, not float32")
            shapes[name] = tuple(tensor.get_shape())
    return shapes


def size_bound(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The largest size setting that the weights can back: every size setting (members,
    width, depth, blocks, ...) is a tensor dimension or a count of tensors."""
    return max([len(shapes), *(d for shape in shapes.values() for d in shape)])


def check_shapes(module: torch.nn.Module, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse weights whose tensors differ in name or shape from ``module``'s (which may be
    built on the ``meta`` device, so that nothing is allocated)."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    for name in expected.keys() - shapes.keys():
        raise ValueError(f"the weights lack tensor {name!r}")
    for name in shapes.keys() - expected.keys():
        raise ValueError(f"the weights hold an unexpected tensor {name!r}")
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise ValueError(f"tensor {name!r} has shape {list(shapes[name])}, but the settings make {list(shape)}")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load the tensors of a safetensors file, refusing NaN and infinite weights (they would
    give blank predictions and samples)."""
    state = load_file(str(path))
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"tensor {name!r} holds NaN or infinite weights")
    return state
