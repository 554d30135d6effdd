"""Typed band catalog: Sentinel-2 L2A, Landsat 7 ETM+ / 8-9 OLI Collection 2 L2, HLS L30 / S30.

Data sources publish their ordered ``bands`` port from this catalog; the plugin declares that port with
:func:`same_band_order` and :func:`explain_band_difference` as its comparison, so a wrong band order is an error instead of a silent mix-up (the weak
spot of loose metadata dicts). Standard library only: ``specs.py`` files and contract checks import it.

Names follow STAC ``eo`` common names (``nir08`` is the narrow NIR band: Sentinel-2 / HLS S30 ``B8A``,
Landsat 8/9 ``SR_B5``, HLS L30 ``B05``); wavelengths are centre wavelengths in micrometres; ``scale`` and
``offset`` turn stored integers into physical values (``value = dn * scale + offset``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from registry_core import RegistryCoreError

__all__ = [
    "SENSORS",
    "Band",
    "BandLookupError",
    "BandMismatch",
    "BandMismatchError",
    "Sensor",
    "band_key",
    "check_bands",
    "compare_bands",
    "explain_band_difference",
    "find_bands",
    "get_sensor",
    "lookup_band",
    "normalize_name",
    "same_band_order",
    "sentinel2_l2a_offset",
]


class BandLookupError(RegistryCoreError, KeyError):
    """A band or sensor name that the catalog cannot resolve (unknown, or ambiguous)."""

    def __str__(self) -> str:  # KeyError quotes its message; show it as a plain sentence
        return str(self.args[0]) if self.args else ""


class BandMismatchError(RegistryCoreError, ValueError):
    """Two ordered band lists that should agree do not; the message explains how they differ."""


def normalize_name(name: str) -> str:
    """Case- and separator-insensitive form used for matching names (``sr_b5`` == ``SR-B5``)."""
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


@dataclass(frozen=True)
class Band:
    """One spectral band of one sensor's product."""

    #: The sensor key this band belongs to, e.g. ``"sentinel-2-l2a"``.
    sensor: str
    #: The band's id in its product, e.g. ``"B8A"`` or ``"SR_B5"``.
    id: str
    #: STAC ``eo`` common name, e.g. ``"nir08"``; the identity used to compare bands across sensors.
    common_name: str
    #: Centre wavelength in micrometres.
    wavelength: float
    #: Full width at half maximum in micrometres.
    fwhm: float
    #: Pixel size of the distributed product in metres.
    resolution: float
    #: Default scale from stored integers to physical values.
    scale: float = 1.0
    #: Default offset added after scaling.
    offset: float = 0.0
    #: Units of the scaled value: ``"1"`` (unitless reflectance), ``"K"`` or ``"degC"``.
    units: str = "1"
    #: Value meaning "no data" in the stored integers.
    nodata: int | None = 0
    #: Other names for the band (``B1``, ``B01``, asset keys such as ``rededge1``).
    aliases: tuple[str, ...] = ()
    #: Human-readable description.
    description: str = ""

    @property
    def qualified_id(self) -> str:
        """``sensor:id``, unambiguous across the catalog (e.g. ``"hls-l30:B05"``)."""
        return f"{self.sensor}:{self.id}"

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the band answers to within its sensor: id, common name, aliases."""
        return (self.id, self.common_name, *self.aliases)

    def store_metadata(self, name: str | None = None) -> dict[str, object]:
        """Per-band metadata as the Zarr datacube stores it in its ``bands`` attribute (JSON-safe)."""
        return {
            "name": name or self.id,
            "common_name": self.common_name,
            "wavelength": self.wavelength,
            "units": self.units,
            "scale": self.scale,
            "offset": self.offset,
        }


@dataclass(frozen=True)
class Sensor:
    """One product's ordered bands, with the STAC collection ids it is known by."""

    #: Catalog key, e.g. ``"landsat-8-9-c2-l2"``.
    key: str
    #: Human-readable title.
    title: str
    bands: tuple[Band, ...]
    #: Other names (STAC collection ids, e.g. ``"sentinel-2-l2a"``, ``"HLSL30.v2.0"``).
    aliases: tuple[str, ...] = ()
    _index: dict[str, tuple[Band, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Band]] = {}
        for band in self.bands:
            if band.sensor != self.key:
                raise ValueError(f"band {band.id!r} says sensor {band.sensor!r} but is listed under {self.key!r}")
            for name in dict.fromkeys(normalize_name(n) for n in band.names):
                index.setdefault(name, []).append(band)
        self._index.update({k: tuple(v) for k, v in index.items()})

    @property
    def ids(self) -> tuple[str, ...]:
        """Band ids in the product's order."""
        return tuple(b.id for b in self.bands)

    def band(self, name: str) -> Band:
        """The band named ``name`` (id, alias or common name, case-insensitive); BandLookupError if none or many."""
        found = self._index.get(normalize_name(name), ())
        if len(found) == 1:
            return found[0]
        if found:
            options = ", ".join(f"{b.id} ({b.common_name})" for b in found)
            raise BandLookupError(f"band name {name!r} is ambiguous in {self.key}: it matches {options}; use a band id")
        known = ", ".join(f"{b.id} ({b.common_name})" for b in self.bands)
        raise BandLookupError(f"{self.key} has no band {name!r}; its bands are {known}")

    def resolve(self, names: Iterable[str]) -> tuple[Band, ...]:
        """Bands for ``names`` in the given order; the error names every unknown name at once."""
        names = list(names)
        out: list[Band] = []
        problems: list[str] = []
        for name in names:
            try:
                out.append(self.band(name))
            except BandLookupError as exc:
                problems.append(str(exc))
        if problems:
            raise BandLookupError("; ".join(problems))
        return tuple(out)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and len(self._index.get(normalize_name(name), ())) == 1


