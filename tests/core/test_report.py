"""``python -m registry_core report``: the page over run folders, the summary rows, plugin figures and every refusal.

The run folders here are written as ``run --out`` writes them (pipeline.toml, lock, metrics.jsonl, summary.json)
for a pipeline of no installed stack, so only the core's parts and toy plugins draw; the stacks' figures are
tested with real runs in plugins/llm/tests and plugins/gfm/tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

LOCK = {"components": [{"slot": "backbone", "kind": "backbone", "id": "toy:net", "target": "toy_pkg.net:build",
                        "distribution": "toy-dist", "version": "0.1"}],
        "files": {"model:model.safetensors": {"path": "model.safetensors", "sha256": "ab" * 32}}}


def write_run(folder: Path, name: str = "toy-run", steps: int = 30, summary: bool = True) -> Path:
    """A finished run folder of a pipeline named ``name``: losses logged every 10 steps, val every 15."""
    folder.mkdir(parents=True)
    (folder / "pipeline.toml").write_text(f'name = "{name}"\n\n[backbone]\nuse = "toy:net"\n')
    (folder / "pipeline.lock.json").write_text(json.dumps(LOCK))
    rows = []
    for step in range(10, steps + 1, 5):
        row = {"step": step, "loss": 3.0 - step / 100, "units": "tokens"}
        if step % 15 == 0:
            row["val_loss"] = 3.2 - step / 100
        rows.append(json.dumps(row))
    (folder / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    if summary:
        (folder / "summary.json").write_text(json.dumps({"step": steps, "loss": 2.7, "val": {"loss": 2.9},
                                                         "evaluators": {}}))
    return folder


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", *args], capture_output=True, text=True, check=False,
                          cwd=cwd, timeout=300)


def test_a_report_of_two_runs_has_rows_curves_registry_and_locks(tmp_path: Path, report_page) -> None:
    write_run(tmp_path / "a")
    write_run(tmp_path / "b", name="other", steps=20, summary=False)  # saved without `run`: no summary.json
    out = cli("report", "a", "b", "--out", "rep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    rows = [line.split() for line in out.stdout.splitlines()]
    assert ["a", "toy-run", "30", "2.7", "2.9", "-"] in rows
    assert ["b", "other", "20", "2.8", "3.05", "-"] in rows  # from metrics.jsonl: last loss, last val_loss
    assert out.stdout.strip().endswith("figures)")
    page = report_page(tmp_path / "rep" / "index.html")
    assert page.sections[:2] == ["summary", "training-curves"]
    assert page.sections[-2:] == ["registry", "pipeline-locks"]
    assert sorted(p.name for p in page.images) == ["a-curves.png", "b-curves.png"]
    assert all(c.strip() for c in page.captions) and page.figures == ["a: loss by step", "b: loss by step"]
    listed = json.loads(cli("list", "--json", cwd=tmp_path).stdout)
    cells = page.text.replace('<td class="code">', "<td>").replace("<wbr>", "")  # long ids may break on a phone
    assert listed and all(f"<td>{c['id']}</td>" in cells for c in listed)  # the registry, as `list` has it
    assert "<td>toy:net</td>" in page.text and "abababababababab" in page.text  # the lock: component and hash


def test_json_output_and_a_second_report_replacing_the_first(tmp_path: Path) -> None:
    write_run(tmp_path / "a")
    first = cli("report", "a", "--out", "rep", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (tmp_path / "rep" / "stale.png").write_bytes(b"old")
    out = cli("report", "a", "--out", "rep", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["runs"][0]["pipeline"] == "toy-run" and doc["figures"] == 1 and doc["warnings"] == []
    assert not (tmp_path / "rep" / "stale.png").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folder left


def _not_a_run(root: Path) -> list[str]:
    (root / "data").mkdir()
    (root / "data" / "x.txt").write_text("x")
    return ["data"]


def _busy_out(root: Path) -> list[str]:
    write_run(root / "a")
    (root / "rep").mkdir()
    (root / "rep" / "notes.txt").write_text("mine")
    return ["a"]


def _website(root: Path) -> list[str]:
    """A folder that looks like a report (an index.html) but is a user's site with other files."""
    write_run(root / "a")
    (root / "rep" / "css").mkdir(parents=True)
    (root / "rep" / "index.html").write_text("<html>my site</html>")
    (root / "rep" / "css" / "site.css").write_text("body {}")
    return ["a"]


