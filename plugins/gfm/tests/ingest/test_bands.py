"""The band catalog: lookups by id / alias / common name, cross-sensor identity, and band-list comparison."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from registry_gfm import bands
from registry_gfm.bands import (
    SENSORS,
    BandLookupError,
    BandMismatchError,
    band_key,
    check_bands,
    compare_bands,
    get_sensor,
    lookup_band,
    sentinel2_l2a_offset,
)


def test_catalog_is_typed_and_frozen() -> None:
    band = lookup_band("sentinel-2-l2a:B8A")
    assert isinstance(band, bands.Band)
    with pytest.raises(dataclasses.FrozenInstanceError):
        band.scale = 1.0  # type: ignore[misc]
    for sensor in SENSORS.values():
        assert sensor.bands, sensor.key
        ids = sensor.ids
        assert len(set(ids)) == len(ids), f"{sensor.key} repeats a band id"
        for b in sensor.bands:
            assert b.sensor == sensor.key
            assert 0.4 < b.wavelength < 13.0
            assert b.resolution in (10.0, 20.0, 30.0, 60.0)
            # every name a band answers to resolves to it (or is reported ambiguous, never another band)
            for name in b.names:
                try:
                    assert sensor.band(name) == b
                except BandLookupError as exc:
                    assert "ambiguous" in str(exc)


@pytest.mark.parametrize(
    ("sensor", "name", "band_id", "common"),
    [
        ("sentinel-2-l2a", "B1", "B01", "coastal"),
        ("sentinel-2-l2a", "b01", "B01", "coastal"),
        ("sentinel-2-l2a", "B8A", "B8A", "nir08"),
        ("sentinel-2-l2a", "nir08", "B8A", "nir08"),
        ("sentinel-2-l2a", "rededge1", "B05", "rededge071"),
        ("hls-l30", "B05", "B05", "nir08"),
        ("hls-l30", "B5", "B05", "nir08"),
        ("hls-s30", "B8A", "B8A", "nir08"),
        ("hls-s30", "B05", "B05", "rededge071"),
        ("landsat-8-9-c2-l2", "SR_B5", "SR_B5", "nir08"),
        ("landsat-8-9-c2-l2", "sr-b5", "SR_B5", "nir08"),
        ("landsat-8-9-c2-l2", "B01", "SR_B1", "coastal"),
        ("landsat-7-c2-l2", "B4", "SR_B4", "nir08"),
        ("landsat-7-c2-l2", "B6", "ST_B6", "lwir"),
        ("landsat-c2-l2", "lwir11", "ST_B10", "lwir11"),
        ("HLSS30.v2.0", "swir16", "B11", "swir16"),
    ],
)
def test_lookup_by_id_alias_and_common_name(sensor: str, name: str, band_id: str, common: str) -> None:
    band = lookup_band(name, sensor)
    assert (band.id, band.common_name) == (band_id, common)


def test_nir_narrow_is_one_band_across_sensors() -> None:
    l30 = lookup_band("B05", "hls-l30")
    s30 = lookup_band("B8A", "hls-s30")
    s2 = lookup_band("B8A", "sentinel-2-l2a")
    l8 = lookup_band("SR_B5", "landsat-8-9-c2-l2")
    assert {l30.common_name, s30.common_name, s2.common_name, l8.common_name} == {"nir08"}
    assert band_key("B05", "hls-l30") == band_key("B8A", "hls-s30") == band_key("nir08") == "nir08"
    # B8A means the same band everywhere, so it needs no sensor
    assert lookup_band("B8A").common_name == "nir08"


def test_scales_and_offsets() -> None:
    s2 = lookup_band("B04", "sentinel-2-l2a")
    assert (s2.scale, s2.offset, s2.units, s2.resolution) == (0.0001, 0.0, "1", 10.0)
    l8 = lookup_band("red", "landsat-8-9-c2-l2")
    assert (l8.scale, l8.offset) == (0.0000275, -0.2)
    st = lookup_band("ST_B10", "landsat-8-9-c2-l2")
    assert (st.scale, st.offset, st.units) == (0.00341802, 149.0, "K")
    assert lookup_band("B10", "hls-l30").units == "degC"
    assert lookup_band("B04", "hls-s30").nodata == -9999
    assert sentinel2_l2a_offset("05.09") == -0.1
    assert sentinel2_l2a_offset("04.00") == -0.1
    assert sentinel2_l2a_offset("03.01") == 0.0
    assert sentinel2_l2a_offset(None) == 0.0
    with pytest.raises(ValueError, match="'baseline-x'"):
        sentinel2_l2a_offset("baseline-x")


def test_store_metadata_is_json_safe() -> None:
    meta = lookup_band("B8A", "hls-s30").store_metadata("nir_narrow")
    assert meta == {
        "name": "nir_narrow",
        "common_name": "nir08",
        "wavelength": 0.865,
        "units": "1",
        "scale": 0.0001,
        "offset": 0.0,
    }


def test_lookup_errors_name_the_band_and_the_options() -> None:
    with pytest.raises(BandLookupError, match=r"ambiguous.*hls-l30:B05 \(nir08\).*name the sensor"):
        lookup_band("B05")
    with pytest.raises(BandLookupError, match=r"sentinel-2-l2a has no band 'B10'.*B8A \(nir08\)"):
        lookup_band("B10", "sentinel-2-l2a")
    with pytest.raises(BandLookupError, match=r"ambiguous in sentinel-2-l2a.*B05 \(rededge071\), B06"):
        get_sensor("s2").band("rededge")
    with pytest.raises(BandLookupError, match=r"unknown sensor 'modis'; the band catalog knows sentinel-2-l2a"):
        get_sensor("modis")
    with pytest.raises(BandLookupError, match=r"no band called 'ultraviolet'"):
        lookup_band("ultraviolet")
    with pytest.raises(BandLookupError) as info:
        get_sensor("hls-l30").resolve(["B02", "B8A", "B99"])
    assert "'B8A'" in str(info.value) and "'B99'" in str(info.value)


def test_compare_equal_lists_across_sensors() -> None:
    # the Prithvi-style HLS band list, named by each product's own ids
    s30 = ["B02", "B03", "B04", "B8A", "B11", "B12"]
    l30 = ["B02", "B03", "B04", "B05", "B06", "B07"]
    assert compare_bands(s30, l30, expected_sensor="hls-s30", actual_sensor="hls-l30") is None
    common = ["blue", "green", "red", "nir08", "swir16", "swir22"]
    assert compare_bands(common, l30, actual_sensor="hls-l30") is None
    assert compare_bands(["custom_a", "custom_b"], ["custom_a", "custom_b"]) is None
    check_bands(common, s30, actual_sensor="hls-s30")


def test_compare_explains_order_missing_and_extra() -> None:
    swapped = compare_bands(["red", "green", "blue"], ["blue", "green", "red"])
    assert swapped is not None
    assert swapped.missing == () and swapped.extra == ()
    assert swapped.misplaced == ((0, "red", "blue"), (2, "blue", "red"))
    assert "different order" in str(swapped) and "position 0: expected red, got blue" in str(swapped)

    other = compare_bands(
        ["B02", "B03", "B04", "B8A"], ["B02", "B03", "B04", "B08"], expected_sensor="hls-s30", actual_sensor="hls-s30"
    )
    assert other is not None
    assert other.missing == ("B8A",) and other.extra == ("B08",)
    assert "missing: B8A (nir08)" in str(other) and "unexpected: B08 (nir)" in str(other)

    # same names but the actual side's B05 is a red-edge band: not the L30 NIR
    wrong_sensor = compare_bands(["B05"], ["B05"], expected_sensor="hls-l30", actual_sensor="hls-s30")
    assert wrong_sensor is not None and "B05 (nir08)" in str(wrong_sensor) and "B05 (rededge071)" in str(wrong_sensor)

    shorter = compare_bands(["red", "green", "blue"], ["red", "green"])
    assert shorter is not None and shorter.missing == ("blue",) and "got 2 bands" in str(shorter)

    repeated = compare_bands(["red", "green"], ["red", "red"])
    assert repeated is not None and "repeated bands" in str(repeated)

    with pytest.raises(BandMismatchError, match=r"^tokenizer vs data: band lists differ"):
        check_bands(["red"], ["blue"], context="tokenizer vs data")


def test_catalog_imports_stdlib_only() -> None:
    code = (
        "import sys, registry_gfm.bands\n"
        "heavy = [m for m in ('numpy', 'torch', 'xarray', 'zarr', 'rasterio', 'dask') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_compare_flags_names_that_need_a_sensor() -> None:
    # B02 is blue on Sentinel-2 but green on Landsat 7: without a sensor it is only a plain name
    mismatch = compare_bands(["B02", "B03"], ["blue", "green"])
    assert mismatch is not None
    assert "B02, B03 mean different bands in different sensors" in str(mismatch)
    assert compare_bands(["B02", "B03"], ["blue", "green"], expected_sensor="sentinel-2-l2a") is None


def test_the_plugin_declares_the_bands_port_with_its_catalog() -> None:
    from registry_core import get_registry

    port = get_registry().ports()["bands"]
    assert (port.plugin, port.wire_from) == ("gfm", ("data", "weights"))
    assert port.compare == "registry_gfm.bands:same_band_order"
    assert bands.same_band_order(["B8A", "red"], ["nir08", "red"])  # Sentinel-2 id and common name: one band
    assert not bands.same_band_order(["red", "B8A"], ["nir08", "red"])
    assert bands.same_band_order(["B05"], ["B05"]) and not bands.same_band_order(["B05"], ["nir08"])  # no sensor
    assert bands.explain_band_difference(["B02", "B8A"], ["B02", "B03"]) == "missing [B8A (nir08)]; unexpected [B03]"
    assert bands.explain_band_difference(["red", "B8A"], ["nir08", "red"]) == (
        "same bands in another order: position 0 is red vs nir08")
    assert bands.explain_band_difference(["red"], ["red", "red"]) == "1 bands vs 2: a band is repeated"
    assert {"patch_size", "frames"} <= {p.name for p in get_registry().ports().values() if p.plugin == "gfm"}
