"""Ingest never hangs or allocates without bound: a silent STAC API times out, impossible options are refused."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry_core import get_registry
from registry_gfm.dask_runtime import MAX_LOCAL_WORKERS
from registry_gfm.errors import PredictError
from registry_gfm.ingest.plan import PlanError
from registry_gfm.ingest.search import SearchError
from registry_gfm.predict import check_scheduler

ROOT = Path(__file__).resolve().parents[4]
CATALOG = ROOT / "tests" / "data" / "gfm_lsat7" / "stac" / "catalog.json"


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback HTTP "server" that accepts every connection and never answers; the accepted sockets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)  # held open, never read from or written to

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/stac", accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def build(**options: Any) -> Any:
    return get_registry().build("data_source", "stac-zarr", **options)


def test_a_stac_api_that_never_answers_times_out_retries_and_names_the_url(
        silent_server: tuple[str, list[socket.socket]], tmp_path: Path) -> None:
    url, accepted = silent_server
    source = build(catalog=url, assets=["B1"], store=str(tmp_path / "c.zarr"), timeout=0.2, retries=2)
    with pytest.raises(SearchError, match=rf"STAC search of {url} failed after 2 retries: .*[Tt]imed? ?out"):
        source.prepare()
    assert len(accepted) == 3  # the first request and its two retries, each given up after the timeout
    assert not (tmp_path / "c.zarr").exists()


def test_a_grid_too_large_is_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    source = build(catalog=str(CATALOG), collections=["landsat7-scene"], assets=["blue", "red"],
                   resolution=0.001, store=str(tmp_path / "c.zarr"))
    with pytest.raises(PlanError, match=r"the target grid is \d+ x \d+ pixels .* at resolution 0.001 .*"
                                        r"1 frame\(s\) x 2 band\(s\) of uint8 would take [\d.e+]+ GiB; "
                                        r"raise 'resolution' or shrink 'bbox'"):
        source.prepare()
    assert not (tmp_path / "c.zarr").exists()


def ingest(tmp_path: Path, *sets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry_core", "ingest", str(ROOT / "examples" / "lsat7-ingest.toml"),
                           "--set", f"data.catalog={CATALOG}", "--set", "data.store=c.zarr",
                           *(x for s in sets for x in ("--set", s))],
                          capture_output=True, text=True, cwd=tmp_path, check=False)


@pytest.mark.parametrize(("override", "message"), [
    ("data.resolution=0", "[data.resolution] option 'resolution' must be > 0 (pixel size in units of `crs`), got 0.0"),
    ("data.resolution=-30", "[data.resolution] must be >= 0, got -30.0"),
    ("data.scheduler='local:0'",
     f"[data.scheduler] option 'scheduler' 'local:0' asks for 0 worker processes; expected local:N with 1 <= N <= "
     f"{MAX_LOCAL_WORKERS}"),
    ("data.scheduler='local:-2'", "[data.scheduler] option 'scheduler' 'local:-2' asks for -2 worker processes"),
    ("data.scheduler='local:many'", "[data.scheduler] option 'scheduler' 'local:many' is unknown; expected threads"),
    ("data.timeout=0", "[data.timeout] must be >= 0.01, got 0.0"),
    ("data.timeout=nan", "[data.timeout] expected a finite number, got nan"),
])
def test_impossible_ingest_options_are_config_errors(tmp_path: Path, override: str, message: str) -> None:
    out = ingest(tmp_path, override)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {ROOT / 'examples' / 'lsat7-ingest.toml'}: {message}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec", ["local:0", "local:-1", f"local:{MAX_LOCAL_WORKERS + 1}", "local:x"])
def test_predict_refuses_the_same_impossible_schedulers(spec: str) -> None:
    with pytest.raises(PredictError, match=rf"^--scheduler '{spec}' "):
        check_scheduler(spec)
    assert check_scheduler("local:2") == "local:2"
