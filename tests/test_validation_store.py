"""The results store: committed rows survive reopening; a store of other settings is refused."""

import json
import math
import sqlite3
from dataclasses import replace

import pytest
from ase import Atoms

from matdesinne.materials import load_dataset
from matdesinne.errors import UserInputError
from matdesinne.validation.dft import PRESETS
from matdesinne.validation.result import DFTResult, Status, StoredResult
from matdesinne.validation.store import ResultStore, design_key


def identity(settings="standard"):
    return {"design_space": load_dataset("mos2").space.to_dict(), "settings": PRESETS[settings].to_dict()}


def record(i, status=Status.OK, raw=1.25, **candidate):
    result = DFTResult(status, raw, "" if status is Status.OK else "SCF not converged", 3.5, "h", {"gpaw": "x"})
    return StoredResult(**{"candidate": i, "key": design_key([i, 2.0]), "inputs": {"a": 3.1 + i}, "target": 1.0,
                           "pred": 0.9, "result": result, **candidate})


def test_design_key_is_stable_to_float_noise():
    assert design_key([3.16, 90.0]) == design_key([3.16 + 1e-13, 90.0])
    assert design_key([3.16, 90.0]) != design_key([3.17, 90.0])


def test_rows_survive_reopening(tmp_path):
    path = tmp_path / "r.db"
    store = ResultStore(path, identity())
    store.add(record(0), Atoms("MoS2", positions=[[0, 0, 0], [1, 1, 1], [2, 2, 2]]))
    store.add(record(1, Status.FAILED, math.nan, target=math.nan), None)
    back = ResultStore(path, identity()).records()
    # Every field comes back as it went in (NaN for the missing numbers), with its row id.
    assert back[0] == replace(record(0), row_id=back[0].row_id)
    assert back[1].result.status is Status.FAILED and math.isnan(back[1].result.gap_raw)
    assert math.isnan(back[1].target) and back[1].pred == 0.9 and "SCF" in back[1].result.error
    # The structures live in the database, readable by ASE's own tools, which also show the status.
    from ase.db import connect

    row = connect(path).get(id=back[0].row_id)
    assert row.toatoms().get_chemical_formula() == "MoS2" and row.status == "ok" and row.dft_gap_raw == 1.25


def test_a_result_as_plain_data_round_trips_without_nan():
    failed = record(3, Status.FAILED, math.nan, pred=math.nan)
    plain = failed.to_dict()
    assert plain["dft_gap_raw"] is None and plain["pred"] is None and plain["status"] == "failed"
    json.dumps(plain, allow_nan=False)  # plain data: no NaN, no NumPy types
    back = StoredResult.from_dict(plain)
    assert math.isnan(back.result.gap_raw) and math.isnan(back.pred)
    assert replace(back, pred=0.0, result=replace(back.result, gap_raw=0.0)) == \
        replace(failed, pred=0.0, result=replace(failed.result, gap_raw=0.0))


def test_other_settings_are_refused_unless_forced(tmp_path):
    path = tmp_path / "r.db"
    ResultStore(path, identity()).add(record(0), None)
    with pytest.raises(UserInputError, match="settings 'standard'.*not DFT settings 'fast'.*force=True"):
        ResultStore(path, identity("fast"))
    assert ResultStore(path, identity("fast"), force=True).records() == []


def test_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / "r.db"
    path.write_text("not a database at all")
    with pytest.raises(UserInputError, match="not a results database"):
        ResultStore(path, identity())
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x)").connection.commit()
    with pytest.raises(UserInputError, match="not a"):
        ResultStore(other, identity())


def test_another_design_space_is_refused(tmp_path):
    from conftest import synth_space

    path = tmp_path / "r.db"
    ResultStore(path, identity()).add(record(0), None)
    other = {"design_space": synth_space().to_dict(), "settings": PRESETS["standard"].to_dict()}
    with pytest.raises(UserInputError, match="design space 'mos2'.*not design space 'synthetic'"):
        ResultStore(path, other)


def test_a_digest_made_only_of_digits_is_stored(tmp_path):
    # About one design in 2,000 hashes to sixteen decimal digits, which ASE would refuse as a
    # string that reads as a number; the first such design is found here by search.
    import hashlib

    value = next(v for v in range(100_000) if hashlib.sha1(f"{float(v):.10g}".encode()).hexdigest()[:16].isdigit())
    assert design_key([value]).lstrip("d").isdigit()
    ResultStore(tmp_path / "r.db", identity()).add(record(0, key=design_key([value])), None)
    assert ResultStore(tmp_path / "r.db", identity()).records()[0].key == design_key([value])
