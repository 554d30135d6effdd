"""Fixtures of registry-geoextras' own tests: the installed registry and a small Landsat 7 datacube.

The datacube is ingested once per session from a static STAC catalog of the Landsat 7 scene that the
registry_core repository ships (``tests/data/gfm_lsat7/stac/catalog.json``, found relative to this file), or
from the catalog named by ``GEOEXTRAS_LSAT7_CATALOG``; tests that need it are skipped when neither exists.
``GEOEXTRAS_LSAT7_STORE`` names a datacube ingested already (``ingest examples/lsat7-ingest.toml``) instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from registry_core import Registry, get_registry

HERE = Path(__file__).resolve().parent
#: The package folder (pipeline.toml) and, when it sits in the registry_core repository, the repository.
PACKAGE = HERE.parent
REPOSITORY = PACKAGE.parents[1]
BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def lsat7_catalog() -> Path | None:
    """The Landsat 7 scene's catalog.json: ``GEOEXTRAS_LSAT7_CATALOG``, else the repository's test data."""
    given = os.environ.get("GEOEXTRAS_LSAT7_CATALOG")
    path = Path(given) if given else REPOSITORY / "tests" / "data" / "gfm_lsat7" / "stac" / "catalog.json"
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The process-wide registry: registry-geoextras must be installed (its entry point found)."""
    reg = get_registry()
    if "geoextras" not in {p.name for p in reg.plugins()}:
        pytest.fail("registry-geoextras is not installed: pip install -e examples/thirdparty-plugin --no-deps")
    return reg


@pytest.fixture(scope="session")
def lsat7_store(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Path:
    """The Landsat 7 scene ingested through stac-zarr into a Zarr datacube (once per session)."""
    given = os.environ.get("GEOEXTRAS_LSAT7_STORE")
    if given:  # a datacube ingested already (ci.sh makes one for its run too)
        if not Path(given, "zarr.json").is_file():
            pytest.fail(f"GEOEXTRAS_LSAT7_STORE={given} is not a Zarr datacube (no zarr.json)")
        return Path(given)
    catalog = lsat7_catalog()
    if catalog is None:
        pytest.skip("no Landsat 7 catalog: set GEOEXTRAS_LSAT7_CATALOG to tests/data/gfm_lsat7/stac/catalog.json")
    store = tmp_path_factory.mktemp("lsat7") / "datacube.zarr"
    source = registry.build("data_source", "stac-zarr", catalog=str(catalog), collections=["landsat7-scene"],
                            assets=BANDS, chunk_size=64, store=str(store), scheduler="synchronous")
    source.prepare()
    return store
