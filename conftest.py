"""Shared fixtures: throw-away distributions that register plugins through real entry points."""

from __future__ import annotations

import base64
import importlib
import io
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import registry_core._registry


@dataclass
class FakeDist:
    """A distribution written as ``*.dist-info`` + module on a sys.path entry."""

    site: Path
    name: str
    module: str
    entry_point: str


@pytest.fixture
def site_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path (and PYTHONPATH, for subprocesses) holding throw-away distributions."""
    site = tmp_path / "site"
    site.mkdir()
    # A process-wide registry first built while throw-away distributions are installed must not outlive
    # them: later tests in this worker would compose with them (geoextras' `patch` replacing gfm's).
    monkeypatch.setattr(registry_core._registry, "_REGISTRY", registry_core._registry._REGISTRY)
    monkeypatch.syspath_prepend(str(site))
    # keep what PYTHONPATH already names (a worktree's sources ahead of the editable installs)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))
    importlib.invalidate_caches()
    yield site
    importlib.invalidate_caches()


@pytest.fixture
def make_dist(site_dir: Path) -> Callable[..., FakeDist]:
    """Write a distribution whose entry point ``entry_point`` in group registry_core loads ``source``.

    The module gets a unique name per call, so tests stay independent inside one interpreter.
    """

    def make(entry_point: str, source: str, dist_name: str | None = None, version: str = "1.2.3") -> FakeDist:
        module = f"rc_test_{entry_point.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        dist_name = dist_name or f"fake-{entry_point}"
        (site_dir / f"{module}.py").write_text(textwrap.dedent(source))
        info = site_dir / f"{dist_name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[registry_core]\n{entry_point} = {module}\n")
        importlib.invalidate_caches()
        return FakeDist(site_dir, dist_name, module, entry_point)

    return make


@pytest.fixture
def torch_one_thread() -> Iterator[None]:
    """One torch intra-op thread: tiny models gain nothing from more, and they stall badly on a busy 2-core machine.

    Test modules opt in with ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``; torch is imported
    here, lazily, so test directories that never use it do not pay for the import.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli_modules(tmp_path: Path) -> Callable[..., list[str]]:
    """Run ``python -m registry_core *args`` in a fresh interpreter; the names of the modules it loaded."""

    def run(*args: str) -> list[str]:
        code = (
            "import runpy, sys, json, contextlib, io\n"
            f"sys.argv = ['registry_core', *{list(args)!r}]\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        runpy.run_module('registry_core', run_name='__main__')\n"
            "    except SystemExit:\n        pass\n"
            "print(json.dumps(sorted(sys.modules)))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
        loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
        return loaded

    return run


@dataclass
class ReportPage:
    """A written report as a reader sees it: section ids, figure titles and captions (in order), its images."""

    index: Path
    sections: list[str]
    figures: list[str]
    captions: list[str]
    images: list[Path]
    text: str


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.sources: list[str] = []
        self.captions: list[str] = []
        self.titles: list[str] = []
        self._in_caption = self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id"):
            self.sections.append(str(a["id"]))
        elif tag == "img":
            self.sources.append(str(a.get("src") or ""))
        elif tag == "a" and str(a.get("href") or "").lower().endswith(".png"):
            self.sources.append(str(a["href"]))
        elif tag == "figcaption":
            self._in_caption = True
            self.captions.append("")
        elif tag == "b" and self._in_caption:
            self._in_title = True
            self.titles.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "figcaption":
            self._in_caption = False
        elif tag == "b":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles[-1] += data
        elif self._in_caption:
            self.captions[-1] += data


def _png_of(index: Path, src: str) -> tuple[Path | None, bytes]:
    """The bytes an ``<img src>`` names: a file beside the page or a base64 data URI (no network allowed)."""
    assert "://" not in src, f"{index}: image {src!r} is not local"
    if src.startswith("data:"):
        head, _, payload = src.partition(",")
        assert head == "data:image/png;base64", f"{index}: data URI {head!r} is not a base64 PNG"
        return None, base64.b64decode(payload)
    path = (index.parent / src).resolve()
    assert path.is_relative_to(index.parent.resolve()), f"{index}: image {src} lies outside the report folder"
    assert path.is_file(), f"{index}: image {src} does not exist"
    return path, path.read_bytes()


def read_report(index: Path) -> ReportPage:
    """Parse ``index.html``: every referenced image must exist (or decode) and be a valid PNG that PIL decodes."""
    from PIL import Image

    text = index.read_text(encoding="utf-8")
    assert "<script" not in text.lower(), f"{index} holds a script"
    parser = _PageParser()
    parser.feed(text)
    images = []
    for src in dict.fromkeys(parser.sources):  # a figure's <img> and its link to the full-size PNG: one image
        path, data = _png_of(index, src)
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{index}: image {src} is not a PNG"
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decodes every pixel
            assert im.width > 10 and im.height > 10
        if path is not None:
            images.append(path)
    return ReportPage(index, parser.sections, parser.titles, parser.captions, images, text)


@pytest.fixture
def report_page() -> Callable[[Path], ReportPage]:
    """``report_page(index)``: the parsed page of a written report, every image checked (see ``read_report``)."""
    return read_report


#: The system's Chromium and its driver (Debian's ``chromium`` and ``chromium-driver``; .ci/run installs them).
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: Every element wider than the viewport or reaching past its right edge, every image that did not load.
_LAYOUT_JS = """
const width = document.documentElement.clientWidth;
const wide = [];
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width > width + 0.5 || r.right > width + 0.5 || r.left < -0.5) {
    const what = (el.getAttribute('src') || el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60);
    wide.push(`<${el.tagName.toLowerCase()}> ${Math.round(r.left)}..${Math.round(r.right)} px: ${what}`);
  }
}
const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'));
const scale = Object.fromEntries([...document.images].filter(i => i.naturalWidth > 0)
  .map(i => [i.getAttribute('src'), i.getBoundingClientRect().width / i.naturalWidth]));
return [window.innerWidth, document.documentElement.scrollWidth, width, wide, broken, document.images.length, scale];
"""


@dataclass
class PageLayout:
    """A page as headless Chromium laid it out in a window ``width`` CSS pixels wide."""

    width: int
    #: ``document.documentElement.scrollWidth`` and ``clientWidth`` (the viewport less any scroll bar).
    scroll_width: int
    client_width: int
    #: Elements wider than the viewport or reaching past its edge, as ``<tag> left..right px: text``.
    too_wide: list[str]
    #: The ``src`` of every image that did not load (naturalWidth 0), and how many images the page has.
    broken: list[str]
    images: int
    #: Each image's shown width over its natural width (below 1: shrunk to fit, its labels with it).
    scale: dict[str, float]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium (Selenium driving the system's chromium through its chromedriver), one per worker;
    None when /usr/bin/chromium is not installed (``page_layout`` then skips the test at that point)."""
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        yield None
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-extensions", "--no-first-run", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page_layout(chromium: Any) -> Callable[[Path, int], PageLayout]:
    """``page_layout(index, width)``: the page opened from disk in a window ``width`` pixels wide (its
    innerWidth), after every image loaded, and what did not fit. Without Chromium the test is skipped there, so a
    test checks everything else first and the layout last."""

    def layout(index: Path, width: int) -> PageLayout:
        if chromium is None:
            pytest.skip(f"no {CHROMIUM} / {CHROMEDRIVER} to lay the report out in: apt-get install chromium "
                        "chromium-driver (.ci/run does)")
        chromium.set_window_size(width, 900)
        inner = int(chromium.execute_script("return window.innerWidth"))
        if inner != width:  # the window's frame takes some of its outer width
            chromium.set_window_size(2 * width - inner, 900)
        chromium.get(index.resolve().as_uri())  # returns after the load event: every image loaded or failed
        inner, scroll, client, wide, broken, images, scale = chromium.execute_script(_LAYOUT_JS)
        assert inner == width, f"the window is {inner} px wide inside, not {width}"
        return PageLayout(width, int(scroll), int(client), list(wide), list(broken), int(images),
                          {str(k): float(v) for k, v in scale.items()})

    return layout


@pytest.fixture
def install_example(site_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Install a stand-alone example package as pip would list it: its code on the path (here and in
    subprocesses), a dist-info written from its pyproject.toml with its real entry points."""

    def install(package: Path) -> None:
        import tomllib

        meta = tomllib.loads((package / "pyproject.toml").read_text())["project"]
        info = site_dir / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
        eps = "\n".join(f"{k} = {v}" for k, v in meta["entry-points"]["registry_core"].items())
        (info / "entry_points.txt").write_text(f"[registry_core]\n{eps}\n")
        monkeypatch.syspath_prepend(str(package))
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(package), os.environ["PYTHONPATH"]]))  # site_dir set it
        importlib.invalidate_caches()

    return install