def _artifact_inside(root: Path) -> list[str]:
    """An earlier report of ours, with the artifact to draw inside it."""
    write_run(root / "a")
    assert cli("report", "a", "--out", "rep", cwd=root).returncode == 0
    (root / "rep" / "map.tif").write_bytes(b"II*\x00")
    return ["a", "--artifact", "rep/map.tif"]


def _linked_out(root: Path) -> list[str]:
    """--out a link to another folder (here a report of ours): neither the link nor its target is replaced."""
    write_run(root / "a")
    assert cli("report", "a", "--out", "real", cwd=root).returncode == 0
    (root / "rep").symlink_to(root / "real")
    return ["a"]


@pytest.mark.parametrize(("setup", "message"), [
    (lambda root: ["missing"], "error: run folder missing does not exist"),
    (_not_a_run, "error: data is not a run folder: it has no pipeline.toml"),
    (_busy_out, "error: --out: rep carries no registry-core marker, so it was not written as a report output"),
    (_website, "error: --out: rep carries no registry-core marker, so it was not written as a report output"),
    (_artifact_inside, "error: --out: rep is or holds rep/map.tif, an input of this command; it is never removed"),
    (_linked_out, "error: --out: rep is a symbolic link; the project removes only the outputs it wrote"),
    (lambda root: [write_run(root / "a").name, "--artifact", "nope.tif"], "error: artifact nope.tif does not exist"),
])
def test_bad_input_is_one_line_exit_1_and_nothing_written(tmp_path: Path, setup, message: str) -> None:
    args = setup(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = cli("report", *args, "--out", "rep", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith(message) and out.stderr.count("\n") == 1, out.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_an_artifact_no_plugin_knows_is_an_error(tmp_path: Path) -> None:
    write_run(tmp_path / "a")
    (tmp_path / "notes.csv").write_text("a,b\n")
    out = cli("report", "a", "--artifact", "notes.csv", "--out", "rep", cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.startswith("error: no plugin can draw artifact notes.csv"), out.stderr
    assert not (tmp_path / "rep").exists()


TOY_FIGURES = """
from pathlib import Path
from registry_core import hookimpl
from registry_core.report.figures import line_chart
from registry_core.report import ReportFigure, ReportTable

@hookimpl
def registry_core_report_tables(run):
    return [ReportTable("Toy section", "answers of the toy model", ("prompt", "answer"), (("2 + 2", "<4 & more>"),)),
            ReportTable("Toy section", "ragged", ("a", "b"), (("only one",),))]

@hookimpl
def registry_core_report_figures(run, out_dir):
    if run.name != "toy-run":
        return []
    image = line_chart(out_dir / f"{run.label}-toy.png", {"x": ([0, 1], [1, 0])}, title="t", xlabel="x", ylabel="y")
    return [ReportFigure("Toy section", "toy figure", "what the toy plugin draws", image, (("class a", "#ff0000"),)),
            ReportFigure("Toy section", "outside", "never shown", Path("/etc/hostname"))]

@hookimpl
def registry_core_report_metrics(run):
    return {"toy score": 0.123456}
"""

BROKEN_FIGURES = """
from registry_core import hookimpl

@hookimpl
def registry_core_report_figures(run, out_dir):
    raise RuntimeError("cannot draw today")
"""


def test_plugins_add_sections_and_key_figures_and_a_failing_one_is_a_warning(tmp_path: Path, make_dist,
                                                                           report_page) -> None:
    make_dist("toyfig", TOY_FIGURES)
    make_dist("zbroken", BROKEN_FIGURES)
    write_run(tmp_path / "a")
    out = cli("report", "a", "--out", "rep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "toy score 0.1235" in out.stdout
    warnings = out.stderr.splitlines()
    assert any("plugin 'zbroken' (figures of a) failed: RuntimeError: cannot draw today" in w for w in warnings)
    assert any("figure 'outside'" in w and "not inside the report folder" in w for w in warnings)
    page = report_page(tmp_path / "rep" / "index.html")
    assert "toy-section" in page.sections and "problems" in page.sections
    assert "toy figure" in page.figures and "outside" not in page.figures
    assert 'style="background:#ff0000"' in page.text and "class a" in page.text
    # a plugin's table is shown in its section, its text escaped; a ragged one is a warning, not a broken page
    assert "<caption>answers of the toy model</caption>" in page.text and "&lt;4 &amp; more&gt;" in page.text
    assert any("table 'ragged' row 0 has 1 cell(s), expected 2" in w for w in warnings)
    assert page.text.index("answers of the toy model") < page.text.index("toy figure")


def test_the_core_report_imports_no_torch_and_list_no_matplotlib(tmp_path: Path, cli_modules) -> None:
    write_run(tmp_path / "a")
    loaded = cli_modules("report", str(tmp_path / "a"), "--out", str(tmp_path / "rep"))
    assert (tmp_path / "rep" / "index.html").is_file()
    assert "torch" not in loaded and "matplotlib" in loaded
    assert "matplotlib" not in cli_modules("list")


def test_a_torn_or_foreign_metrics_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write_run(tmp_path / "a")
    first = len((tmp_path / "a" / "metrics.jsonl").read_bytes().splitlines()) + 1
    with (tmp_path / "a" / "metrics.jsonl").open("ab") as fh:
        fh.write(b'not json\n\xff\xfe{"step"\n[1, 2]\n{"step": 9, "loss": 1.5}\n')
    out = cli("report", "a", "--out", "rep", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    warnings = json.loads(out.stdout)["warnings"]
    assert [w.split(" is not ")[0] for w in warnings] == [f"a/metrics.jsonl:{first + n}" for n in (0, 1, 2)]
    assert all(w.endswith("line skipped") for w in warnings)


@pytest.mark.parametrize(("command", "code"), [
    (["report", "missing", "--out", "rep"], 1),
    (["export", "missing", "x", "--to", "hf-gpt2"], 1),
    (["export", "missing", "x", "--to", "onnx"], 2),
])
def test_report_and_export_errors_are_json_with_json(tmp_path: Path, command: list[str], code: int) -> None:
    out = cli(*command, "--json", cwd=tmp_path)
    assert out.returncode == code
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and doc["exit_code"] == code
    assert "missing" in doc["error"] or "'onnx'" in doc["error"]


WIDE_FIGURES = """
from registry_core import hookimpl
from registry_core.report import ReportFigure, ReportTable
from registry_core.report.figures import Heatmap, bar_chart, heatmaps

@hookimpl
def registry_core_report_figures(run, out_dir):
    panels = [Heatmap(f"head {h}", [[(i * j + h) % 7 for j in range(12)] for i in range(12)], "key", "query")
              for h in range(10)]
    grid = heatmaps(out_dir / f"{run.label}-wide.png", panels, title="ten heads in a row", columns=10)
    classes = [f"land-cover class {i}" for i in range(16)]
    bars = bar_chart(out_dir / f"{run.label}-bars.png", classes, {"a": [0.1] * 16, "b": [0.2] * 16, "c": [0.3] * 16},
                     title="many bars", ylabel="IoU")
    return [ReportFigure("Wide", "ten heads", "asked for ten panels in one row", grid),
            ReportFigure("Wide", "many bars", "sixteen groups of three bars", bars)]

@hookimpl
def registry_core_report_tables(run):
    word = "registry_toy.some.deeply.nested.module_name:build_the_component_with_a_long_name"
    return [ReportTable("Wide", "a long word", ("target", "path"), ((word, "/" + "/".join(["folder"] * 30)),))]
"""


def _runs_for_the_screen(tmp_path: Path) -> Path:
    """Two toy runs, the second finetuned from the first's weights (its lock records them by absolute path, as
    a real run's does) and validated once; the report given one run by absolute path."""
    base = write_run(tmp_path / "runs" / "base")
    (base / "model.safetensors").write_bytes(b"weights")
    tuned = write_run(tmp_path / "runs" / "tuned", name="tuned-toy", steps=15)  # val_loss logged at step 15 only
    lock = json.loads((tuned / "pipeline.lock.json").read_text())
    lock["files"]["weights:model.safetensors"] = {"path": str((base / "model.safetensors").resolve()), "sha256": "cd" * 32}
    (tuned / "pipeline.lock.json").write_text(json.dumps(lock))
    out = cli("report", "runs/base", str(tuned.resolve()), "--out", "rep", cwd=tmp_path)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return tmp_path / "rep" / "index.html"


def test_lock_tables_show_paths_relative_and_one_point_curves_say_so(tmp_path: Path, report_page) -> None:
    page = report_page(_runs_for_the_screen(tmp_path))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert str(tmp_path) not in page.text  # no absolute path anywhere: the page reads the same wherever it lies
    assert "<caption>tuned: components (../runs/tuned/pipeline.lock.json)</caption>" in page.text
    cells = page.text.replace("<wbr>", "")  # a long path may break after its slashes on a narrow screen
    assert "../base/model.safetensors</td>" in cells and "<td>model.safetensors</td>" in cells
    caption = page.captions[page.figures.index("tuned: loss by step")]
    assert "validation loss (1 point)" in caption and "validation loss was logged once, so it is a marked point" in caption
    assert '<a href="tuned-curves.png" title="open the full-size image"><img src="tuned-curves.png"' in page.text


def test_wide_figures_wrap_to_an_800_px_screen(tmp_path: Path) -> None:
    """At their natural size no figure is wider than MAX_WIDTH: an 800-px screen shows its labels unscaled."""
    import numpy as np
    from PIL import Image

    from registry_core.report.figures import DPI, MAX_WIDTH, Heatmap, confusion_figure, heatmaps, image_panels

    limit = round(MAX_WIDTH * DPI)
    drawn = {
        "heads": heatmaps(tmp_path / "h.png", [Heatmap(f"{i}", np.eye(4)) for i in range(10)], title="t", columns=10),
        "maps": image_panels(tmp_path / "m.png", [(f"{i}", np.zeros((8, 8, 3))) for i in range(3)], title="t"),
        "matrix": confusion_figure(tmp_path / "c.png", np.arange(144).reshape(12, 12), [f"class {i}" for i in range(12)],
                                   title="t"),
    }
    sizes = {name: Image.open(png).size for name, png in drawn.items()}
    assert all(width <= limit for width, _ in sizes.values()), sizes
    assert sizes["heads"][1] > sizes["heads"][0] and sizes["maps"][1] > sizes["maps"][0]  # wrapped onto rows
    with pytest.raises(ValueError, match="a \\(2, 2\\) matrix for 3 class name"):
        confusion_figure(tmp_path / "bad.png", [[1, 2], [3, 4]], ["a", "b", "c"], title="t")


@pytest.mark.slow
def test_the_page_fits_the_screen_in_chromium(tmp_path: Path, make_dist, page_layout) -> None:
    """Headless Chromium at 1400 and 800 px: every image loads and nothing is wider than the window, wide figures,
    long words in tables and the lock tables included."""
    make_dist("toywide", WIDE_FIGURES)
    index = _runs_for_the_screen(tmp_path)
    for width in (1400, 800):
        layout = page_layout(index, width)
        assert layout.broken == [] and layout.images == 6, layout  # per run: its curves, ten heads, many bars
        assert layout.scroll_width <= layout.client_width, layout.too_wide
        assert layout.too_wide == [], width
        assert min(layout.scale.values()) > 0.95, layout.scale  # figures fit at (about) their natural size
