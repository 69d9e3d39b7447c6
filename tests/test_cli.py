"""The command line end to end, and every bad input: one line on stderr, exit 2, no file."""

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import SYNTH_NAMES, synth_forward
from matdesinne.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(capsys, argv, fragment: str) -> None:
    """``argv`` fails with exit 2 and one line on stderr that contains ``fragment``."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("matdesinne: error:"), (argv, err)
    assert fragment in lines[0], (argv, lines[0])
    assert "Traceback" not in err


def test_train_design_predict_end_to_end(capsys, tmp_path, synth_csv):
    models = tmp_path / "models"
    code, out, err = run(capsys, "train", "--data", synth_csv, "--x", "p0,p1,p2", "--y", "gap", "--y-lower", 0,
                         "--out", models, "--epochs", 3, "--augment", 2000, "--device", "cpu")
    assert code == 0, err
    kinds = ["surrogate", "cinn", "inn", "mdn", "cvae", "cfm"]
    assert {p.name for p in models.iterdir()} == {f"{k}.{ext}" for k in kinds for ext in ("json", "safetensors")} | {"models.json"}
    meta = json.loads((models / "cinn.json").read_text())
    assert meta["training"]["augment"] == 2000 and meta["training"]["split"]["seed"] == 0
    assert meta["params"]["seed"] == 0 and meta["design_space"]["property"]["lower"] == 0

    cands, summary = tmp_path / "c.csv", tmp_path / "s.json"
    code, out, err = run(capsys, "design", "--target", 0.5, "--n", 300, "--models", models, "--out", cands, "--summary", summary)
    assert code == 0, err
    frame = pd.read_csv(cands)
    assert list(frame.columns) == [*SYNTH_NAMES, "gap_pred", "gap_std", "target"]
    s = json.loads(summary.read_text())
    for key in ("n_requested", "n_generated", "n_kept", "n_candidates", "mae_surrogate"):
        assert key in s
    assert s["n_candidates"] == len(frame) and s["n_requested"] == 300
    assert set(s["seconds"]) == {"generate", "downselect", "localize", "total"}

    rows = tmp_path / "rows.csv"
    pd.DataFrame({"id": ["r1", "r2"], "p2": [0.1, 0.9], "p1": [0.5, 0.5], "p0": [0.2, 0.8]}).to_csv(rows, index=False)
    preds = tmp_path / "p.csv"
    code, out, err = run(capsys, "predict", "--in", rows, "--out", preds, "--models", models)
    assert code == 0, err
    got = pd.read_csv(preds)
    assert list(got.columns) == ["id", "p2", "p1", "p0", "gap_pred", "gap_std"]
    assert got["id"].tolist() == ["r1", "r2"] and (got["gap_pred"] >= 0).all()


def test_design_with_tiny_models_hits_the_true_target(capsys, tmp_path, tiny_models_dir):
    cands = tmp_path / "c.csv"
    code, out, err = run(capsys, "design", "--target", 0.7, "--n", 1000, "--models", tiny_models_dir,
                         "--constrain", "p2=0.1:0.6", "--out", cands)
    assert code == 0, err
    frame = pd.read_csv(cands)
    assert frame["p2"].between(0.1, 0.6).all()
    true = synth_forward(frame[SYNTH_NAMES].to_numpy())
    assert abs(true - 0.7).mean() < 0.05


def test_shipped_models_design_mos2(capsys, tmp_path):
    cands, summary = tmp_path / "c.csv", tmp_path / "s.json"
    code, out, err = run(capsys, "design", "--target", 1.0, "--n", 2000, "--out", cands, "--summary", summary,
                         "--constrain", "efield=-0.5:0.5")
    assert code == 0, err
    frame = pd.read_csv(cands)
    assert list(frame.columns) == ["a", "b", "c", "alpha", "beta", "gamma", "efield", "band_gap_pred", "band_gap_std", "target"]
    assert frame["efield"].between(-0.5, 0.5).all()
    s = json.loads(summary.read_text())
    assert s["n_candidates"] > 0 and s["mae_surrogate"] <= 0.01


@pytest.fixture
def bad_inputs(tmp_path, tiny_models_dir, tiny_models):
    """Each case: argv, and a fragment the one-line error must contain."""
    nan_csv = tmp_path / "nan.csv"
    pd.DataFrame({"p0": [0.1, None], "p1": [0.2, 0.3], "p2": [0.1, 0.1]}).to_csv(nan_csv, index=False)
    inf_csv = tmp_path / "inf.csv"
    pd.DataFrame({"p0": [0.1, float("inf")], "p1": [0.2, 0.3], "p2": [0.1, 0.1]}).to_csv(inf_csv, index=False)
    nocol_csv = tmp_path / "nocol.csv"
    pd.DataFrame({"p0": [0.1], "p1": [0.2]}).to_csv(nocol_csv, index=False)
    good_csv = tmp_path / "good.csv"
    pd.DataFrame({"p0": [0.1], "p1": [0.2], "p2": [0.3]}).to_csv(good_csv, index=False)
    corrupt = tmp_path / "corrupt"
    tiny_models.generator.save(corrupt)
    tiny_models.surrogate.save(corrupt)
    (corrupt / "cinn.safetensors").write_bytes(b"not a checkpoint")
    mixed = tmp_path / "mixed"  # a cINN of the synthetic space with the MoS2 surrogate
    tiny_models.generator.save(mixed)
    from matdesinne.models import EnsembleSurrogate, default_models_dir
    EnsembleSurrogate.load(default_models_dir()).save(mixed)
    m = ["--models", tiny_models_dir]
    design = ["design", "--out", tmp_path / "out.csv", *m]
    return [
        (["design", "--target", 0.5, "--out", tmp_path / "out.csv", "--models", tmp_path / "absent"], "no such models folder"),
        ([*design, "--target", 0.5, "--n", 0], "must be positive"),
        ([*design, "--target", 0.5, "--n", -5], "must be positive"),
        ([*design, "--target", "nan"], "must be finite"),
        ([*design, "--target", "inf"], "must be finite"),
        ([*design, "--target", 9.0], "outside the gap range"),
        ([*design, "--target", 0.5, "--constrain", "p0=-1:0.5"], "outside the design space"),
        ([*design, "--target", 0.5, "--constrain", "zz=0:1"], "not a parameter"),
        ([*design, "--target", 0.5, "--constrain", "p0"], "PARAM=LO:HI"),
        (["design", "--target", 0.5, "--out", tmp_path / "out.csv", "--models", corrupt], "corrupt"),
        (["design", "--target", 0.5, "--out", tmp_path / "out.csv", "--models", mixed], "belongs to design space"),
        (["design", "--target", 0.5, *m, "--out", tmp_path / "no_dir" / "out.csv"], "does not exist"),
        (["design", "--target", 0.5, *m, "--out", tmp_path], "is a directory"),
        (["predict", "--in", tmp_path / "absent.csv", "--out", tmp_path / "out.csv", *m], "no such file"),
        (["predict", "--in", nan_csv, "--out", tmp_path / "out.csv", *m], "NaN or infinite"),
        (["predict", "--in", inf_csv, "--out", tmp_path / "out.csv", *m], "NaN or infinite"),
        (["predict", "--in", nocol_csv, "--out", tmp_path / "out.csv", *m], "unknown column"),
        (["predict", "--in", good_csv, "--out", tmp_path / "no_dir" / "out.csv", *m], "does not exist"),
        (["train", "--data", tmp_path / "absent.csv", "--out", tmp_path / "m"], "no such file"),
        (["train", "--data", nan_csv, "--out", tmp_path / "m"], "NaN or infinite"),
        (["train", "--data", nocol_csv, "--x", "p0,zz", "--y", "p1", "--out", tmp_path / "m"], "unknown column"),
        (["train", "--data", good_csv, "--out", tmp_path / "m", "--epochs", 0], "must be positive"),
        (["benchmark", "--out", tmp_path / "bench", "--models", tmp_path / "absent"], "no such models folder"),
        (["benchmark", "--out", good_csv, "--models", tiny_models_dir], "not a folder"),
        (["analyze", "--out", good_csv, "--models", tiny_models_dir], "not a folder"),
        # The folder holds a cINN and a surrogate saved without a training record.
        (["benchmark", "--out", tmp_path / "bench", "--models", tiny_models_dir], "records no training data"),
        (["benchmark", "--out", tmp_path / "bench", "--n", 0], "must be positive"),
        (["benchmark", "--out", tmp_path / "bench", "--targets", "nan"], "must be finite"),
        (["design", "--target", 0.5, "--method", "inn", *m, "--out", tmp_path / "out.csv"], "no such checkpoint file"),
        (["design", "--target", 0.5], "required"),
        (["frobnicate"], "invalid choice"),
    ]


def test_bad_input_gives_one_line_exit_2_and_no_file(capsys, tmp_path, bad_inputs):
    for argv, fragment in bad_inputs:
        assert_one_line_error(capsys, argv, fragment)
        assert not (tmp_path / "out.csv").exists(), argv


def test_existing_output_is_not_overwritten_on_error(capsys, tmp_path, tiny_models_dir):
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    code, _, err = run(capsys, "design", "--target", 9.0, "--models", tiny_models_dir, "--out", out)
    assert code == 2 and out.read_text() == "precious\n"
    assert not list(tmp_path.glob(".out.csv.*"))  # no temporary file left behind


def test_output_on_a_filesystem_that_refuses_files(capsys, tmp_path, tiny_models_dir):
    # /proc accepts no new files, even from root: the failure comes only at write time.
    code, _, err = run(capsys, "design", "--target", 0.5, "--n", 100, "--models", tiny_models_dir,
                       "--out", "/proc/matdesinne-candidates.csv")
    assert code == 2 and "cannot be written" in err and len(err.strip().splitlines()) == 1


def test_unwritable_output_is_refused(capsys, tmp_path, tiny_models_dir):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        import os
        if os.access(locked, os.W_OK):  # root ignores permissions
            pytest.skip("running as a user that can write anywhere")
        code, _, err = run(capsys, "design", "--target", 0.5, "--models", tiny_models_dir, "--out", locked / "c.csv")
        assert code == 2 and "cannot be written" in err
    finally:
        locked.chmod(0o700)


def test_extrapolation_flag(capsys, tmp_path, tiny_models_dir):
    code, _, err = run(capsys, "design", "--target", 2.0, "--n", 200, "--models", tiny_models_dir,
                       "--out", tmp_path / "c.csv", "--allow-extrapolation")
    assert code == 0, err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_user_error(capsys, tmp_path, tiny_models_dir):
    code, _, err = run(capsys, "design", "--target", 0.5, "--models", tiny_models_dir,
                       "--out", tmp_path / "c.csv", "--device", "cuda")
    assert code == 2 and "no CUDA GPU" in err and not (tmp_path / "c.csv").exists()


@pytest.fixture
def edge_inputs(tmp_path, tiny_models_dir, synth_csv):
    """Mistakes found by trying bad inputs as a careless user would: each is one line, exit 2."""
    m = ["--models", tiny_models_dir]
    out = tmp_path / "out.csv"
    dup_csv = tmp_path / "dup.csv"
    pd.DataFrame({"p0": [0.1, 0.2], "p1": [0.2, 0.3], "p2": [0.1, 0.1], "gap_pred": [1.0, 2.0]}).to_csv(dup_csv, index=False)
    cands = tmp_path / "cands.csv"
    pd.DataFrame({"p0": [0.1], "p1": [0.2], "p2": [0.3]}).to_csv(cands, index=False)
    cases = [(["validate", cands, "--out", tmp_path / "cands.db", *m], "also an input"),
             (["validate", cands, "--out", tmp_path / "r.db", "--scheduler", "tcp://[bad", *m], "--scheduler")]
    for seed in (-1, 2**32, 2**64):
        cases += [
            (["design", "--target", 0.5, *m, "--out", out, "--seed", seed], "--seed"),
            (["analyze", *m, "--out", tmp_path / "an", "--seed", seed], "--seed"),
            (["benchmark", *m, "--out", tmp_path / "bench", "--seed", seed], "--seed"),
            (["train", "--data", synth_csv, "--out", tmp_path / "m", "--seed", seed], "--seed"),
            (["train", "--data", synth_csv, "--out", tmp_path / "m", "--split-seed", seed], "--split-seed"),
            (["validate", synth_csv, "--out", tmp_path / "r.db", "--seed", seed], "--seed"),
            (["calibrate", "--out", tmp_path / "c.json", "--seed", seed], "--seed"),
        ]
    return cases + [
        (["design", "--target", 0.5, *m, "--out", out, "--n", 10**12], "GiB of memory"),
        (["design", "--target", 0.5, *m, "--out", out, "--n", 10**20], "GiB of memory"),
        (["design", "--target", 0.5, *m, "--out", f"{tmp_path}/newdir/"], "names a folder"),
        (["design", "--target", 0.5, *m, "--out", out, "--constrain", "p0=0:0.5", "--constrain", "p0=0.1:0.4"], "twice"),
        (["design", "--target", 0.5, *m, "--out", out, "--tolerance", 0], "must be positive"),
        (["design", "--target", 0.5, *m, "--out", tmp_path / ("c" * 300 + ".csv")], "longer than the file system"),
        (["design", "--target", 0.5, *m, "--out", out, "--summary", out], "two different outputs"),
        (["train", "--data", synth_csv, "--x", "p0,p0", "--out", tmp_path / "m"], "more than once"),
        (["predict", "--in", dup_csv, "--out", out, *m], "already has column"),
        (["predict", "--in", dup_csv, "--out", dup_csv, *m], "also an input"),
        (["benchmark", *m, "--out", tmp_path / "bench", "--tolerance", 0], "must be positive"),
        (["benchmark", *m, "--out", tmp_path / "bench", "--topk-targets", -1], "0 or more"),
        (["analyze", *m, "--out", tmp_path / "an", "--n", 1], "at least"),
        (["analyze", *m, "--out", tmp_path / "an", "--targets", 9.0], "--allow-extrapolation"),
    ]


def test_edge_inputs_give_one_line_exit_2_and_write_nothing(capsys, tmp_path, edge_inputs, monkeypatch):
    from matdesinne.evaluation import evaluators

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr(evaluators.Evaluator, "fit", no_work)
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv, fragment in edge_inputs:
        assert_one_line_error(capsys, argv, fragment)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, argv


def test_benchmark_target_outside_the_trained_range_is_refused_before_work(capsys, tmp_path, tiny_models_dir, monkeypatch):
    from matdesinne.evaluation import evaluators

    monkeypatch.setattr(evaluators.Evaluator, "fit", lambda *a, **k: pytest.fail("work started"))
    code, _, err = run(capsys, "benchmark", "--models", tiny_models_dir, "--out", tmp_path / "b", "--targets", 0.5, 9.0)
    assert code == 2 and "--targets 9 lies outside" in err and not (tmp_path / "b").exists()


def test_predict_keeps_the_users_columns_exactly_and_needs_only_a_surrogate(capsys, tmp_path, tiny_models):
    surrogate_only = tmp_path / "surrogate_only"
    tiny_models.surrogate.save(surrogate_only)
    rows = tmp_path / "rows.csv"
    rows.write_text("id,p0,p1,p2,note\nr1,0.3141776659,0.5,0.123456789012345,keep me\nr2,0.9,0.1,0.2,\n")
    out = tmp_path / "pred.csv"
    code, _, err = run(capsys, "predict", "--in", rows, "--out", out, "--models", surrogate_only)
    assert code == 0, err
    text = out.read_text().splitlines()
    assert text[0] == "id,p0,p1,p2,note,gap_pred,gap_std"
    assert text[1].startswith("r1,0.3141776659,0.5,0.123456789012345,keep me,")


def test_design_output_symlink_keeps_the_link(capsys, tmp_path, tiny_models_dir):
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old\n")
    link.symlink_to(target)
    code, _, err = run(capsys, "design", "--target", 0.5, "--n", 200, "--models", tiny_models_dir, "--out", link)
    assert code == 0, err
    assert link.is_symlink() and pd.read_csv(target)["target"].eq(0.5).all()


def test_library_messages_name_this_commands_flags():
    from matdesinne.cli.main import as_flags, build_parser

    _, commands = build_parser()
    message = "target 9 lies outside; pass allow_extrapolation=True to try anyway, or use another out=x.csv or seed="
    assert as_flags(message, commands["design"]) == ("target 9 lies outside; pass --allow-extrapolation to try anyway, "
                                                     "or use another --out x.csv or --seed")


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    # Ctrl-C as a terminal delivers it: a run started in the background (nohup, `cmd &`) inherits
    # SIGINT ignored, so the child takes the default disposition back.
    proc = subprocess.Popen([sys.executable, "-m", "matdesinne", "design", "--target", "0.5", "--out",
                             str(tmp_path / "c.csv")], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + 60
    while "torch" not in maps.read_text() and time.monotonic() < deadline:  # inside main's imports
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("matdesinne: interrupted"), err
    assert not (tmp_path / "c.csv").exists()


def test_ctrl_c_ends_the_process_even_when_the_main_thread_does_not_stop(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    # The main thread never stops for Ctrl-C, as code stuck in compiled code effectively does: its
    # SIGINT handler does nothing (a swallowed KeyboardInterrupt could escape between two bytecodes).
    script = ("import signal, time\nfrom matdesinne.cli.main import _watch_interrupts\n_watch_interrupts()\n"
              "signal.signal(signal.SIGINT, lambda *_: None)\nprint('ready', flush=True)\n"
              "while True:\n    time.sleep(10)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    assert time.monotonic() - start < 30


def test_design_with_several_goals_on_the_shipped_mos2_models(capsys, tmp_path):
    cands, summary = tmp_path / "c.csv", tmp_path / "s.json"
    code, out, err = run(capsys, "design", "--target", "band_gap=1.0", "--minimize", "strain", "--max", "strain=6",
                         "--n", 2000, "--out", cands, "--summary", summary)
    assert code == 0, err
    frame = pd.read_csv(cands)
    assert {"band_gap_pred", "band_gap_std", "strain", "target"} <= set(frame.columns)
    assert frame["strain"].is_monotonic_increasing and (frame["strain"] <= 6).all()
    assert (frame["band_gap_pred"] - 1.0).abs().max() <= 0.1
    s = json.loads(summary.read_text())
    assert [g["goal"] for g in s["goals"]] == ["band_gap = 1", "strain <= 6", "minimize strain"]
    assert "minimize strain: candidates' median" in out


@pytest.mark.parametrize("argv, fragment", [
    (["--target", "band_gap:1"], "write PROPERTY=VALUE"),
    (["--target", "band_gap=1", "--minimize", "hardness"], "unknown property 'hardness'"),
    (["--target", "band_gap=1", "--min", "strain=5", "--max", "strain=2"], "contradictory bounds"),
    (["--target", "band_gap=1", "--travel", "-1"], "--travel"),
])
def test_bad_goals_give_one_line_exit_2_and_no_file(capsys, tmp_path, argv, fragment):
    out = tmp_path / "c.csv"
    assert_one_line_error(capsys, ["design", *argv, "--n", 100, "--out", out], fragment)
    assert not out.exists()


def test_an_output_that_names_a_model_file_is_refused(capsys, tmp_path, tiny_models_dir):
    models = Path(tiny_models_dir)
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"p0": [0.2], "p1": [0.5], "p2": [0.1]}).to_csv(rows, index=False)
    for argv in (["design", "--target", 0.5, "--n", 100, "--models", models, "--out", models / "surrogate.json"],
                 ["design", "--target", "gap=0.5", "--n", 100, "--models", models, "--out", tmp_path / "c.csv",
                  "--summary", models / "cinn.json"],
                 ["predict", "--in", rows, "--models", models, "--out", models / "surrogate.json"]):
        assert_one_line_error(capsys, argv, "is also an input of this command")
    assert {p.name: p.read_bytes() for p in models.iterdir()} == before


def test_an_output_inside_the_built_in_materials_is_refused(capsys, tmp_path, monkeypatch):
    # design does not read the WS2 dataset, so only this guard keeps it from being overwritten.
    import matdesinne.materials as materials

    root = Path(materials.__file__).parent
    data = root / "ws2" / "ws2_data.csv"
    before = data.read_bytes()
    made = [root / "ws2" / "points.csv", root / "ws2" / "points.json", root / "mos2" / "models" / "notes.json"]
    try:
        for argv, flag in ((["design", "--space", "ws2", "--target", 1.0, "--n", 100, "--out", data], "--out"),
                           (["design", "--target", 1.0, "--n", 100, "--out", tmp_path / "c.csv", "--summary", made[2]],
                            "--summary"),
                           (["sample", "--space", "ws2", "--n", 8, "--out", made[0]], "--out")):
            assert_one_line_error(capsys, argv, f"{flag} {argv[argv.index(flag) + 1]}: lies inside matdesinne's built-in materials")
        monkeypatch.chdir(root / "mos2")  # a relative path through '..' is named as given
        assert_one_line_error(capsys, ["sample", "--space", "ws2", "--n", 8, "--out", "../ws2/points.csv"],
                              "--out ../ws2/points.csv: lies inside matdesinne's built-in materials")
    finally:  # should the guard fail, leave the source tree as it was
        written = data.read_bytes()
        data.write_bytes(before)
        leftovers = [p for p in made if p.exists()]
        for p in leftovers:
            p.unlink()
    assert written == before and not leftovers