@pytest.fixture
def toy_plugin(site_dir: Path) -> None:
    """The toy plugin of tests/pipeline (toy_plugin.py + toy_parts.py) installed as distribution rc-toy 0.3.0."""
    import shutil

    toy = Path(__file__).parent / "tests" / "pipeline"
    shutil.copy(toy / "toy_plugin.py", site_dir / "rc_toy_plugin.py")
    shutil.copy(toy / "toy_parts.py", site_dir / "rc_toy_parts.py")
    info = site_dir / "rc_toy-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rc-toy\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text("[registry_core]\ntoy = rc_toy_plugin\n")
    importlib.invalidate_caches()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A hub on loopback (``registry_core.testing.LoopbackHub``) that ``huggingface_hub`` downloads from: the
    environment points HF_ENDPOINT at it and HF_HOME at a fresh folder (subprocesses inherit both), no token,
    online; and the client's import-time copies of those settings are fixed for this process too."""
    from registry_core.testing import LoopbackHub, hub_environment

    with LoopbackHub() as running:
        for key, value in hub_environment(running.endpoint, tmp_path / "hf-home").items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        try:
            from huggingface_hub import constants
        except ImportError:
            pass
        else:
            monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
            # with telemetry on, the client's first request asks huggingface.co for its agent list: stay local
            monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        yield running
