"""registry-gfm's report figures from real runs: 2-D positions and bidirectional ViT attention of an MAE run; the
reconstructions, confusion matrix, baselines and the predicted land-cover map of the demo's chain (slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from registry_gfm.report.landcover import FALLBACK, UNLABELLED, class_colours

ROOT = Path(__file__).resolve().parents[4]
STRATA = ROOT / "tests" / "data" / "gfm_lsat7" / "strata.tif"
TINY = ["--set", "backbone.embed_dim=32", "--set", "backbone.depth=2", "--set", "backbone.heads=2",
        "--set", "data.chip_size=16", "--set", "data.samples_per_epoch=64", "--set", "train.batch_size=8"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, check=False,
                          cwd=cwd, timeout=900)


def test_an_mae_run_reports_its_2d_positions_and_bidirectional_attention(tiny_mae_run: Path, tmp_path: Path,
                                                                       report_page) -> None:
    out = cli("report", str(tiny_mae_run), "--out", "rep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert any(line.split()[:3] == ["run", "tiny", "4"] for line in out.stdout.splitlines())  # no summary.json
    page = report_page(tmp_path / "rep" / "index.html")
    assert {"positional-encodings", "attention"} <= set(page.sections)
    assert sorted(p.name for p in page.images) == ["run-attention.png", "run-curves.png", "run-positions-2d.png"]
    assert "run: bidirectional attention" in page.figures
    assert any("4 x 4 patch grid" in c for c in page.captions)  # 16-pixel chips, patch 4


def test_a_raster_that_is_not_a_class_map_is_refused(tiny_mae_run: Path, tmp_path: Path) -> None:
    band = ROOT / "tests" / "data" / "gfm_lsat7" / "lsat7_2000_crop_B1.tif"
    out = cli("report", str(tiny_mae_run), "--artifact", str(band), "--out", "rep", cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.startswith(f"error: no plugin can draw artifact {band}"), out.stderr
    assert not (tmp_path / "rep").exists()


def test_class_colours_follow_land_cover_names_and_stay_distinct() -> None:
    colours = class_colours(["Water", "forest", "moon", "rocks", "developed"])
    assert colours[0] == "#2c7fb8" and colours[1] == "#1a7837" and colours[2:4] == list(FALLBACK[:2])
    assert len(set(colours)) == len(colours) and UNLABELLED not in colours


@pytest.mark.slow
def test_the_demo_chain_reports_reconstructions_segmentation_and_the_land_cover_map(lsat7_store: Path,
                                                                                   tmp_path: Path,
                                                                                   report_page) -> None:
    steps = [
        ("run", str(ROOT / "examples" / "mae-tiny.toml"), "--out", "mae", "--steps", "4",
         "--set", f"data.store={lsat7_store}", "--set", "objective.decoder_dim=16", "--set", "objective.decoder_depth=1",
         *TINY),
        ("run", str(ROOT / "examples" / "seg-tiny.toml"), "--out", "seg", "--steps", "6", "--set",
         f"data.store={lsat7_store}", "--set", "weights.path=mae", "--set", f"data.labels={STRATA}", *TINY),
        ("predict", "seg", "--input", str(lsat7_store), "--output", "map.tif"),
        ("predict", "seg", "--input", str(lsat7_store), "--output", "map.gpkg"),
        ("report", "mae", "seg", "--artifact", "map.tif", "--artifact", "map.gpkg", "--out", "rep"),
    ]
    for args in steps:
        done = cli(*args, cwd=tmp_path)
        assert done.returncode == 0, f"{args[0]}: {done.stderr[-3000:]}"
    assert done.stderr == ""
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()}
    assert "recon MSE" in rows["mae"]
    assert "mIoU finetuned" in rows["seg"] and "mIoU random-init" in rows["seg"] and "mIoU random forest" in rows["seg"]
    page = report_page(tmp_path / "rep" / "index.html")
    assert {"reconstructions", "segmentation", "land-cover", "positional-encodings", "attention"} <= set(page.sections)
    assert {"mae-reconstruction.png", "seg-confusion.png", "seg-baselines.png", "landcover-map.png",
            "polygons-map.png"} <= {p.name for p in page.images}
    polygons = page.captions[page.figures.index("land-cover polygons map.gpkg")]
    assert "polygons of map.gpkg of run seg, outlined in their class colour over the RGB scene" in polygons
    caption = page.captions[page.figures.index("land-cover map map.tif")]
    assert "of run seg" in caption and "agrees with the labels on" in caption
    for name in ("developed", "agriculture", "herbaceous", "shrubland", "forest", "water", "sediment"):
        assert f"</span>{name}</li>" in page.text  # the legend names every class beside its colour


def test_polygons_without_their_run_are_drawn_alone_with_counts(tmp_path: Path) -> None:
    from registry_gfm.predict import vectorize_file
    from registry_gfm.report.landcover import polygon_figures

    made = vectorize_file(STRATA, tmp_path / "strata.gpkg", min_area=1e5)
    (figure,) = polygon_figures(made.output, [], tmp_path) or []
    assert figure.image.is_file() and f"The {made.features:,} polygons of strata.gpkg" in figure.caption
    assert "no run of the report has these classes" in figure.caption
    assert sum(int(label.rsplit("(", 1)[1].rstrip(")")) for label, _ in figure.legend) == made.features
    assert polygon_figures(STRATA, [], tmp_path) is None  # a raster is not a polygon file


@pytest.mark.parametrize("out", ["ABSOLUTE", "../secret.png", "inside-link.png"])
def test_a_run_folder_pointing_outside_itself_is_not_followed(tiny_mae_run: Path, tmp_path: Path, out: str) -> None:
    """A run folder is untrusted input: an evaluator ``out`` naming a file outside it is never copied."""
    import shutil

    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + b"a decoy secret")
    run = tmp_path / "run"
    shutil.copytree(tiny_mae_run, run)
    (run / "inside-link.png").symlink_to(secret)
    value = str(secret) if out == "ABSOLUTE" else out
    with (run / "pipeline.toml").open("a") as fh:
        fh.write(f'\n[[evaluators]]\nuse = "gfm:reconstruction"\nout = "{value}"\n')
    done = cli("report", "run", "--out", "rep", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "points outside the run folder; the report reads only files inside it" in done.stderr
    copied = [p for p in (tmp_path / "rep").rglob("*") if p.is_file() and b"a decoy secret" in p.read_bytes()]
    assert copied == []