@dataclass(frozen=True)
class _Scaling:
    """Scale, offset, units and nodata shared by a product's bands."""

    scale: float
    offset: float = 0.0
    units: str = "1"
    nodata: int | None = 0


#: A compact band row: (id, common name, wavelength um, fwhm um, resolution m, aliases).
_Row = tuple[str, str, float, float, float, tuple[str, ...]]


def _bands(
    sensor: str, rows: Sequence[_Row], scaling: _Scaling, special: dict[str, _Scaling] | None = None
) -> tuple[Band, ...]:
    """Build a sensor's bands from compact rows; ``special`` gives other scaling to some band ids."""
    out = []
    for bid, common, wl, fwhm, res, aliases in rows:
        sc = (special or {}).get(bid, scaling)
        out.append(Band(sensor, bid, common, wl, fwhm, float(res), sc.scale, sc.offset, sc.units, sc.nodata, aliases))
    return tuple(out)


# Sentinel-2 MSI Level-2A (bottom-of-atmosphere reflectance x 10000; B10 cirrus is not in L2A).
# Processing baseline >= 04.00 adds BOA_ADD_OFFSET = -1000: see sentinel2_l2a_offset.
SENTINEL2_L2A: Final = Sensor(
    key="sentinel-2-l2a",
    title="Sentinel-2 MSI Level-2A surface reflectance",
    aliases=("sentinel2-l2a", "s2-l2a", "sentinel-2", "sentinel2", "s2"),
    bands=_bands(
        "sentinel-2-l2a",
        [
            ("B01", "coastal", 0.443, 0.021, 60, ("B1",)),
            ("B02", "blue", 0.490, 0.066, 10, ("B2",)),
            ("B03", "green", 0.560, 0.036, 10, ("B3",)),
            ("B04", "red", 0.665, 0.031, 10, ("B4",)),
            ("B05", "rededge071", 0.705, 0.015, 20, ("B5", "rededge1", "rededge")),
            ("B06", "rededge075", 0.740, 0.015, 20, ("B6", "rededge2", "rededge")),
            ("B07", "rededge078", 0.783, 0.020, 20, ("B7", "rededge3", "rededge")),
            ("B08", "nir", 0.842, 0.106, 10, ("B8",)),
            ("B8A", "nir08", 0.865, 0.021, 20, ("B08A",)),
            ("B09", "nir09", 0.945, 0.020, 60, ("B9",)),
            ("B11", "swir16", 1.610, 0.091, 20, ()),
            ("B12", "swir22", 2.190, 0.175, 20, ()),
        ],
        _Scaling(scale=0.0001),
    ),
)

