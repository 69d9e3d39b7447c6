import json

import numpy as np
import pytest

from matdesinne.errors import UserInputError

from matdesinne.evaluation.metrics import duplicate_fraction, energy_distance, nn_distance, novelty


def test_energy_distance_separates_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(800, 3)), rng.normal(size=(800, 3))
    shifted = b + np.array([1.0, 0, 0])
    assert abs(energy_distance(a, b)) < 0.05
    assert energy_distance(a, shifted) > 0.3


def test_nn_distance_duplicates_and_novelty():
    a = np.stack(np.meshgrid(np.linspace(0, 1, 25), np.linspace(0, 1, 20)), -1).reshape(-1, 2)  # 500 points
    assert nn_distance(a) == pytest.approx(1 / 24)
    dup = np.vstack([a[:100], a[:100] + 1e-5, a[100:]])
    assert duplicate_fraction(dup) == pytest.approx(200 / 600)
    assert duplicate_fraction(a) == 0
    assert novelty(a, a) == 0
    assert novelty(a + 0.5, a) > 0.1


@pytest.fixture(scope="module")
def bench(tmp_path_factory, synth_csv):
    from matdesinne.evaluation.benchmark import run_benchmark
    from matdesinne.models.train import train_models

    models = tmp_path_factory.mktemp("bench_models")
    train_models(data=synth_csv, y_lower=0.0, out=models, epochs=40, augment=3000, device="cpu")
    return run_benchmark(models, targets=[0.0, 0.6], n=400, seed=0, topk_targets=4)


def test_benchmark_records(bench):
    from matdesinne.evaluation.benchmark import LOOKUP, METHODS

    keys = {"method", "target", "n_candidates", "mae_surrogate", "mae_independent", "kept_fraction",
            "in_bounds_fraction", "energy_distance", "nn_distance", "duplicate_fraction", "seconds"}
    records = bench["results"]
    assert {(r["method"], r["target"]) for r in records} == {(m, t) for m in (*METHODS, LOOKUP) for t in (0.0, 0.6)}
    for r in records:
        assert keys <= set(r) and "total" in r["seconds"] and r["verdict"]
        assert 0 <= r["kept_fraction"] <= 1 and 0 <= r["in_bounds_fraction"] <= 1
    ev = bench["independent_evaluator"]
    assert ev["mae"] > 0 and set(ev["near"]) == {"0", "0.6"}
    assert set(bench["topk"]) == {*METHODS, LOOKUP}
    for row in bench["topk"].values():
        assert row["T=1"] >= row["T=10"] >= row["T=100"] - 1e-12  # more tries never hurt
    json.dumps(bench)  # machine-readable


def test_benchmark_pipeline_beats_raw_samples_under_the_true_function(bench):
    by = {(r["method"], r["target"]): r for r in bench["results"]}
    assert by[("matdesinne-cinn", 0.6)]["mae_surrogate"] < by[("cinn", 0.6)]["mae_surrogate"]
    assert by[("lookup", 0.6)]["mae_true"] <= 0.1


def test_benchmark_report_files(bench, tmp_path):
    from matdesinne.evaluation.benchmark import write_report

    paths = write_report(bench, tmp_path / "out", command="matdesinne benchmark --out out")
    assert [p.name for p in paths] == ["benchmark.json", "benchmark.md", "benchmark.png"]
    assert json.loads(paths[0].read_text())["results"]
    md = paths[1].read_text()
    assert "| matdesinne-cinn | 0.6 |" in md and "Top-k" in md and "matdesinne benchmark --out out" in md
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmark_covers_the_generators_a_folder_holds(bench, tmp_path):
    import shutil

    from matdesinne.evaluation.benchmark import run_benchmark

    folder = tmp_path / "some"
    shutil.copytree(bench["settings"]["models"], folder)
    for kind in ("inn", "mdn", "cvae", "cfm"):  # a material may ship the surrogate and the cINN only
        (folder / f"{kind}.json").unlink()
        (folder / f"{kind}.safetensors").unlink()
    result = run_benchmark(folder, targets=[0.6], n=200, seed=0, topk_targets=0)
    assert {r["method"] for r in result["results"]} == {"cinn", "matdesinne-cinn", "lookup"}
    (folder / "cinn.json").unlink()
    (folder / "cinn.safetensors").unlink()
    with pytest.raises(UserInputError, match="holds no generator"):
        run_benchmark(folder, targets=[0.6], n=200, seed=0, topk_targets=0)
