"""Open a finished Zarr datacube written by ``stac-zarr`` and describe it as typed, picklable metadata.

The store layout (see the ``stac-zarr`` docs): ``image`` (time, band, y, x) in the native dtype, ``valid``
(time, y, x) 1 where usable, coords x / y (CRS, pixel centres), time, band, and attrs ``crs_wkt``,
``epsg``, ``transform`` (a, b, c, d, e, f), ``bands`` (per-band dicts) and ``complete``. A store without
``complete: true`` is still being written, or was cut off, and is refused.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_gfm.bands import BandLookupError, find_bands, normalize_name
from registry_gfm.errors import DatacubeError

__all__ = ["CubeInfo", "DatacubeError", "StoredBand", "open_cube", "select_bands"]


@dataclass(frozen=True)
class StoredBand:
    """One band as the store's ``bands`` attribute describes it."""

    name: str
    common_name: str | None
    wavelength: float | None
    units: str | None
    scale: float
    offset: float


@dataclass(frozen=True)
class CubeInfo:
    """What a chip reader needs to know about a store, without holding it open (so it pickles)."""

    store: str
    #: (time, band, y, x) of ``image``.
    shape: tuple[int, int, int, int]
    dtype: str
    bands: tuple[StoredBand, ...]
    #: Acquisition times as Unix seconds (UTC), in store order.
    times: tuple[int, ...]
    #: Affine pixel-to-CRS transform (a, b, c, d, e, f): x = a*col + b*row + c, y = d*col + e*row + f.
    transform: tuple[float, float, float, float, float, float]
    crs_wkt: str
    epsg: int | None
    #: Hash of shape, dtype, bands, times and attrs: changes when the store is rewritten.
    fingerprint: str
    #: Scale and offset per (time, band): from the store's ``scale`` / ``offset`` coords when it has them
    #: (Sentinel-2 offsets change with the processing baseline), else each band's attrs value at every time.
    scale: tuple[tuple[float, ...], ...] = ()
    offset: tuple[tuple[float, ...], ...] = ()
    #: Where an ingested store came from: the STAC catalog, collections and each item's id and ``updated`` time
    #: (from its provenance; None for a store written otherwise).
    stac: dict[str, Any] | None = None

    @property
    def band_names(self) -> tuple[str, ...]:
        """Store band names, in store order."""
        return tuple(b.name for b in self.bands)

    def describe_bands(self) -> str:
        """``name (common name)`` of every band, for error messages."""
        return ", ".join(f"{b.name} ({b.common_name})" if b.common_name else b.name for b in self.bands)


def _band_meta(store: str, raw: Any, name: str) -> StoredBand:
    """One ``attrs['bands']`` table as a StoredBand; missing scale / offset mean 1 / 0."""
    if not isinstance(raw, dict):
        raise DatacubeError(f"datacube {store}: attrs['bands'] entry for band {name!r} is not a table: {raw!r}")

    def num(key: str) -> float | None:
        value = raw.get(key)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DatacubeError(
                f"datacube {store}: band {name!r} has a non-numeric {key!r} in attrs['bands']: {value!r}"
            ) from None

    common, units = raw.get("common_name"), raw.get("units")
    scale, offset = num("scale"), num("offset")
    return StoredBand(
        name=name,
        common_name=str(common) if common else None,
        wavelength=num("wavelength"),
        units=str(units) if units is not None else None,
        scale=1.0 if scale is None else scale,
        offset=0.0 if offset is None else offset,
    )


def _open_complete(path: str) -> Any:
    """The store as a lazy xarray Dataset; DatacubeError when it is missing, unreadable or not complete."""
    import xarray as xr

    if "://" not in path and not Path(path).exists():
        raise DatacubeError(f"datacube store {path} does not exist; run the stac-zarr ingest first")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a store without consolidated metadata still opens
            ds = xr.open_zarr(path, chunks=None)
    except Exception as exc:  # zarr and xarray raise many types for a store they cannot parse
        raise DatacubeError(f"cannot open datacube store {path} with xarray.open_zarr: {exc}") from exc
    complete = ds.attrs.get("complete")
    if complete is not True:
        raise DatacubeError(
            f"datacube store {path} is not complete (attrs['complete'] is {complete!r}): the ingest "
            "is still running or was interrupted; rerun it to finish the store before reading chips"
        )
    return ds


def _check_arrays(ds: Any, path: str) -> None:
    """``image`` (time, band, y, x) and ``valid`` (time, y, x) exist and agree in shape."""
    for var, dims in (("image", ("time", "band", "y", "x")), ("valid", ("time", "y", "x"))):
        if var not in ds.variables:
            raise DatacubeError(f"datacube store {path} has no {var!r} variable (expected dims {dims})")
        if tuple(ds[var].dims) != dims:
            raise DatacubeError(f"datacube store {path}: {var!r} has dims {tuple(ds[var].dims)}, expected {dims}")
    image = ds["image"]
    if ds["valid"].shape != (image.shape[0], image.shape[2], image.shape[3]):
        raise DatacubeError(
            f"datacube store {path}: 'valid' shape {ds['valid'].shape} does not match 'image' {image.shape}"
        )


def _band_tables(attrs: dict[str, Any], names: list[str], path: str) -> list[Any]:
    """``attrs['bands']``: one table per band, in band order (empty tables when the store has none)."""
    meta = attrs.get("bands") or [{} for _ in names]
    if not isinstance(meta, list) or len(meta) != len(names):
        raise DatacubeError(
            f"datacube store {path}: attrs['bands'] should list {len(names)} band tables (one per band {names}), "
            f"got {meta!r}"
        )
    for i, (raw, name) in enumerate(zip(meta, names)):
        if isinstance(raw, dict) and raw.get("name") not in (None, name):
            raise DatacubeError(
                f"datacube store {path}: attrs['bands'][{i}] describes {raw.get('name')!r} but band {i} is {name!r}"
            )
    return meta