# Landsat 8/9 OLI-TIRS Collection 2 Level-2: SR = dn * 2.75e-5 - 0.2; ST (kelvin) = dn * 0.00341802 + 149.
_C2_SR: Final = _Scaling(scale=0.0000275, offset=-0.2)
_C2_ST: Final = _Scaling(scale=0.00341802, offset=149.0, units="K")
LANDSAT89_C2_L2: Final = Sensor(
    key="landsat-8-9-c2-l2",
    title="Landsat 8/9 OLI-TIRS Collection 2 Level-2 surface reflectance and temperature",
    aliases=("landsat-c2-l2", "landsat-8-c2-l2", "landsat-9-c2-l2", "landsat-8", "landsat-9", "landsat8", "landsat9"),
    bands=_bands(
        "landsat-8-9-c2-l2",
        [
            ("SR_B1", "coastal", 0.443, 0.016, 30, ("B1", "B01")),
            ("SR_B2", "blue", 0.482, 0.060, 30, ("B2", "B02")),
            ("SR_B3", "green", 0.562, 0.057, 30, ("B3", "B03")),
            ("SR_B4", "red", 0.655, 0.037, 30, ("B4", "B04")),
            ("SR_B5", "nir08", 0.865, 0.028, 30, ("B5", "B05", "nir")),
            ("SR_B6", "swir16", 1.609, 0.085, 30, ("B6", "B06")),
            ("SR_B7", "swir22", 2.201, 0.187, 30, ("B7", "B07")),
            ("ST_B10", "lwir11", 10.895, 0.590, 30, ("B10", "lwir")),
        ],
        _C2_SR,
        {"ST_B10": _C2_ST},
    ),
)

# Landsat 7 ETM+ Collection 2 Level-2 (same scaling as 8/9; the thermal band is B6, delivered at 30 m).
LANDSAT7_C2_L2: Final = Sensor(
    key="landsat-7-c2-l2",
    title="Landsat 7 ETM+ Collection 2 Level-2 surface reflectance and temperature",
    aliases=("landsat-7", "landsat7", "landsat-etm-c2-l2"),
    bands=_bands(
        "landsat-7-c2-l2",
        [
            ("SR_B1", "blue", 0.477, 0.070, 30, ("B1", "B01")),
            ("SR_B2", "green", 0.560, 0.080, 30, ("B2", "B02")),
            ("SR_B3", "red", 0.661, 0.060, 30, ("B3", "B03")),
            ("SR_B4", "nir08", 0.835, 0.130, 30, ("B4", "B04", "nir")),
            ("SR_B5", "swir16", 1.648, 0.200, 30, ("B5", "B05")),
            ("ST_B6", "lwir", 11.335, 2.100, 30, ("B6", "B06")),
            ("SR_B7", "swir22", 2.206, 0.260, 30, ("B7", "B07")),
        ],
        _C2_SR,
        {"ST_B6": _C2_ST},
    ),
)

