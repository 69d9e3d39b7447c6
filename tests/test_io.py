"""File input and output: exact CSVs, never replacing what is not a regular file, never
writing over an input, and folders written whole or not at all."""

import json
import os
import threading

import numpy as np
import pandas as pd
import pytest

from matdesinne.errors import UserInputError
from matdesinne.io import (FOLDER_MANIFEST, atomic_folder, atomic_path, check_distinct, check_outside, check_writable,
                           read_csv, read_json, write_csv, write_json)


def test_csv_round_trips_float64_exactly(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((500, 3)) * 10.0 ** rng.integers(-30, 30, (500, 3))
    values[0, 0] = 3.141776659  # rounded to 3.141777 by a 7-digit format
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    frame["name"] = [f"r{i}" for i in range(len(frame))]
    write_csv(frame, tmp_path / "f.csv")
    back = read_csv(tmp_path / "f.csv")
    assert np.array_equal(back[["a", "b", "c"]].to_numpy(), values)
    assert back["name"].tolist() == frame["name"].tolist()


def test_json_never_holds_nan(tmp_path):
    write_json({"a": float("nan"), "b": [np.float32(1.5), float("inf")], "c": np.int64(3)}, tmp_path / "s.json")
    text = (tmp_path / "s.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None], "c": 3}


def test_symlink_output_replaces_the_target_and_keeps_the_link(tmp_path):
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old\n")
    link.symlink_to(target)
    write_csv(pd.DataFrame({"x": [1.0]}), link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "x\n1.0\n"


def test_outputs_get_the_usual_permissions_even_from_writers_that_make_their_file_anew(tmp_path):
    """A new output is 0666 less the umask, like any file the user makes; a replaced one keeps
    its mode. safetensors writes a file of its own (0600 here) in place of the temporary."""
    import torch
    from safetensors.torch import save_file

    old = os.umask(0o022)
    try:
        new, kept = tmp_path / "new.safetensors", tmp_path / "kept.txt"
        with atomic_path(new) as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp))
        kept.write_text("x")
        kept.chmod(0o640)
        with atomic_path(kept) as tmp:
            tmp.unlink()
            os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))
    finally:
        os.umask(old)
    assert new.stat().st_mode & 0o777 == 0o644
    assert kept.stat().st_mode & 0o777 == 0o640


def test_fifo_output_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_csv(pd.DataFrame({"x": [2.5]}), fifo)
    reader.join(timeout=10)
    assert got == ["x\n2.5\n"]
    assert fifo.exists() and not fifo.is_file()  # still a FIFO


def test_character_device_output_is_written_into_not_replaced():
    before = os.stat("/dev/null")
    with atomic_path("/dev/null") as tmp:
        assert str(tmp) == "/dev/null"
        tmp.write_text("discarded\n")
    after = os.stat("/dev/null")
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


def test_longest_allowed_name_works_and_a_longer_one_is_one_line(tmp_path):
    longest = tmp_path / ("c" * 251 + ".csv")  # 255 bytes: the usual limit
    write_csv(pd.DataFrame({"x": [1.0]}), longest)
    assert read_csv(longest)["x"].tolist() == [1.0]
    too_long = tmp_path / ("c" * 300 + ".csv")
    with pytest.raises(UserInputError, match="longer than the file system allows"):
        check_writable(too_long)
    with pytest.raises(UserInputError, match="longer than the file system allows"):
        read_csv(too_long)
    with pytest.raises(UserInputError, match="longer than the file system allows"):
        read_json(too_long)


def test_trailing_slash_names_a_folder(tmp_path):
    with pytest.raises(UserInputError, match="names a folder"):
        check_writable(f"{tmp_path}/newdir/")


def test_an_output_that_is_an_input_is_refused(tmp_path):
    data = tmp_path / "cands.csv"
    data.write_text("x\n1\n")
    os.link(data, tmp_path / "hard.csv")
    for spelling in (data, tmp_path / "." / "cands.csv", tmp_path / "hard.csv"):
        with pytest.raises(UserInputError, match="also an input"):
            check_distinct([tmp_path / "other.csv", spelling], [data])
    with pytest.raises(UserInputError, match="two different outputs"):
        check_distinct([tmp_path / "a.csv", tmp_path / "a.csv"], [])
    check_distinct([tmp_path / "a.csv", tmp_path / "b.csv"], [data])
    check_distinct(["/dev/null", "/dev/null"], [])  # a sink may take several outputs


def test_atomic_folder_replaces_an_earlier_output_whole(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out) as work:
        (work / "a.txt").write_text("1")
        (work / "stale.txt").write_text("1")
    assert {p.name for p in out.iterdir()} == {"a.txt", "stale.txt", FOLDER_MANIFEST}
    with atomic_folder(out) as work:
        (work / "a.txt").write_text("2")
    assert {p.name for p in out.iterdir()} == {"a.txt", FOLDER_MANIFEST}
    assert (out / "a.txt").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left


def test_atomic_folder_keeps_the_old_folder_when_interrupted(tmp_path):
    out = tmp_path / "out"
    with atomic_folder(out) as work:
        (work / "a.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(out) as work:
            (work / "a.txt").write_text("half")
            raise KeyboardInterrupt
    assert (out / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_folder_refuses_a_folder_of_someone_elses_files(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(UserInputError, match="did not write"):
        with atomic_folder(tmp_path):
            pass
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_an_input_inside_a_replaced_output_folder_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="inside the output folder"):
        check_outside([tmp_path / "out" / "index.csv"], tmp_path / "out")
    check_outside([tmp_path / "outside.csv"], tmp_path / "out")
