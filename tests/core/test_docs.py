"""``python -m registry_core docs``: the committed reference is current, stable, and only the bundled plugins'."""

from __future__ import annotations

import posixpath
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry_core import Card
from registry_core._registry import get_registry
from registry_core.cli import build_parser, main
from registry_core.docs import bundled_registry, reference_pages, write_pages
from registry_core.docs._generate import README_BEGIN, README_END, readme_datasets, update_readme
from registry_core.docs._markdown import HEADER

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"
REFRESH = "python -m registry_core docs docs/reference"

THIRD_PARTY = """
from registry_core import CommandSpec, ComponentSpec, KindSpec, hookimpl

def add(parser):
    parser.add_argument("--level", type=int, default=3, help="how much")

def run(args):
    return 0

@hookimpl
def registry_core_kinds():
    return [KindSpec("sampler", "Picks the samples of a split.")]

@hookimpl
def registry_core_components():
    return [
        ComponentSpec("tokenizer", "patch", "third_pkg.tok:Tok", "A patch tokenizer of a third party.",
                      modality="imagery", replaces="gfm:patch"),
        ComponentSpec("sampler", "uniform", "third_pkg.sampler:Uniform", "Every sample equally often."),
    ]

@hookimpl
def registry_core_commands():
    return [CommandSpec("third", "a third-party command", arguments=__name__ + ":add", handler=__name__ + ":run")]
"""


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process-wide registry rebuilt before and after (a test installs a distribution meanwhile)."""
    get_registry(reload=True)
    yield
    monkeypatch.undo()  # take the throw-away site off sys.path first, so the reload forgets its plugin
    get_registry(reload=True)


def test_committed_reference_is_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs", str(tmp_path)]) == 0
    assert "pages in" in capsys.readouterr().out
    fresh, committed = _tree(tmp_path), _tree(REFERENCE) if REFERENCE.is_dir() else {}
    stale = sorted(p for p in fresh.keys() | committed.keys() if fresh.get(p) != committed.get(p))
    assert not stale, (f"docs/reference is out of date ({len(stale)} file(s): {', '.join(stale[:20])}); "
                       f"refresh it with `{REFRESH}` and commit the result")


def test_pages_are_stable_and_machine_free(tmp_path: Path) -> None:
    pages = reference_pages(bundled_registry(), build_parser)
    assert pages == reference_pages(bundled_registry(), build_parser)
    assert {"index.md", "cli.md", "configuration.md", "ports.md"} <= set(pages)
    machine = [str(Path.home()), sys.prefix, str(REFERENCE.parents[1])]
    for rel, text in pages.items():
        assert text.startswith(HEADER + "\n") and text.endswith("\n") and not text.endswith("\n\n"), rel
        assert not any(m in text for m in machine), f"{rel} names a path of this machine"
    # every command of the parser is documented, plugin commands with their arguments
    assert "## generate" in pages["cli.md"] and "`--prompt PROMPT` | required" in pages["cli.md"]
    assert "## predict" in pages["cli.md"] and "`--scheduler SCHEDULER` | `threads`" in pages["cli.md"]


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as dashes."""
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in text.splitlines() if line.startswith("#")}


def test_every_link_of_the_reference_resolves() -> None:
    pages = reference_pages(bundled_registry(), build_parser)
    broken = []
    for rel, text in pages.items():
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if link.startswith("https://"):
                continue  # a card's hub page: outside the reference, and tests never reach the internet
            path, _, anchor = link.partition("#")
            target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), path)) if path else rel
            if target in pages:
                if anchor and anchor not in _anchors(pages[target]):
                    broken.append(f"{rel}: {link}")
            elif not (REFERENCE / target).exists():  # a guide beside the reference (../contracts.md)
                broken.append(f"{rel}: {link}")
    assert not broken, broken


def test_out_that_is_a_file_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "reference.md"
    target.write_text("not a folder\n")
    assert main(["docs", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(target) in err and "\n" not in err
    assert target.read_text() == "not a folder\n"
    assert main(["docs", str(target / "sub")]) == 1  # a parent that is a file: cannot write
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_rewrite_keeps_hand_written_files_and_drops_stale_pages(tmp_path: Path) -> None:
    pages = {"index.md": f"{HEADER}\n\n# a\n", "components/x/y.md": f"{HEADER}\n\n# y\n"}
    (tmp_path / "components" / "old").mkdir(parents=True)
    (tmp_path / "components" / "old" / "gone.md").write_text(f"{HEADER}\n\n# gone\n")
    (tmp_path / "notes.md").write_text("# mine\n")
    assert write_pages(tmp_path, pages) == (["index.md", "components/x/y.md"], ["components/old/gone.md"])
    assert (tmp_path / "notes.md").read_text() == "# mine\n"
    assert not (tmp_path / "components" / "old").exists()
    assert write_pages(tmp_path, pages) == ([], [])  # nothing changed: nothing written


def test_third_party_plugin_stays_out_unless_asked(make_dist, fresh_registry: None, tmp_path: Path) -> None:
    before = reference_pages(bundled_registry(), build_parser)
    make_dist("thirdparty", THIRD_PARTY, dist_name="third-dist")
    assert reference_pages(bundled_registry(), build_parser) == before

    get_registry(reload=True)
    assert main(["docs", str(tmp_path), "--all-plugins"]) == 0
    tree = _tree(tmp_path)
    assert "components/sampler/uniform.md" in tree and "third-dist" in tree["index.md"]
    assert "`thirdparty:patch`" in tree["components/tokenizer/patch.gfm.md"]  # replaced by
    assert "## third" in tree["cli.md"] and "`--level LEVEL` | `3` | how much" in tree["cli.md"]


def test_the_cards_page_lists_every_model_and_dataset_card() -> None:
    reg = bundled_registry()
    page = reference_pages(reg, build_parser)["cards.md"]
    models, _, datasets = page.partition("## Datasets")
    assert "## Pretrained models" in models
    for spec in reg.list():
        if spec.card is None:
            continue
        section = datasets if spec.card.category == "dataset" else models
        where = spec.card.repo if isinstance(spec.card, Card) else spec.card.catalog
        assert f"[`{spec.name}`](components/{spec.kind}/{spec.name}.md)" in section and where in section


def test_the_readme_datasets_table_is_current() -> None:
    readme = (REFERENCE.parents[1] / "README.md").read_text(encoding="utf-8")
    head, _, rest = readme.partition(README_BEGIN)
    table_md, _, _ = rest.partition(README_END)
    assert head and rest, "README.md lacks the generated datasets table's markers"
    assert table_md.strip("\n") == readme_datasets(bundled_registry()), (
        f"README.md's datasets table is out of date; refresh it with `{REFRESH} --readme README.md`")
    assert "earth-search-s2-l2a" in table_md and "tinystories" in table_md


def test_update_readme_needs_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n")
    with pytest.raises(ValueError, match="lacks the lines"):
        update_readme(readme, "| a |")
    readme.write_text(f"# x\n{README_BEGIN}\nold\n{README_END}\ntail\n")
    assert update_readme(readme, "| new |") and readme.read_text() == f"# x\n{README_BEGIN}\n| new |\n{README_END}\ntail\n"
    assert not update_readme(readme, "| new |")
