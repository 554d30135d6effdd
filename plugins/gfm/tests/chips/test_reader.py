"""The fill-aware stackstac reader: the masked read is skipped only where it cannot change a pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.windows import Window
from stackstac.raster_spec import RasterSpec
from stackstac.rio_reader import AutoParallelRioReader

from registry_gfm.ingest.loaders import fill_aware_reader

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # affine's `*` inside stackstac

SIZE, RES, X0, Y0 = 96, 30.0, 500000.0, 4000000.0


def tiff(path: Path, nodata: float | None, mask: bool = False) -> str:
    """A tiled uint16 GeoTIFF with a block of zeros; ``mask`` adds an internal mask hiding its top rows."""
    data = (np.arange(SIZE * SIZE, dtype=np.uint32).reshape(SIZE, SIZE) % 5000 + 1).astype(np.uint16)
    data[40:60, 10:30] = 0
    profile = {"driver": "GTiff", "dtype": "uint16", "count": 1, "width": SIZE, "height": SIZE, "crs": "EPSG:32617",
               "transform": Affine(RES, 0, X0, 0, -RES, Y0), "nodata": nodata, "tiled": True, "blockxsize": 32,
               "blockysize": 32, "compress": "deflate"}
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if mask:
            keep = np.full((SIZE, SIZE), 255, dtype=np.uint8)
            keep[:8] = 0
            dst.write_mask(keep)
    return str(path)


NATIVE = RasterSpec(epsg=32617, bounds=(X0, Y0 - SIZE * RES, X0 + SIZE * RES, Y0), resolutions_xy=(RES, RES))
# A grid reaching past the file on the left and top: stackstac warps it through a VRT.
WIDER = RasterSpec(epsg=32617, bounds=(X0 - 10 * RES, Y0 - SIZE * RES, X0 + SIZE * RES, Y0 + 10 * RES),
                   resolutions_xy=(RES, RES))


def read_both(url: str, spec: RasterSpec, fill: int) -> tuple[bool, list[np.ndarray], list[np.ndarray]]:
    kwargs = dict(url=url, spec=spec, resampling=Resampling.nearest, dtype=np.dtype("uint16"), fill_value=fill,
                  scale_offset=(1, 0))
    ours, theirs = fill_aware_reader()(**kwargs), AutoParallelRioReader(**kwargs)
    windows = [Window(0, 0, 32, 32), Window(0, 32, 64, 64), Window(40, 50, 56, 46)]
    try:
        got = [ours.read(w) for w in windows]
        want = [theirs.read(w) for w in windows]
        return ours._plain, got, want
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize(
    ("nodata", "mask", "spec", "fill", "plain"),
    [
        (0, False, NATIVE, 0, True),  # nodata == fill: the masked fill is a no-op
        (0, False, WIDER, 0, True),  # warped: outside pixels are the VRT's nodata, which is the fill
        (None, False, NATIVE, 0, True),  # no mask at all on its own grid
        (0, False, NATIVE, 9999, False),  # nodata pixels must become 9999
        (None, True, NATIVE, 0, False),  # an internal mask hides pixels that hold data
        (None, False, WIDER, 0, False),  # a warp without nodata adds an alpha band
    ],
)
def test_same_pixels_as_stackstacs_reader(tmp_path: Path, nodata: int | None, mask: bool, spec: RasterSpec,
                                          fill: int, plain: bool) -> None:
    url = tiff(tmp_path / "band.tif", nodata, mask)
    used_plain, got, want = read_both(url, spec, fill)
    assert used_plain is plain
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)
    if not plain and fill == 9999:
        assert (got[1] == 9999).any()  # the zero block inside window 2 was filled


def test_read_error_is_stackstacs_naming_the_file(tmp_path: Path) -> None:
    url = tiff(tmp_path / "band.tif", 0)
    reader = fill_aware_reader()(url=url, spec=NATIVE, resampling=Resampling.nearest, dtype=np.dtype("uint16"),
                                 fill_value=0, scale_offset=(1, 0))
    reader.read(Window(0, 0, 8, 8))
    with open(url, "r+b") as f:  # corrupt every tile after the header
        f.seek(2048)
        f.write(b"\xff" * 4096)
    reader.close()
    with pytest.raises(RuntimeError, match=r"band\.tif"):
        reader.read(Window(0, 0, 96, 96))
