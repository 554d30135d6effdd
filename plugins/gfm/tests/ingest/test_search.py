"""STAC search for stac-zarr: a STAC API (rustac) and a static catalog.json give the same items."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from registry_gfm.ingest.cloud_mask import MASKS, clear_pixels
from registry_gfm.ingest.search import SearchError, SearchParams, matches_filter, search_items

if TYPE_CHECKING:
    from tests.gfm.conftest import IngestCatalog

CASES: list[dict[str, Any]] = [
    {"collections": ("lsat7",)},
    {"collections": ("lsat7",), "datetime": "2000-03-15/2000-05-01"},
    {"collections": ("lsat7",), "datetime": "2000-04-01"},
    {"collections": ("lsat7",), "query": {"eo:cloud_cover": {"lt": 8}}},
    {"collections": ("lsat7",), "filter": {"op": "and", "args": [
        {"op": ">", "args": [{"property": "eo:cloud_cover"}, 0]},
        {"op": "=", "args": [{"property": "platform"}, "landsat-7"]}]}},
    {"collections": ("lsat7",), "sortby": "-eo:cloud_cover", "max_items": 2},
    {"collections": ("lsat7", "s2"), "max_items": 4},
    {"collections": ("utm",), "bbox": (-80.0, 35.0, -78.0, 36.0)},
    {"collections": ("utm",), "bbox": (10.0, 10.0, 11.0, 11.0)},
    {"collections": ("s2", "utm"), "intersects": {"type": "Polygon", "coordinates": [
        [[-80.0, 35.1], [-79.8, 35.1], [-79.8, 35.3], [-80.0, 35.3], [-80.0, 35.1]]]}},
]
EXPECTED = [
    ["lsat7-2000-03-01", "lsat7-2000-04-01", "lsat7-2000-05-01"],
    ["lsat7-2000-04-01", "lsat7-2000-05-01"],
    ["lsat7-2000-04-01"],
    ["lsat7-2000-03-01", "lsat7-2000-05-01"],
    ["lsat7-2000-04-01", "lsat7-2000-05-01"],
    ["lsat7-2000-04-01", "lsat7-2000-05-01"],
    ["lsat7-2000-03-01", "lsat7-2000-04-01", "lsat7-2000-05-01", "s2-0"],
    ["utm-0", "utm-1"],
    None,  # nothing there: SearchError
    ["utm-0", "utm-1"],
]


@pytest.mark.parametrize(("case", "expected"), list(zip(CASES, EXPECTED)))
def test_api_and_static_catalog_agree(ingest_catalog: IngestCatalog, stac_api: str, case: dict[str, Any],
                                      expected: list[str] | None) -> None:
    for catalog in (stac_api, str(ingest_catalog.catalog_json)):
        params = SearchParams(catalog=catalog, **case)
        if expected is None:
            with pytest.raises(SearchError, match=f"STAC search of {catalog} found no items"):
                search_items(params)
        else:
            assert [it.id for it in search_items(params)] == expected, catalog


def test_static_catalog_assets_become_absolute(ingest_catalog: IngestCatalog) -> None:
    items = search_items(SearchParams(str(ingest_catalog.catalog_json), collections=("s2",)))
    href = items[0].assets["B04"].href
    assert href.startswith(str(ingest_catalog.root)) and href.endswith("s2_0_B04.tif")


def test_missing_catalog_file_is_named(tmp_path: Any) -> None:
    with pytest.raises(SearchError, match=r"nowhere/catalog\.json does not exist"):
        search_items(SearchParams(str(tmp_path / "nowhere" / "catalog.json")))


@pytest.fixture
def failing_api() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server that answers every request with 503, recording the paths asked for."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(503)
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stac", seen
    server.shutdown()
    server.server_close()


def test_transient_errors_are_retried_then_reported_with_the_url(failing_api: tuple[str, list[str]]) -> None:
    url, seen = failing_api
    with pytest.raises(SearchError, match=f"STAC search of {url} failed after 2 retries"):
        search_items(SearchParams(url, collections=("x",)), retries=2)
    assert len(seen) == 3  # first try + 2 retries, with backoff in between


def test_cql2_filter_operators() -> None:
    props = {"eo:cloud_cover": 12, "platform": "landsat-8", "gsd": None}
    assert matches_filter(props, {"op": "between", "args": [{"property": "eo:cloud_cover"}, 10, 20]})
    assert matches_filter(props, {"op": "in", "args": [{"property": "platform"}, ["landsat-8", "landsat-9"]]})
    assert matches_filter(props, {"op": "not", "args": [{"op": "<", "args": [{"property": "eo:cloud_cover"}, 5]}]})
    assert matches_filter(props, {"op": "isNull", "args": [{"property": "gsd"}]})
    assert not matches_filter(props, {"op": "<", "args": [{"property": "missing"}, 5]})
    with pytest.raises(SearchError, match="operator 'like'"):
        matches_filter(props, {"op": "like", "args": [{"property": "platform"}, "landsat%"]})


def test_cloud_masks_decode_classes_and_bits() -> None:
    scl = np.array([0, 3, 4, 6, 8, 9, 10, 11])
    assert clear_pixels(scl, MASKS["scl"]).tolist() == [False, False, True, True, False, False, False, True]
    assert clear_pixels(scl, MASKS["scl"], (11,)).tolist() == [True, True, True, True, True, True, True, False]
    qa = np.array([1 << 6, 1 << 3, 1 << 4, 1 << 1, (1 << 6) | (1 << 5), 1], dtype=np.uint16)
    assert clear_pixels(qa, MASKS["qa_pixel"]).tolist() == [True, False, False, False, True, False]
    fmask = np.array([0, 1 << 1, 1 << 2, 1 << 3, 1 << 5, 255], dtype=np.uint8)
    assert clear_pixels(fmask, MASKS["fmask"]).tolist() == [True, False, False, False, True, False]
