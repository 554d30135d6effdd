"""registry-gfm's report figures from real runs: 2-D positions and bidirectional ViT attention of an MAE run; the
reconstructions, confusion matrix, baselines and the predicted land-cover map of the demo's chain (slow), laid out
in headless Chromium at 1400 and 800 px; what the baselines' numbers say; the grid's error colour bar."""

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
                                                                                   report_page, page_layout) -> None:
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
    says = page.text.split('<p class="finding">')[1].split("</p>")[0]
    assert "mIoU" in says and "(random init)" in says and "random forest on the bands alone scores" in says
    assert str(tmp_path) not in page.text  # the seg run's lock records mae's weights by absolute path
    assert "../mae/model.safetensors" in page.text.replace("<wbr>", "")
    for width in (1400, 800):  # the real figures: wide attention, 2-D positions, maps, grid, matrix
        layout = page_layout(tmp_path / "rep" / "index.html", width)
        assert layout.broken == [] and layout.images == len(page.images), layout
        assert layout.scroll_width <= layout.client_width and layout.too_wide == [], (width, layout.too_wide)
        assert min(layout.scale.values()) > 0.95, layout.scale  # figures keep their labels' size at 800 px


def test_polygons_without_their_run_are_drawn_alone_with_counts(tmp_path: Path) -> None:
    from registry_gfm.predict import vectorize_file
    from registry_gfm.report.landcover import polygon_figures

    made = vectorize_file(STRATA, tmp_path / "strata.gpkg", min_area=1e5)
    (figure,) = polygon_figures(made.output, [], tmp_path) or []
    assert figure.image.is_file() and f"The {made.features:,} polygons of strata.gpkg" in figure.caption
    assert "no run of the report has these classes" in figure.caption
    assert sum(int(label.rsplit("(", 1)[1].rstrip(")")) for label, _ in figure.legend) == made.features
    assert polygon_figures(STRATA, [], tmp_path) is None  # a raster is not a polygon file


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_polygons_are_read_with_the_run_time_packages_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             suffix: str) -> None:
    """The report reads predict's polygon files with what ``make demo`` installs: fiona and geopandas come only with
    the test tools (the demo's report failed on a fresh clone while it read them with fiona)."""
    from registry_gfm.predict import vectorize_file
    from registry_gfm.report.landcover import polygon_figures

    for name in ("fiona", "geopandas"):
        monkeypatch.setitem(sys.modules, name, None)  # an import of it fails, as where it is not installed
    made = vectorize_file(STRATA, tmp_path / f"strata{suffix}", min_area=1e5)
    (figure,) = polygon_figures(made.output, [], tmp_path) or []
    assert f"The {made.features:,} polygons of strata{suffix}" in figure.caption


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


def test_the_baselines_sentence_says_plainly_what_the_numbers_mean() -> None:
    from registry_gfm.report.evaluation import finding

    table = {"finetuned": {"miou": 0.245, "iou": {"water": 0.6, "forest": 0.0, "sediment": None, "shrubland": 0.0}},
             "random_init": {"miou": 0.25}, "random_forest": {"miou": 0.31}}
    says = finding(table)
    assert says.startswith("The pretrained encoder is not better than a random one here: mIoU 0.245 vs 0.250 "
                           "(random init).")
    assert "A random forest on the bands alone scores 0.310, above the finetuned encoder's 0.245." in says
    # a class absent from the validation strip (IoU null) is not one the model got wrong
    assert says.endswith("never predicted these classes correctly (IoU 0): forest, shrubland.")
    table["finetuned"]["miou"] = 0.256
    assert "barely better than a random one here: mIoU 0.256 vs 0.250 (random init), +0.006." in finding(table)
    table["finetuned"]["miou"] = 0.2503  # the same to three decimals: not "+0.000 better"
    assert "is not better than a random one here: mIoU 0.250 vs 0.250" in finding(table)
    table["finetuned"]["miou"] = 0.4
    assert finding(table).startswith("The pretrained encoder beats a random one: mIoU 0.400 vs 0.250 (random init).")
    assert finding({"random_init": {"miou": 0.2}}) == ""  # nothing finetuned to speak of


def test_the_confusion_matrix_is_drawn_from_its_json_else_copied(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from registry_core.report import ReportRun
    from registry_gfm.evaluators._confusion import scores, write_confusion_json
    from registry_gfm.report.evaluation import evaluation_figures

    run = tmp_path / "run"
    names = ["developed", "forest", "water"]
    cm = np.array([[50, 3, 0], [4, 900, 12], [0, 30, 12000]])
    write_confusion_json(run / "confusion.json", cm, names, scores(cm, names))
    config = {"evaluators": [{"use": "gfm:task-metrics", "out": "confusion"}]}
    summary = {"evaluators": {"gfm:task-metrics": {"overall_accuracy": 0.9, "miou": 0.7}}}
    report = tmp_path / "rep"
    report.mkdir()
    (figure,) = evaluation_figures(ReportRun(run, "seg", config, summary=summary), report)
    assert figure.title == "seg: confusion matrix" and "mIoU 0.700" in figure.caption
    with Image.open(figure.image) as im:
        assert im.width > 400 and len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 50
    (run / "confusion.json").unlink()
    (run / "confusion.png").write_bytes(b"\x89PNG\r\n\x1a\nwhat the run drew")
    (figure,) = evaluation_figures(ReportRun(run, "seg", config, summary=summary), report)
    assert figure.image.read_bytes().endswith(b"what the run drew")


def test_the_reconstruction_grid_has_an_error_colour_bar(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from registry_gfm.render import BAR, FOOTER, PAD, grid_size, write_grid_png

    rng = np.random.default_rng(0)
    rows = [(rng.random((3, 32, 32)), rng.random((3, 32, 32))) for _ in range(2)]
    png = write_grid_png(tmp_path / "grid.png", rows, ["red", "green", "blue"])
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    assert pixels.shape[1::-1] == grid_size(2, 32, 32) and pixels.shape[1] == 4 * 192 + 5 * PAD  # 192-px panels
    bar = pixels[pixels.shape[0] - FOOTER + PAD + BAR // 2, 3 * (192 + PAD) + PAD:]  # the error column's footer
    low, high = bar[2], bar[189]
    assert low[2] > low[1] and high[0] > 200 and high[1] > 200 and high[2] < 100  # viridis: purple to yellow
