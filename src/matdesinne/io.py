"""File input and output that never leaves a half-written file behind."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from matdesinne.errors import UserInputError


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV with a header row, turning every failure into a one-line ``UserInputError``."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path}: no such file")
    if path.is_dir():
        raise UserInputError(f"{path}: is a directory, expected a CSV file")
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise UserInputError(f"{path}: cannot be read as CSV ({str(err).splitlines()[0]})") from None
    if frame.empty:
        raise UserInputError(f"{path}: holds no rows")
    return frame


def check_folder(path: str | os.PathLike) -> Path:
    """Fail early if ``path`` exists but is not a folder (it would be an output folder)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserInputError(f"{path}: exists and is not a folder")
    return path


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` (and its parents) or fail with a one-line error."""
    path = check_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(f"{path}: cannot create the output folder ({err.strerror})") from None
    return path


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any work is done, if ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{path}: is a directory, expected a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserInputError(f"{path}: cannot be written, folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserInputError(f"{path}: cannot be written (permission denied)")
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UserInputError(f"{path}: cannot be written ({err.strerror or err})") from None
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise UserInputError(f"{path}: cannot be written ({err.strerror or err})") from None
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.7g")  # float32 maths: 7 digits are real


def write_json(data: dict, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object, turning every failure into a one-line ``UserInputError``."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserInputError(f"{path}: cannot be read as JSON ({err})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object")
    return data
