"""`matdesinne analyze` end to end on the tiny synthetic models, and the report in a real browser."""

import json
import shutil
import subprocess

import pandas as pd
import pytest

from matdesinne.cli import main


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, synth_csv):
    from matdesinne.models.train import train_models

    models = tmp_path_factory.mktemp("analysis_models")
    train_models(data=synth_csv, kinds=["surrogate", "cinn"], y_lower=0.0, out=models, epochs=60, augment=3000, device="cpu")
    out = tmp_path_factory.mktemp("analysis")
    code = main(["analyze", "--models", str(models), "--targets", "0", "0.8", "--n", "600",
                 "--mit-limit", "40", "--out", str(out)])
    assert code == 0
    return out


def test_analyze_writes_figures_tables_and_report(report_dir):
    names = {p.name for p in report_dir.iterdir()}
    assert {"report.html", "analysis.json", "mit_pairs.csv", "fig2_dataset.png", "fig4_coverage.png", "fig6_mit.png"} <= names
    # A design space without strain groups gets per-parameter comparisons, no strain figure.
    assert "fig5_strain.png" not in names
    result = json.loads((report_dir / "analysis.json").read_text())
    assert result["candidates"]["0"] > 0 and result["candidates"]["0.8"] > 0
    mit = result["mit"]["0.8"]
    assert mit["pairs"] + mit["safe_from_mit"] == mit["insulators_searched"]
    assert set(result["sensitivity"]["0.8"]) == {"p0", "p1", "p2"}
    # gap = max(0, 1.5 p0 + p1 + ...): p0 matters more than p1 under a faithful surrogate.
    s = result["sensitivity"]["0.8"]
    assert s["p0"]["mean_abs_change"] > s["p1"]["mean_abs_change"]
    safe = pd.read_csv(report_dir / "mit_safe.csv")
    assert list(safe.columns) == ["target", "p0", "p1", "p2"] and len(safe) == mit["safe_from_mit"]
    pairs = pd.read_csv(report_dir / "mit_pairs.csv")
    for col in ("target", "p0_metal", "p0_insulator", "delta_p0", "gap_metal", "gap_insulator"):
        assert col in pairs.columns
    html = (report_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == result["figures"].__len__()
    assert "http://" not in html and "https://" not in html  # opens with no network


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_with_its_images_in_headless_chromium(report_dir, tmp_path):
    # Chromium runs the page's own script after load; it records whether every image decoded.
    page = tmp_path / "page.html"
    check = ("<script>window.addEventListener('load',()=>{const i=[...document.images];"
             "document.title=i.length+' images, '+i.filter(x=>x.complete&&x.naturalWidth>0).length+' loaded'});</script>")
    page.write_text((report_dir / "report.html").read_text().replace("</body>", check + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(["chromium", *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    n = len(json.loads((report_dir / "analysis.json").read_text())["figures"])
    assert f"<title>{n} images, {n} loaded</title>" in dom.stdout, dom.stderr[-500:]
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", *flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_reads_given_candidate_files(tmp_path, tiny_models_dir, capsys):
    files = []
    for t in ("0", "0.8"):
        path = tmp_path / f"c{t}.csv"
        assert main(["design", "--target", t, "--n", "400", "--models", tiny_models_dir, "--out", str(path)]) == 0
        files.append(str(path))
    out = tmp_path / "analysis"
    assert main(["analyze", "--models", tiny_models_dir, "--candidates", *files, "--mit-limit", "20", "--out", str(out)]) == 0
    result = json.loads((out / "analysis.json").read_text())
    assert set(result["candidates"]) == {"0", "0.8"}
    assert result["candidates"]["0.8"] == len(pd.read_csv(files[1]))
    # A CSV without the target column is refused in one line, before anything is written.
    bad = tmp_path / "bad.csv"
    pd.read_csv(files[1]).drop(columns="target").to_csv(bad, index=False)
    capsys.readouterr()
    assert main(["analyze", "--models", tiny_models_dir, "--candidates", str(bad), "--out", str(tmp_path / "a2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'target' column" in err[0]
    assert not (tmp_path / "a2").exists()


def test_analyze_refuses_too_few_candidates_and_writes_nothing(tmp_path, tiny_models_dir, capsys):
    few = tmp_path / "few.csv"
    pd.DataFrame({"p0": [0.5, 0.6, 0.7], "p1": [0.5] * 3, "p2": [0.5] * 3, "target": [0.8] * 3}).to_csv(few, index=False)
    out = tmp_path / "analysis"
    assert main(["analyze", "--models", tiny_models_dir, "--candidates", str(few), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has 3 candidate(s)" in err and len(err.splitlines()) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["few.csv"]


def test_analyze_replaces_its_earlier_output_and_spares_other_folders(tmp_path, tiny_models_dir, capsys):
    path = tmp_path / "c.csv"
    assert main(["design", "--target", "0.8", "--n", "400", "--models", tiny_models_dir, "--out", str(path)]) == 0
    out = tmp_path / "analysis"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["analyze", "--models", tiny_models_dir, "--candidates", str(path), "--mit-limit", "10", "--out", str(out)]
    assert main(args) == 2 and "did not write" in capsys.readouterr().err
    (out / "notes.txt").unlink()
    assert main(args) == 0
    (out / "stale.png").write_bytes(b"old figure")
    (out / ".matdesinne-output.json").write_text("{}")  # still marked as an earlier output
    assert main(args) == 0
    assert not (out / "stale.png").exists() and (out / "report.html").is_file()
