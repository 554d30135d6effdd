"""Cards of named STAC collections: ``stac-zarr`` preset to Sentinel-2 L2A, Landsat Collection 2 L2 and HLS at the
APIs that serve them (Earth Search, Planetary Computer, NASA CMR-STAC), with their bands from our band catalog,
their cloud-mask asset and scale / offset (no heavy imports, no network).

Each card reads the six bands the Prithvi-EO models take (blue, green, red, narrow NIR, SWIR 1, SWIR 2) under the
asset keys its API uses; a user adds ``bbox`` and ``datetime`` and may change the bands, resolution or mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry_core import ComponentSpec, StacCard
from registry_gfm.bands import get_sensor
from registry_gfm.ingest.specs import StacZarrConfig

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"
CMR_LPCLOUD = "https://cmr.earthdata.nasa.gov/stac/LPCLOUD"

_S2_LICENCE = "Copernicus Sentinel data terms (free, full and open; attribute 'Copernicus Sentinel data [year]')"
_LANDSAT_LICENCE = "USGS public domain (no restrictions; cite the USGS as the source)"
_HLS_LICENCE = "NASA EOSDIS open data (no restrictions; cite the HLS v2.0 products)"


@dataclass(frozen=True)
class _Product:
    sensor: str  # band-catalog key
    assets: tuple[str, ...]  # asset keys of the six bands at this API
    mask: str  # cloud_mask option
    mask_asset: str
    resolution: float
    scaling: str
    citation: str


_S2_CITE = "Copernicus Sentinel-2 MSI Level-2A, ESA"
_LANDSAT_CITE = "Landsat 8-9 OLI/TIRS Collection 2 Level-2 Science Products, USGS (doi:10.5066/P9OGBGM6)"
_S2_SCALING = ("dn x 0.0001; processing baseline 04.00 and later stores dn + 1000 (offset -0.1, from the items' "
               "raster:bands or s2:processing_baseline)")
_LANDSAT_SCALING = "reflectance = dn x 2.75e-5 - 0.2"
_HLS_SCALING = "reflectance = dn x 0.0001 (nodata -9999)"

_PRODUCTS = {
    "es-s2": _Product("sentinel-2-l2a", ("blue", "green", "red", "nir08", "swir16", "swir22"), "scl", "scl", 20.0,
                      _S2_SCALING, _S2_CITE),
    "pc-s2": _Product("sentinel-2-l2a", ("B02", "B03", "B04", "B8A", "B11", "B12"), "scl", "SCL", 20.0,
                      _S2_SCALING, _S2_CITE),
    "landsat": _Product("landsat-8-9-c2-l2", ("blue", "green", "red", "nir08", "swir16", "swir22"), "qa_pixel",
                        "qa_pixel", 30.0, _LANDSAT_SCALING, _LANDSAT_CITE),
    "hls-l30": _Product("hls-l30", ("B02", "B03", "B04", "B05", "B06", "B07"), "fmask", "Fmask", 30.0, _HLS_SCALING,
                        "HLS Operational Land Surface Reflectance v2.0 L30, NASA LP DAAC (doi:10.5067/HLS/HLSL30.002)"),
    "hls-s30": _Product("hls-s30", ("B02", "B03", "B04", "B8A", "B11", "B12"), "fmask", "Fmask", 30.0, _HLS_SCALING,
                        "HLS Operational Land Surface Reflectance v2.0 S30, NASA LP DAAC (doi:10.5067/HLS/HLSS30.002)"),
}


def _bands(product: _Product) -> str:
    """``asset key: band id (common name, wavelength, native resolution)`` for each band, from the band catalog."""
    sensor = get_sensor(product.sensor)
    shown = []
    for key in product.assets:
        band = sensor.band(key)
        shown.append(f"{key}: {band.id} ({band.common_name}, {band.wavelength:g} um, {band.resolution:g} m)")
    return "; ".join(shown)


def _card(name: str, catalog: str, collection: str, product: str, summary: str, licence: str, source: str,
          signing: str | None = None, credentials: str | None = None, **about: Any) -> ComponentSpec:
    p = _PRODUCTS[product]
    return ComponentSpec(
        kind="data_source",
        name=name,
        target="registry_gfm.ingest.stac_zarr:build_stac_zarr",
        summary=summary,
        modality="imagery",
        tags=("gfm", "stac", "zarr", "ingest"),
        config=StacZarrConfig,
        provides={"bands": None, "tokens": "continuous"},
        card=StacCard(
            catalog=catalog, collection=collection, licence=licence, source=source, citation=p.citation,
            signing=signing, credentials=credentials,
            about={"sensor": get_sensor(p.sensor).title, "bands": _bands(p), "cloud mask": f"asset {p.mask_asset} (cloud_mask = {p.mask})",
                   "scale / offset": p.scaling, **about},
            options={"assets": list(p.assets), "cloud_mask": p.mask, "mask_asset": p.mask_asset,
                     "resolution": p.resolution, "area_required": True},
        ),
    )


SPECS: list[ComponentSpec] = [
    _card("earth-search-s2-l2a", EARTH_SEARCH, "sentinel-2-l2a", "es-s2",
          "Sentinel-2 L2A surface reflectance as COGs on AWS, through Element 84's Earth Search (public, no login).",
          _S2_LICENCE, "https://registry.opendata.aws/sentinel-2-l2a-cogs/",
          grid="the items' UTM zone (MGRS tiles of 109.8 km), resampled to 20 m"),
    _card("earth-search-landsat-c2-l2", EARTH_SEARCH, "landsat-c2-l2", "landsat",
          "Landsat 8/9 Collection 2 Level-2 surface reflectance through Earth Search (USGS requester-pays bucket).",
          _LANDSAT_LICENCE, "https://www.usgs.gov/landsat-missions/landsat-collection-2-level-2-science-products",
          credentials="aws-requester-pays", grid="the items' UTM zone (WRS-2 scenes), 30 m"),
    _card("planetary-computer-s2-l2a", PLANETARY_COMPUTER, "sentinel-2-l2a", "pc-s2",
          "Sentinel-2 L2A surface reflectance on Microsoft Planetary Computer (asset links signed with its SAS tokens).",
          _S2_LICENCE, "https://planetarycomputer.microsoft.com/dataset/sentinel-2-l2a",
          signing="planetary-computer", grid="the items' UTM zone (MGRS tiles of 109.8 km), resampled to 20 m"),
    _card("planetary-computer-landsat-c2-l2", PLANETARY_COMPUTER, "landsat-c2-l2", "landsat",
          "Landsat 8/9 Collection 2 Level-2 surface reflectance on Microsoft Planetary Computer (signed links).",
          _LANDSAT_LICENCE, "https://planetarycomputer.microsoft.com/dataset/landsat-c2-l2",
          signing="planetary-computer", grid="the items' UTM zone (WRS-2 scenes), 30 m"),
    _card("hls-l30", CMR_LPCLOUD, "HLSL30_2.0", "hls-l30",
          "Harmonized Landsat Sentinel-2 v2.0, Landsat 8/9 part (L30), from NASA CMR-STAC (Earthdata login).",
          _HLS_LICENCE, "https://lpdaac.usgs.gov/products/hlsl30v002/", credentials="earthdata",
          grid="MGRS tiles in UTM, 30 m (the grid of the Prithvi-EO pretraining data)"),
    _card("hls-s30", CMR_LPCLOUD, "HLSS30_2.0", "hls-s30",
          "Harmonized Landsat Sentinel-2 v2.0, Sentinel-2 part (S30), from NASA CMR-STAC (Earthdata login).",
          _HLS_LICENCE, "https://lpdaac.usgs.gov/products/hlss30v002/", credentials="earthdata",
          grid="MGRS tiles in UTM, 30 m (the grid of the Prithvi-EO pretraining data)"),
]
