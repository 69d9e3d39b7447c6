"""File input and output that never loses, damages or half-writes a user's file.

- An output that is a regular file is written to a temporary sibling and renamed into place,
  so it is either the old file or the complete new one.
- A symlink to a regular file: its target is replaced that way and the link is kept.
- A device or FIFO (``/dev/stdout``, ``/dev/null``, a pipe) is written straight into and
  never replaced by a regular file.
- An output that would overwrite one of the command's inputs is refused (:func:`check_distinct`).
- A folder of several outputs is written whole or not at all (:func:`atomic_folder`).
- CSV files keep every float64 exactly; JSON files never contain NaN (not JSON).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from matdesinne.errors import UserInputError

#: Written last into every output folder of :func:`atomic_folder`; a folder holding it was
#: made by matdesinne, so a later run may replace it whole.
FOLDER_MANIFEST = ".matdesinne-output.json"
TEMP_PREFIX = ".matdesinne-"

#: Temporary files and folders being written now, for :func:`remove_temporaries`.
_TEMPORARIES: set[Path] = set()


def remove_temporaries() -> None:
    """Delete the temporary files and folders of writes still in progress (a process about to
    exit without unwinding, e.g. after a Ctrl-C that compiled code held up)."""
    for path in list(_TEMPORARIES):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _stat(path: Path, follow: bool = True) -> os.stat_result | None:
    """``os.stat`` that returns None for a missing path and turns other failures (a name too
    long, a loop of links) into a one-line ``UserInputError``."""
    try:
        return path.stat() if follow else path.lstat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise UserInputError(f"{path}: a part of this path is not a folder") from None
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise UserInputError(f"{path}: the name is longer than the file system allows") from None
        raise UserInputError(f"{path}: cannot be used ({err.strerror or err})") from None


def is_special(path: str | os.PathLike) -> bool:
    """True when ``path`` exists and is neither a regular file nor a folder (a device, a FIFO,
    a socket), following symlinks."""
    st = _stat(Path(path))
    return st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))


def _check_name_length(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        limit = os.pathconf(parent if parent.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(path.name)) > limit:
        raise UserInputError(f"{str(path)[:60]}...: the file name is longer than the file system allows "
                             f"({len(os.fsencode(path.name))} bytes, at most {limit})")


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV with a header row, turning every failure into a one-line ``UserInputError``.

    pandas' default float parser is exact, so a value written by :func:`write_csv` comes
    back bit-identical (a test checks this).
    """
    path = Path(path)
    _check_name_length(path)
    st = _stat(path)
    if st is None:
        raise UserInputError(f"{path}: no such file")
    if stat.S_ISDIR(st.st_mode):
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
    _check_name_length(path)
    st = _stat(path)
    if st is not None and not stat.S_ISDIR(st.st_mode):
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
    """Fail early, before any work is done, if ``path`` cannot be written as a file.

    A string ending in a path separator names a folder, not a file, and is refused.
    """
    if isinstance(path, str) and path.endswith(("/", os.sep)):
        raise UserInputError(f"{path}: ends with '/', so it names a folder; give a file name")
    path = Path(path)
    _check_name_length(path)
    st = _stat(path)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UserInputError(f"{path}: is a directory, expected a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserInputError(f"{path}: cannot be written, folder {parent} does not exist")
    if st is not None and not os.access(path, os.W_OK):
        raise UserInputError(f"{path}: cannot be written (permission denied)")
    if st is None and not os.access(parent, os.W_OK):
        raise UserInputError(f"{path}: cannot be written (permission denied)")
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when both paths name the same file (through links, ``..`` and hard links)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_distinct(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse, in one line, an output that is one of the inputs or another output.

    Call it with every file a command writes (side files derived from ``--out`` included)
    and every file it reads, before any work starts.
    """
    outputs = [Path(p) for p in outputs if p is not None]
    inputs = [Path(p) for p in inputs if p is not None]
    for i, out in enumerate(outputs):
        if is_special(out):
            continue  # /dev/null or a pipe may take several outputs
        for inp in inputs:
            if same_file(out, inp):
                raise UserInputError(f"{out}: is also an input of this command; writing it would destroy that "
                                     "input, so choose another output name")
        for other in outputs[i + 1:]:
            if same_file(out, other):
                raise UserInputError(f"{out}: is named for two different outputs; choose different names")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a path to write ``path``'s new content to; it takes ``path``'s place only if the
    block succeeds (see the module doc for links, devices and FIFOs)."""
    path = check_writable(path)
    if is_special(path):  # a device or FIFO (through any links): never replaced, written straight into
        try:
            yield path
        except OSError as err:
            raise UserInputError(f"{path}: cannot be written ({err.strerror or err})") from None
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path  # keep the link, replace its target
    try:
        # A short temporary name, so that the longest name the file system allows still works.
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise UserInputError(f"{path}: cannot be written ({err.strerror or err})") from None
    os.close(fd)
    tmp = Path(tmp)
    _TEMPORARIES.add(tmp)
    mode = _stat(target).st_mode & 0o777 if target.exists() else 0o666 & ~_umask()
    try:
        yield tmp
        # mkstemp makes 0600, and some writers (safetensors) make their file anew: outputs
        # keep the old file's or the usual permissions, set once the content is written.
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as err:
        raise UserInputError(f"{path}: cannot be written ({err.strerror or err})") from None
    finally:
        tmp.unlink(missing_ok=True)
        _TEMPORARIES.discard(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def temporary_folder(beside: str | os.PathLike) -> Iterator[Path]:
    """An empty temporary folder next to ``beside`` (on its file system, so that moving out of
    it is a rename), removed on leaving whatever happened, even by a hard exit after Ctrl-C."""
    beside = Path(beside)
    parent = ensure_dir(beside.parent if str(beside.parent) else Path("."))
    try:
        tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=parent))
    except OSError as err:
        raise UserInputError(f"{beside}: cannot create a temporary folder beside it ({err.strerror or err})") from None
    os.chmod(tmp, 0o777 & ~_umask())
    _TEMPORARIES.add(tmp)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _TEMPORARIES.discard(tmp)


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it becomes ``path``, whole.

    An interrupted or failed block leaves ``path`` as it was. An existing ``path`` is
    replaced only if it is empty or was written by matdesinne (it holds
    :data:`FOLDER_MANIFEST`); a folder with a user's other files is refused before any work,
    by :func:`check_output_folder`.
    """
    path = check_output_folder(path)
    with temporary_folder(path) as tmp:
        work = tmp / "new"
        work.mkdir()
        yield work
        try:
            (work / FOLDER_MANIFEST).write_text(json.dumps({"files": sorted(p.name for p in work.iterdir())}) + "\n")
            if path.exists():
                os.replace(path, tmp / "previous")
            os.replace(work, path)
        except OSError as err:
            raise UserInputError(f"{path}: cannot be written ({err.strerror or err})") from None


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """True when ``path`` lies inside ``folder`` (through links and ``..``; not the folder itself)."""
    root = os.path.normcase(os.path.realpath(folder))
    return os.path.normcase(os.path.realpath(path)).startswith(root + os.sep)


def check_outside(inputs: Iterable[str | os.PathLike], folder: str | os.PathLike) -> None:
    """Refuse, in one line, an input that lies inside an output folder that will be replaced."""
    for inp in inputs:
        if inp is not None and is_inside(inp, folder):
            raise UserInputError(f"{inp}: lies inside the output folder {folder}, which this command "
                                 "replaces; move it or choose another output folder")


def check_output_folder(path: str | os.PathLike) -> Path:
    """Fail early unless ``path`` may become an :func:`atomic_folder`: new, empty, or an
    earlier matdesinne output."""
    path = check_folder(path)
    if path.is_dir() and any(path.iterdir()) and not (path / FOLDER_MANIFEST).is_file():
        raise UserInputError(f"{path}: holds files that matdesinne did not write; give a new or empty folder")
    return path


def _json_ready(value: Any) -> Any:
    """NaN and infinities become null (they are not JSON); NumPy scalars and arrays become Python."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` without its index; floats in the shortest form that reads back exactly."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_json(data: dict, path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON; NaN and infinities are written as null."""
    text = json.dumps(_json_ready(data), indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object, turning every failure into a one-line ``UserInputError``."""
    path = Path(path)
    _check_name_length(path)
    st = _stat(path)
    if st is None or not stat.S_ISREG(st.st_mode):
        raise UserInputError(f"{path}: no such file" if st is None else f"{path}: is not a regular file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise UserInputError(f"{path}: cannot be read as JSON ({str(err).splitlines()[0] if str(err) else err!r})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object")
    return data