# HLS v2.0 L30 (Landsat 8/9 harmonised to 30 m; reflectance x 10000, thermal brightness temperature in
# degrees Celsius x 100).
_HLS_SR: Final = _Scaling(scale=0.0001, nodata=-9999)
_HLS_TIR: Final = _Scaling(scale=0.01, units="degC", nodata=-9999)
HLS_L30: Final = Sensor(
    key="hls-l30",
    title="Harmonized Landsat Sentinel-2 v2.0 L30 (Landsat 8/9)",
    aliases=("HLSL30", "HLSL30.v2.0", "HLSL30_2.0", "hls-l30-v2"),
    bands=_bands(
        "hls-l30",
        [
            ("B01", "coastal", 0.443, 0.016, 30, ("B1",)),
            ("B02", "blue", 0.482, 0.060, 30, ("B2",)),
            ("B03", "green", 0.562, 0.057, 30, ("B3",)),
            ("B04", "red", 0.655, 0.037, 30, ("B4",)),
            ("B05", "nir08", 0.865, 0.028, 30, ("B5", "nir")),
            ("B06", "swir16", 1.609, 0.085, 30, ("B6",)),
            ("B07", "swir22", 2.201, 0.187, 30, ("B7",)),
            ("B09", "cirrus", 1.373, 0.020, 30, ("B9",)),
            ("B10", "lwir11", 10.895, 0.590, 30, ()),
            ("B11", "lwir12", 12.005, 1.010, 30, ()),
        ],
        _HLS_SR,
        {"B10": _HLS_TIR, "B11": _HLS_TIR},
    ),
)

# HLS v2.0 S30 (Sentinel-2 harmonised to 30 m; reflectance x 10000).
HLS_S30: Final = Sensor(
    key="hls-s30",
    title="Harmonized Landsat Sentinel-2 v2.0 S30 (Sentinel-2)",
    aliases=("HLSS30", "HLSS30.v2.0", "HLSS30_2.0", "hls-s30-v2"),
    bands=_bands(
        "hls-s30",
        [
            ("B01", "coastal", 0.443, 0.021, 30, ("B1",)),
            ("B02", "blue", 0.490, 0.066, 30, ("B2",)),
            ("B03", "green", 0.560, 0.036, 30, ("B3",)),
            ("B04", "red", 0.665, 0.031, 30, ("B4",)),
            ("B05", "rededge071", 0.705, 0.015, 30, ("B5", "rededge1", "rededge")),
            ("B06", "rededge075", 0.740, 0.015, 30, ("B6", "rededge2", "rededge")),
            ("B07", "rededge078", 0.783, 0.020, 30, ("B7", "rededge3", "rededge")),
            ("B08", "nir", 0.842, 0.106, 30, ("B8",)),
            ("B8A", "nir08", 0.865, 0.021, 30, ("B08A",)),
            ("B09", "nir09", 0.945, 0.020, 30, ("B9",)),
            ("B10", "cirrus", 1.375, 0.031, 30, ()),
            ("B11", "swir16", 1.610, 0.091, 30, ()),
            ("B12", "swir22", 2.190, 0.175, 30, ()),
        ],
        _HLS_SR,
    ),
)

#: Every sensor in the catalog, by key.
SENSORS: Final[dict[str, Sensor]] = {
    s.key: s for s in (SENTINEL2_L2A, LANDSAT89_C2_L2, LANDSAT7_C2_L2, HLS_L30, HLS_S30)
}

#: Common names known to the catalog (every sensor's bands), for cross-sensor comparison.
COMMON_NAMES: Final[frozenset[str]] = frozenset(b.common_name for s in SENSORS.values() for b in s.bands)


def get_sensor(name: str | Sensor) -> Sensor:
    """The sensor with key or alias ``name`` (case-insensitive); BandLookupError listing the keys if none."""
    if isinstance(name, Sensor):
        return name
    wanted = normalize_name(name)
    for sensor in SENSORS.values():
        if wanted == normalize_name(sensor.key) or wanted in {normalize_name(a) for a in sensor.aliases}:
            return sensor
    raise BandLookupError(f"unknown sensor {name!r}; the band catalog knows {', '.join(SENSORS)}")


def find_bands(name: str) -> tuple[Band, ...]:
    """Every band in the catalog answering to ``name`` (``"sensor:band"`` narrows to one sensor)."""
    if ":" in name:
        sensor, _, band = name.partition(":")
        return (get_sensor(sensor).band(band),)
    wanted = normalize_name(name)
    return tuple(b for s in SENSORS.values() for b in s._index.get(wanted, ()))


