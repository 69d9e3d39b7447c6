"""Validation summary and figure from a results table."""

import json

import numpy as np
import pytest

from matdesinne.materials import load_dataset
from matdesinne.io import write_json
from matdesinne.validation.report import EDGE_COLUMNS, plot_validation, results_frame, summarize, to_text
from matdesinne.validation.result import DFTResult, Status, StoredResult


def records():
    ok, failed = Status.OK, Status.FAILED
    rows = [(0, 0.0, 0.0, 0.2, ok), (1, 0.0, 0.01, -0.5, ok),  # target 0: one gapped by DFT
            (2, 1.0, 1.0, 1.3, ok), (3, 1.0, 0.98, 0.1, ok), (4, 1.0, 1.0, np.nan, failed)]
    return [StoredResult(i, f"d{i}", {n: 1.0 for n in load_dataset("mos2").space.names}, t, p,
                         DFTResult(s, raw, "" if s is ok else "boom", 2.0))
            for i, t, p, raw, s in rows]


def test_results_frame_columns_and_calibration():
    space = load_dataset("mos2").space

    class Offset:
        def apply(self, raw):
            return np.where(np.isfinite(raw), np.maximum(0, np.asarray(raw) - 0.2), np.nan)

    frame = results_frame(records(), space, Offset())
    assert list(frame.columns) == ["candidate", *space.names, "target", "band_gap_pred", "dft_gap_raw", "dft_gap",
                                   "dft_energy", "status", "error", "seconds", *EDGE_COLUMNS]
    np.testing.assert_allclose(frame["dft_gap"], [0.0, 0.0, 1.1, 0.0, np.nan])
    uncalibrated = results_frame(records(), space)
    np.testing.assert_allclose(uncalibrated["dft_gap"], [0.2, 0.0, 1.3, 0.1, np.nan])


def test_summary_counts_errors_and_wrong_sides(tmp_path):
    space = load_dataset("mos2").space
    frame = results_frame(records(), space)
    s = summarize(frame, space)
    t0, t1 = s["by_target"]["0"], s["by_target"]["1"]
    assert (s["n"], s["ok"], s["failed"]) == (5, 4, 1)
    assert t0["dft_mae_vs_target"] == pytest.approx(0.1) and (t0["wrong_side"], t0["ok"]) == (1, 2)
    assert t1["dft_mae_vs_target"] == pytest.approx((0.3 + 0.9) / 2) and t1["wrong_side"] == 0 and t1["failed"] == 1
    assert t1["surrogate_mae_vs_dft"] == pytest.approx((0.3 + 0.88) / 2)
    assert "1/2" in to_text(s, space)
    plot_validation(frame, s, space, tmp_path / "v.png")
    assert (tmp_path / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_without_targets(tmp_path):
    space = load_dataset("mos2").space
    frame = results_frame(records(), space).assign(target=np.nan)
    s = summarize(frame, space)
    assert list(s["by_target"]) == ["all"] and "wrong_side" not in s["by_target"]["all"]
    assert s["by_target"]["all"]["ok"] == 4
    assert to_text(s, space).splitlines()[1].split()[0] == "all"
    plot_validation(frame, s, space, tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 1000


def test_rows_without_a_target_are_counted_and_the_summary_has_no_nan(tmp_path):
    space = load_dataset("mos2").space
    frame = results_frame(records(), space)
    frame.loc[[0, 4], "target"] = np.nan  # one ok row and the failed one have no target
    s = summarize(frame, space)
    assert list(s["by_target"]) == ["0", "1", "no target"]
    assert [g["n"] for g in s["by_target"].values()] == [1, 2, 2] and s["by_target"]["no target"]["failed"] == 1
    assert "wrong_side" not in s["by_target"]["no target"]
    # A group with nothing to average says so with null, never NaN.
    frame.loc[frame["target"] == 0.0, "status"] = "failed"
    s = summarize(frame, space)
    assert s["by_target"]["0"]["dft_mae_vs_target"] is None and s["by_target"]["0"]["dft_gap_std"] is None
    write_json(s, tmp_path / "s.json")
    text = (tmp_path / "s.json").read_text()
    assert "NaN" not in text and "nan" not in text
    assert json.loads(text)["by_target"]["0"]["surrogate_mae_vs_dft"] is None
    assert "n/a" in to_text(s, space)
    plot_validation(frame, s, space, tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 1000


def test_results_csv_keeps_every_float_exactly(tmp_path):
    from matdesinne.io import read_csv, write_csv

    space = load_dataset("mos2").space
    results = records()
    results[0] = StoredResult(0, "d0", {n: 0.1 + 0.2 for n in space.names}, 1 / 3, np.pi, DFTResult(Status.OK, 2 / 3))
    frame = results_frame(results, space)
    write_csv(frame, tmp_path / "r.csv")
    back = read_csv(tmp_path / "r.csv")
    for column in [*space.names, "target", "band_gap_pred", "dft_gap_raw", "dft_gap"]:
        np.testing.assert_array_equal(back[column].to_numpy(), frame[column].to_numpy(dtype=np.float64))