def open_cube(store: str | Path) -> CubeInfo:
    """Open ``store`` with xarray (lazily: no pixels are read) and check it is a complete datacube."""
    import numpy as np

    path = str(store)
    ds = _open_complete(path)
    attrs = dict(ds.attrs)
    _check_arrays(ds, path)
    image = ds["image"]
    names = [str(n) for n in ds["band"].values.tolist()]
    meta = _band_tables(attrs, names, path)
    transform = attrs.get("transform")
    if not (isinstance(transform, (list, tuple)) and len(transform) >= 6):
        raise DatacubeError(f"datacube store {path}: attrs['transform'] should be six numbers a..f, got {transform!r}")
    crs_wkt = attrs.get("crs_wkt")
    epsg = attrs.get("epsg")
    if not crs_wkt and epsg is None:
        raise DatacubeError(f"datacube store {path}: attrs hold neither 'crs_wkt' nor 'epsg'; cannot place chips")
    times_ns = np.asarray(ds["time"].values).astype("datetime64[ns]").astype(np.int64)
    times = tuple(int(t // 1_000_000_000) for t in times_ns)
    shape = (int(image.shape[0]), int(image.shape[1]), int(image.shape[2]), int(image.shape[3]))
    digest = hashlib.sha256(
        json.dumps([shape, str(image.dtype), names, times, attrs], sort_keys=True, default=str).encode()
    ).hexdigest()[:32]
    bands = tuple(_band_meta(path, raw, name) for raw, name in zip(meta, names))
    scale = _per_time(ds, path, "scale", [b.scale for b in bands], shape[0])
    offset = _per_time(ds, path, "offset", [b.offset for b in bands], shape[0])
    ds.close()
    return CubeInfo(
        store=path,
        shape=shape,
        dtype=str(image.dtype),
        bands=bands,
        times=times,
        transform=(
            float(transform[0]),
            float(transform[1]),
            float(transform[2]),
            float(transform[3]),
            float(transform[4]),
            float(transform[5]),
        ),
        crs_wkt=str(crs_wkt or ""),
        epsg=int(epsg) if epsg is not None else None,
        fingerprint=digest,
        scale=scale,
        offset=offset,
        stac=_stac_source(attrs.get("provenance")),
    )


def _stac_source(provenance: Any) -> dict[str, Any] | None:
    """The catalog, collections and items (id, ``updated``) an ingest recorded, for a run's lock."""
    if not isinstance(provenance, dict) or not isinstance(provenance.get("items"), list):
        return None
    found = provenance.get("search")
    search: dict[str, Any] = found if isinstance(found, dict) else {}
    return {"catalog": search.get("catalog"), "collections": search.get("collections"),
            "items": [{"id": it.get("id"), "updated": it.get("updated")} for it in provenance["items"]
                      if isinstance(it, dict)]}


def _per_time(ds: Any, path: str, name: str, default: list[float], ntime: int) -> tuple[tuple[float, ...], ...]:
    """A (time, band) table from coord ``name`` when present, else ``default`` repeated for every time."""
    import numpy as np

    if name in ds.variables and tuple(ds[name].dims) == ("time", "band"):
        values = np.asarray(ds[name].values, dtype=np.float64)
        if not np.isfinite(values).all():
            raise DatacubeError(f"datacube store {path}: coord {name!r} holds non-finite values")
        return tuple(tuple(float(v) for v in row) for row in values)
    return tuple(tuple(default) for _ in range(ntime))


def select_bands(info: CubeInfo, requested: Sequence[str] | None) -> tuple[int, ...]:
    """Indices into the store's bands for ``requested`` names, in the requested order (None: all bands).

    A name matches a store band by its name, by its common name, or through the band catalog (an alias
    such as ``B8A`` or ``SR_B5`` whose meaning among the store's common names is unique). Every name that
    matches nothing is reported at once, with the store's bands listed.
    """
    if requested is None:
        return tuple(range(len(info.bands)))
    by_name = {normalize_name(b.name): i for i, b in enumerate(info.bands)}
    by_common: dict[str, list[int]] = {}
    for i, b in enumerate(info.bands):
        if b.common_name:
            by_common.setdefault(normalize_name(b.common_name), []).append(i)
    out: list[int] = []
    problems: list[str] = []
    for name in requested:
        key = normalize_name(name)
        if key in by_name:
            out.append(by_name[key])
            continue
        candidates = sorted(set(by_common.get(key, [])))
        if not candidates:
            try:
                commons = {normalize_name(b.common_name) for b in find_bands(name)}
            except BandLookupError:
                commons = set()
            candidates = sorted({i for c in commons for i in by_common.get(c, [])})
        if len(candidates) == 1:
            out.append(candidates[0])
        elif candidates:
            options = ", ".join(info.bands[i].name for i in candidates)
            problems.append(f"band {name!r} is ambiguous in the store (it matches {options})")
        else:
            problems.append(f"band {name!r} is not in the store")
    if problems:
        raise DatacubeError(
            f"datacube store {info.store}: {'; '.join(problems)}; its bands are {info.describe_bands()}"
        )
    repeated = sorted({requested[i] for i, j in enumerate(out) if out.count(j) > 1})
    if repeated:
        raise DatacubeError(f"datacube store {info.store}: bands {repeated} select the same store band more than once")
    return tuple(out)