def lookup_band(name: str, sensor: str | Sensor | None = None) -> Band:
    """The one band called ``name``: within ``sensor`` when given, else ``"sensor:band"`` or a unique name.

    Raises BandLookupError when the name is unknown, or when it means different bands in different
    sensors (``B05`` is red edge on Sentinel-2 but NIR on HLS L30) and no sensor says which.
    """
    if sensor is not None:
        return get_sensor(sensor).band(name)
    found = find_bands(name)
    if not found:
        raise BandLookupError(
            f"no band called {name!r} in the catalog ({', '.join(SENSORS)}); use a band id, alias or common name "
            f"such as {', '.join(sorted(COMMON_NAMES))}"
        )
    if len({b.common_name for b in found}) > 1:
        options = ", ".join(f"{b.qualified_id} ({b.common_name})" for b in found)
        raise BandLookupError(f"band name {name!r} is ambiguous: it means {options}; name the sensor")
    return found[0]


def band_key(name: str, sensor: str | Sensor | None = None) -> str:
    """The sensor-independent identity of a band name: its common name when the catalog knows it.

    A name the catalog does not know, or one that means different bands in different sensors and has
    no sensor to settle it, keys as itself (normalised), so it still matches an identical name.
    """
    try:
        return lookup_band(name, sensor).common_name
    except BandLookupError:
        return normalize_name(name)


def _ambiguous(name: str) -> bool:
    """Whether ``name`` means bands of different common names in different sensors (e.g. ``B05``)."""
    try:
        return len({b.common_name for b in find_bands(name)}) > 1
    except BandLookupError:
        return False


@dataclass(frozen=True)
class BandMismatch:
    """How two ordered band lists differ; ``str()`` is the explanation shown to users."""

    expected: tuple[str, ...]
    actual: tuple[str, ...]
    #: Expected bands absent from ``actual`` (as named in ``expected``).
    missing: tuple[str, ...]
    #: Bands in ``actual`` that ``expected`` does not have (as named in ``actual``).
    extra: tuple[str, ...]
    #: ``(position, expected name, actual name)`` where both lists hold the same bands in another order.
    misplaced: tuple[tuple[int, str, str], ...]
    message: str

    def __str__(self) -> str:
        return self.message


def _describe(name: str, sensor: str | Sensor | None) -> str:
    key = band_key(name, sensor)
    return name if key == normalize_name(name) else f"{name} ({key})"


def compare_bands(
    expected: Sequence[str],
    actual: Sequence[str],
    *,
    expected_sensor: str | Sensor | None = None,
    actual_sensor: str | Sensor | None = None,
) -> BandMismatch | None:
    """Compare two ordered band lists by band identity; None when they agree, else a BandMismatch.

    Bands match when they are the same spectral band, whatever each side calls it: ``B8A`` of HLS S30,
    ``B05`` of HLS L30 and ``nir08`` all key as ``nir08``. Give the sensors when names are
    sensor-specific ids such as ``B05``. Order matters: a model trained on (red, green, blue) must not
    silently receive (blue, green, red).
    """
    exp, act = tuple(expected), tuple(actual)
    ek = [band_key(n, expected_sensor) for n in exp]
    ak = [band_key(n, actual_sensor) for n in act]
    if ek == ak:
        return None
    missing = tuple(n for n, k in zip(exp, ek) if k not in ak)
    extra = tuple(n for n, k in zip(act, ak) if k not in ek)
    misplaced: tuple[tuple[int, str, str], ...] = ()
    lines = [f"band lists differ: expected {len(exp)} bands {list(exp)}, got {len(act)} bands {list(act)}"]
    dup_e = sorted({n for n, k in zip(exp, ek) if ek.count(k) > 1})
    dup_a = sorted({n for n, k in zip(act, ak) if ak.count(k) > 1})
    if dup_e or dup_a:
        lines.append(f"repeated bands: expected {dup_e}, got {dup_a}")
    if missing:
        lines.append("missing: " + ", ".join(_describe(n, expected_sensor) for n in missing))
    if extra:
        lines.append("unexpected: " + ", ".join(_describe(n, actual_sensor) for n in extra))
    # names such as B05 that only a sensor can settle were compared as plain strings: say so
    unsettled = [n for n in exp if expected_sensor is None and _ambiguous(n)]
    unsettled += [n for n in act if actual_sensor is None and _ambiguous(n) and n not in unsettled]
    if unsettled:
        lines.append(
            f"{', '.join(unsettled)} mean different bands in different sensors and were compared as plain names; "
            "give the sensor of each list to compare them as bands"
        )
    if not missing and not extra and sorted(ek) == sorted(ak):
        misplaced = tuple((i, e, a) for i, (e, a, x, y) in enumerate(zip(exp, act, ek, ak)) if x != y)
        order = ", ".join(
            f"position {i}: expected {_describe(e, expected_sensor)}, got {_describe(a, actual_sensor)}"
            for i, e, a in misplaced
        )
        lines.append(f"same bands in a different order ({order}); reorder them to {list(exp)}")
    return BandMismatch(exp, act, missing, extra, misplaced, "; ".join(lines))


