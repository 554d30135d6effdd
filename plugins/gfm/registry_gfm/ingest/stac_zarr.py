"""``stac-zarr``: STAC search -> stackstac / odc-stac -> cloud mask -> a Zarr v3 datacube, on dask.

``prepare()`` runs the ingest: search, plan (bands, grid, dtype; every bad input found here names its
item), load lazily with the chosen loader, and write each region (one chunk per time step) from
whichever dask worker computes it. It is idempotent and resumable: a complete store is left alone, and an
interrupted one is finished without rewriting its completed regions. ``dataset(split)`` reads whole time
slices back; the ``zarr-chips`` data source samples training chips from the same store.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from registry_core import RegistryCoreError
from registry_core.atomic import check_output_dir, writer_lock
from registry_gfm.cube.store import (
    create_store,
    finish_store,
    open_datacube,
    plan_fingerprint,
    region_done,
    regions,
    store_status,
    write_block,
)
from registry_gfm.dask_runtime import GDAL_CACHE_BYTES, dask_scheduler, local_threads, scheduler_get
from registry_gfm.errors import DatacubeError
from registry_gfm.ingest.access import asset_access, check_credentials, sign_items
from registry_gfm.ingest.cloud_mask import MASKS, clear_pixels
from registry_gfm.ingest.loaders import Loader
from registry_gfm.ingest.plan import MASK_BAND, BandInfo, IngestPlan, PlanError, find_asset, make_plan
from registry_gfm.ingest.search import SearchParams, search_items
from registry_gfm.ingest.specs import StacZarrConfig
from registry_gfm.progress import Progress, on_terminal, progress_bar

__all__ = ["IngestError", "StacZarr", "TimeSliceDataset", "build_stac_zarr", "run_ingest"]

log = logging.getLogger(__name__)

#: Regions per worker thread in one wave of the local scheduler (each wave reopens the COGs it reads).
_REGIONS_PER_WORKER = 8


class IngestError(RegistryCoreError, RuntimeError):
    """The ingest failed while reading or writing pixels; the message names the store and the cause."""


@dataclass
class TimeSliceDataset:
    """Whole time slices of a finished datacube: ``ds[i]`` -> image (bands, y, x), valid (y, x), time, bands."""

    store: str
    indices: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        t = self.indices[index]
        cube = open_datacube(self.store)
        sl = cube.isel(time=t)
        return {
            "image": sl["image"].values,
            "valid": sl["valid"].values.astype(bool),
            "time": str(np.datetime_as_string(sl["time"].values, unit="s")),
            "item_id": str(sl["item_id"].values),
            "bands": [str(b) for b in cube["band"].values],
        }


class StacZarr:
    """The ``stac-zarr`` data source: a STAC search made into a Zarr datacube."""

    def __init__(self, config: StacZarrConfig) -> None:
        self.config = config

    @property
    def bands(self) -> tuple[str, ...]:
        return self.config.bands

    @property
    def store(self) -> Path:
        return Path(self.config.store)

    def search_params(self) -> SearchParams:
        c = self.config
        if c.area_required and c.bbox is None and c.intersects is None:
            raise PlanError(f"{self._where()} is too large to search whole: set 'bbox' = [west, south, east, north] "
                            "(or 'intersects') and 'datetime' for the area and dates to ingest")
        return SearchParams(
            catalog=c.catalog,
            collections=tuple(c.collections),
            bbox=(c.bbox[0], c.bbox[1], c.bbox[2], c.bbox[3]) if c.bbox else None,
            intersects=c.intersects,
            datetime=c.datetime,
            query=c.query,
            filter=c.filter,
            max_items=c.max_items,
            sortby=c.sortby,
        )

    def loader(self) -> Loader:
        """The ``stac_loader`` component named by the ``loader`` option, from the registry."""
        from registry_core import get_registry

        registry = get_registry()
        try:
            spec = registry.get("stac_loader", self.config.loader)
        except LookupError as exc:
            raise PlanError(f"stac-zarr option 'loader': {exc}") from None
        load: Loader = registry.build_spec(spec, None)
        if not callable(load):
            raise PlanError(f"stac_loader {spec.id} built {type(load).__name__}, not a loader function")
        return load

    def _where(self) -> str:
        return f"STAC collection {', '.join(self.config.collections)} of {self.config.catalog}" \
            if self.config.collections else f"STAC catalog {self.config.catalog}"

    def access(self) -> dict[str, str]:
        """The GDAL settings the asset reads need (credentials); AccessError in one line when they are missing."""
        return check_credentials(self.config.credentials, self._where())

    def plan(self) -> IngestPlan:
        """Search and plan (no pixels read, except a COG header where STAC metadata is missing)."""
        c = self.config
        with asset_access(self.access()):
            items = search_items(self.search_params(), retries=c.retries, timeout=c.timeout)
            return make_plan(items, c.assets, crs=c.crs, resolution=c.resolution, bbox=c.bbox,
                             cloud_mask=c.cloud_mask, mask_asset=c.mask_asset, mask_values=c.mask_values)

    def resolve(self) -> dict[str, Any]:
        """What the search finds now, without reading pixels: each item's id, times and the links of the assets
        the ingest would read (``pull`` of a STAC card prints it)."""
        c = self.config
        self.access()
        items = search_items(self.search_params(), retries=c.retries, timeout=c.timeout)
        wanted = [*c.assets, *([c.mask_asset or MASKS[c.cloud_mask].asset] if c.cloud_mask != "none" else [])]
        found = []
        for item in items:
            keys = {name: find_asset(item, name) for name in wanted}
            found.append({"id": item.id, "collection": item.collection_id, "datetime": _time(item),
                          "updated": item.properties.get("updated"),
                          "assets": {name: item.assets[key].get_absolute_href() or item.assets[key].href
                                     for name, key in keys.items()}})
        return {"catalog": c.catalog, "collections": list(c.collections), "search": self.search_params().describe(),
                "items": found}

    def prepare(self, progress: bool | None = None) -> Path:
        """Run the ingest into ``store``; a complete store is kept, an interrupted one is resumed.

        ``progress``: report on stderr (a tqdm bar of regions written on a terminal, a plain line per tenth
        of them otherwise, and a line when the store is already complete); None reports only on a terminal.
        """
        c = self.config
        if progress is None:
            progress = on_terminal(sys.stderr)
        load = self.loader()  # a misspelt loader fails before any search
        if not self.store.exists():
            check_output_dir(self.store, "store")  # nor may a store that cannot be created
        plan = self.plan()
        source_fp = plan_fingerprint(plan, c.chunk_size)
        if store_status(self.store) == "complete":
            # Idempotent: the same search and plan find nothing to do; a different one is refused.
            if _source_fingerprint(self.store) != source_fp:
                changed = _items_changed(self.store, plan)
                if changed:
                    raise DatacubeError(f"the STAC items of store {self.store} changed since it was written: {changed}; "
                                        "remove the store (or choose another 'store' path) to ingest them again")
                raise DatacubeError(f"store {self.store} holds a different ingest (other items, bands, grid or "
                                    "chunking); remove it or choose another 'store' path")
            finish_store(self.store)
            if progress:
                print(f"ingest: store {self.store} is already complete (same items, bands, grid and chunking); "
                      "nothing to do", file=sys.stderr, flush=True)
            return self.store
        readable = sign_items(plan.items, c.signing, self._where(), c.retries)  # signed links for the readers only
        with writer_lock(self.store, "store"), dask_scheduler(c.scheduler) as scheduler, asset_access(self.access()):
            image = load(readable, plan.band_names, plan.grid, plan.dtype, plan.nodata, c.chunk_size, c.resampling)
            clear = None
            if plan.mask is not None:
                qa = load(readable, [MASK_BAND], plan.grid, "int64", plan.mask.outside, c.chunk_size, "nearest")
                clear = qa.data[:, 0].map_blocks(clear_pixels, plan.mask, plan.mask_values, dtype=bool)
                plan, image, clear = self._check_empty(plan, image, clear, scheduler)
            created = create_store(self.store, plan, c.chunk_size, {**self._provenance(plan), "source_fingerprint": source_fp})
            log.info("%s datacube %s", "created" if created else "resuming", self.store)
            self._write(plan, image, clear, scheduler, progress)
            finish_store(self.store)
        return self.store

    def dataset(self, split: str) -> TimeSliceDataset:
        """``train``: every time slice but the last; ``val``: the last (a temporal hold-out); ``all``: every slice."""
        cube = open_datacube(self.store)
        n = int(cube.sizes["time"])
        splits = {"all": range(n), "train": range(n - 1 if n > 1 else n), "val": range(n - 1, n) if n > 1 else range(0)}
        if split not in splits:
            raise ValueError(f"stac-zarr dataset split {split!r} is unknown; expected train, val or all")
        return TimeSliceDataset(str(self.store), tuple(splits[split]))

    def _check_empty(self, plan: IngestPlan, image: Any, clear: Any, scheduler: Any) -> tuple[IngestPlan, Any, Any]:
        """Find scenes without one clear pixel: an error naming them, or drop them (``empty_scenes``)."""
        import dask

        workers = {"num_workers": local_threads(scheduler).count} if scheduler == "threads" else {}
        (counts,) = dask.compute(clear.sum(axis=(1, 2)), scheduler=scheduler_get(scheduler), **workers)
        empty = [i for i, n in enumerate(counts) if n == 0]
        if not empty:
            return plan, image, clear
        names = ", ".join(plan.items[i].id for i in empty)
        if self.config.empty_scenes == "error" or len(empty) == len(plan.items):
            raise PlanError(f"STAC items {names} have no clear pixel after the {plan.mask.name if plan.mask else ''} "
                            "cloud mask in the requested area; exclude them (datetime, query) or set "
                            "empty_scenes='drop'")
        warnings.warn(f"stac-zarr: dropping all-cloud scenes {names}", stacklevel=3)
        keep = [i for i in range(len(plan.items)) if i not in empty]
        bands = tuple(BandInfo(b.name, b.dtype, b.nodata, b.common_name, b.wavelength, b.units,
                               tuple(b.scales[i] for i in keep), tuple(b.offsets[i] for i in keep)) for b in plan.bands)
        new = replace(plan, items=tuple(plan.items[i] for i in keep), bands=bands,
                      hrefs={plan.items[i].id: plan.hrefs[plan.items[i].id] for i in keep})
        return new, image[keep], clear[keep]

    def _provenance(self, plan: IngestPlan) -> dict[str, Any]:
        return {
            "search": self.search_params().describe(),
            "items": [{"id": it.id, "collection": it.collection_id, "datetime": _time(it),
                       "updated": it.properties.get("updated"), "assets": dict(plan.hrefs[it.id])} for it in plan.items],
            "loader": self.config.loader,
            "resampling": self.config.resampling,
            "component": "gfm:stac-zarr",
        }

    def _write(self, plan: IngestPlan, image: Any, clear: Any, scheduler: Any, progress: bool) -> None:
        """One task per unfinished region, its reads fused with its write: blocks never wait in memory.

        The image is chunked (1, bands, chunk, chunk), so a region is one block and ``map_blocks`` puts the
        write in the same blockwise chain as the loader's reads; dask fuses the chain into one task (a
        cloud mask adds a second task per region, which hands the writer a small boolean block).
        ``to_delayed`` optimises the graph once for all regions.
        """
        chunk = self.config.chunk_size
        store = str(self.store.absolute())  # workers of a cluster may run elsewhere in the file system
        data = image.data
        if data.numblocks[1] != 1:  # a loader that chunks bands apart: gather each region's bands
            data = data.rechunk({1: -1})
        masks = () if clear is None else (clear[:, None],)
        counts = data.map_blocks(write_block, *masks, chunks=(1, 1, 1, 1), dtype=np.int64, store=store, chunk=chunk,
                                 nodata=plan.nodata, band_nodata=tuple(b.nodata for b in plan.bands))
        blocks = counts.to_delayed()  # (T, 1, ny, nx)
        todo = [blocks[t, 0, i, j] for t, i, j in regions(plan, chunk) if not region_done(store, t, i, j)]
        if not todo:
            return
        if isinstance(scheduler, str) and progress:
            print(local_threads(scheduler).describe("dask reader"), file=sys.stderr, flush=True)
        try:
            with _noting_ctrl_c() as interrupted, progress_bar(len(todo), f"ingest {Path(store).name}", "region",
                                                               enabled=progress) as bar:
                try:
                    if isinstance(scheduler, str):
                        _run_local(todo, scheduler, bar)
                    else:
                        _run_distributed(todo, scheduler, bar)
                except Exception as exc:
                    # Ctrl-C unwinding through a library's cleanup can surface as that library's error (rasterio:
                    # "No GDAL environment exists"): it is still an interrupt, not a failed input
                    if interrupted or _caused_by_interrupt(exc):
                        raise KeyboardInterrupt from exc
                    raise
        except (PlanError, IngestError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise IngestError(f"ingest into {store} failed: {type(exc).__name__}: {exc} (completed regions are kept; "
                              "fix the input and rerun to resume)") from exc


def _caused_by_interrupt(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt lies in ``exc``'s chain of causes and contexts."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


@contextlib.contextmanager
def _noting_ctrl_c() -> Iterator[list[bool]]:
    """Within the block, SIGINT raises KeyboardInterrupt as by default and is also noted in the list yielded (true
    once one came), so an interrupt a library turned into its own error is still known; main thread only."""
    noted: list[bool] = []
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not \
            signal.default_int_handler:
        yield noted
        return

    def note(signum: int, frame: Any) -> None:
        noted.append(True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _run_local(tasks: list[Any], scheduler: str, bar: Progress) -> None:
    """Run region tasks on dask's local scheduler in waves of ``8 x threads`` regions, each region counted as it
    finishes; the threads are :func:`~registry_gfm.dask_runtime.local_threads` (two per usable core unless
    ``DASK_NUM_WORKERS`` or ``OMP_NUM_THREADS`` say otherwise).

    stackstac's readers keep a GDAL dataset open per thread and file until the ``compute`` ends, so one
    compute over a long time series would hold threads x items x bands open files; waves close them every
    few hundred regions. (Memory does not need waves: each region's read is fused with its write. Waves of
    2, 8 and 32 regions per worker ran equally fast, within the noise of this machine.)
    """
    import dask
    import rasterio
    from dask.callbacks import Callback

    workers = local_threads(scheduler).count
    kwargs = {"num_workers": workers} if scheduler == "threads" else {}
    wave = _REGIONS_PER_WORKER * workers
    keys = {task.key for task in tasks}

    def finished(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if key in keys:  # called on the scheduler's own thread: no lock needed
            bar.update(1)

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), Callback(posttask=finished):
        for start in range(0, len(tasks), wave):
            dask.compute(*tasks[start : start + wave], scheduler=scheduler_get(scheduler), **kwargs)


def _run_distributed(tasks: list[Any], client: Any, bar: Progress) -> None:
    """All regions handed to the cluster at once; each fused task reads and writes its own region, so no
    pixels cross workers (only the small reader table does)."""
    from distributed import as_completed

    for fut in as_completed(client.compute(tasks)):
        fut.result()
        bar.update(1)


def _time(item: Any) -> str | None:
    return item.datetime.isoformat() if item.datetime else None


def _items_changed(store: Path, plan: IngestPlan) -> str:
    """How the items a search finds now differ from those ``store`` was written from (new, gone, ``updated``
    moved), in a few words; empty when the same items are there unchanged."""
    import zarr

    provenance: Any = zarr.open_group(str(store), mode="r").attrs.get("provenance") or {}
    listed = provenance.get("items", []) if isinstance(provenance, dict) else []
    before: dict[str, Any] = {str(it.get("id")): it.get("updated") for it in listed if isinstance(it, dict)}
    now = {it.id: it.properties.get("updated") for it in plan.items}
    notes = [f"item {i} updated {before[i]} -> {now[i]}" for i in sorted(before.keys() & now.keys())
             if before[i] != now[i]]
    notes += [f"item {i} is new" for i in sorted(now.keys() - before.keys())]
    notes += [f"item {i} is gone" for i in sorted(before.keys() - now.keys())]
    return "; ".join(notes[:5]) + (f" and {len(notes) - 5} more" if len(notes) > 5 else "")


def _source_fingerprint(store: Path) -> str | None:
    import zarr

    provenance = zarr.open_group(str(store), mode="r").attrs.get("provenance") or {}
    return provenance.get("source_fingerprint") if isinstance(provenance, dict) else None


def build_stac_zarr(config: StacZarrConfig) -> StacZarr:
    """The registry target of ``data_source`` ``stac-zarr``."""
    return StacZarr(config)


def _options_from(config: Mapping[str, Any]) -> dict[str, Any]:
    """Options of the data slot from a pipeline config (``{"data": {...}}``) or from the options themselves."""
    section: Mapping[str, Any] = config.get("data", config)
    if "options" in section:
        section = section["options"]
    return {k: v for k, v in section.items() if k not in ("use", "name", "component", "kind", "plugin")}


def run_ingest(config: StacZarr | StacZarrConfig | Mapping[str, Any], progress: bool = True) -> Path:
    """Run a ``stac-zarr`` ingest from a component, its config, or a pipeline / options mapping; returns the store."""
    if isinstance(config, StacZarr):
        source = config
    elif isinstance(config, StacZarrConfig):
        source = StacZarr(config)
    else:
        from registry_core import get_registry

        source = get_registry().build("data_source", "stac-zarr", **_options_from(config))
    return source.prepare(progress=progress)