def same_band_order(a: Sequence[str], b: Sequence[str]) -> bool:
    """The ``bands`` port's comparison: the same bands in the same order, by identity (``B8A`` is ``nir08``)."""
    return [band_key(n) for n in a] == [band_key(n) for n in b]


def explain_band_difference(a: Sequence[str], b: Sequence[str]) -> str:
    """How band list ``b`` differs from ``a``, as a phrase for a contract message.

    Names are shown with their identity when it differs (``B8A (nir08)``): ``missing [...]``,
    ``unexpected [...]``, a repeated band, or the first position where the same bands are in another order.
    """
    ka, kb = [band_key(n) for n in a], [band_key(n) for n in b]
    missing = [_describe(n, None) for n, k in zip(a, ka) if k not in kb]
    extra = [_describe(n, None) for n, k in zip(b, kb) if k not in ka]
    if missing or extra:
        parts = [f"missing [{', '.join(missing)}]"] if missing else []
        return "; ".join(parts + ([f"unexpected [{', '.join(extra)}]"] if extra else []))
    if len(a) != len(b):
        return f"{len(a)} bands vs {len(b)}: a band is repeated"
    i = next((i for i, (x, y) in enumerate(zip(ka, kb)) if x != y), None)
    if i is None:
        return "the same bands"
    return f"same bands in another order: position {i} is {_describe(a[i], None)} vs {_describe(b[i], None)}"


def check_bands(
    expected: Sequence[str],
    actual: Sequence[str],
    *,
    expected_sensor: str | Sensor | None = None,
    actual_sensor: str | Sensor | None = None,
    context: str = "",
) -> None:
    """Raise BandMismatchError (prefixed with ``context``) when :func:`compare_bands` finds a difference."""
    mismatch = compare_bands(expected, actual, expected_sensor=expected_sensor, actual_sensor=actual_sensor)
    if mismatch is not None:
        raise BandMismatchError(f"{context}: {mismatch}" if context else str(mismatch))


def sentinel2_l2a_offset(processing_baseline: str | float | None) -> float:
    """The reflectance offset of a Sentinel-2 L2A product: -0.1 (BOA_ADD_OFFSET -1000) from baseline 04.00 on.

    ``processing_baseline`` is the ``s2:processing_baseline`` property (e.g. ``"05.09"``); None means unknown,
    treated as an old baseline (offset 0), matching the products made before January 2022.
    """
    if processing_baseline is None:
        return 0.0
    try:
        value = float(processing_baseline)
    except ValueError:
        raise ValueError(
            f"Sentinel-2 processing baseline {processing_baseline!r} is not a number like '04.00'"
        ) from None
    return -0.1 if value >= 4.0 else 0.0
