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
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from registry_gfm.data.cloud_mask import clear_pixels
from registry_gfm.data.specs import StacZarrConfig
from registry_gfm.data.stac_loaders import LOADERS
from registry_gfm.data.stac_plan import MASK_BAND, BandInfo, IngestPlan, PlanError, make_plan
from registry_gfm.data.stac_search import SearchParams, search_items
from registry_gfm.data.zarr_cube import (
    DatacubeError,
    create_store,
    finish_store,
    open_datacube,
    plan_fingerprint,
    region_done,
    regions,
    store_status,
    write_region,
)

__all__ = ["IngestError", "StacZarr", "TimeSliceDataset", "build_stac_zarr", "run_ingest"]

log = logging.getLogger(__name__)


class IngestError(RuntimeError):
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


@contextlib.contextmanager
def dask_scheduler(spec: str) -> Iterator[Any]:
    """``threads``/``synchronous`` -> that name; ``local:N`` -> a Client on a new LocalCluster; else Client(address)."""
    if spec in ("threads", "synchronous"):
        yield spec
        return
    from distributed import Client, LocalCluster

    if spec.startswith("local:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"scheduler {spec!r}: expected 'local:N' with N the number of workers") from None
        with (
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    with Client(spec) as client:
        yield client


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

    def plan(self) -> IngestPlan:
        """Search and plan (no pixels read, except a COG header where STAC metadata is missing)."""
        c = self.config
        items = search_items(self.search_params(), retries=c.retries)
        return make_plan(items, c.assets, crs=c.crs, resolution=c.resolution, bbox=c.bbox, cloud_mask=c.cloud_mask,
                         mask_asset=c.mask_asset, mask_values=c.mask_values)

    def prepare(self, progress: bool | None = None) -> Path:
        """Run the ingest into ``store``; a complete store is kept, an interrupted one is resumed.

        ``progress``: a tqdm bar of regions written; None shows it when stderr is a terminal.
        """
        c = self.config
        if progress is None:
            progress = sys.stderr.isatty()
        plan = self.plan()
        source_fp = plan_fingerprint(plan, c.chunk_size)
        if store_status(self.store) == "complete":
            # Idempotent: the same search and plan find nothing to do; a different one is refused.
            if _source_fingerprint(self.store) != source_fp:
                raise DatacubeError(f"store {self.store} holds a different ingest (other items, bands, grid or "
                                    "chunking); remove it or choose another 'store' path")
            finish_store(self.store)
            return self.store
        with dask_scheduler(c.scheduler) as scheduler:
            load = LOADERS[c.loader]
            image = load(plan.items, plan.band_names, plan.grid, plan.dtype, plan.nodata, c.chunk_size, c.resampling)
            clear = None
            if plan.mask is not None:
                qa = load(plan.items, [MASK_BAND], plan.grid, "int64", plan.mask.outside, c.chunk_size, "nearest")
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

        (counts,) = dask.compute(clear.sum(axis=(1, 2)), scheduler=scheduler)
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
            "items": [{"id": it.id, "collection": it.collection_id, "datetime": it.datetime.isoformat()
                       if it.datetime else None, "assets": dict(plan.hrefs[it.id])} for it in plan.items],
            "loader": self.config.loader,
            "resampling": self.config.resampling,
            "component": "gfm:stac-zarr",
        }

    def _write(self, plan: IngestPlan, image: Any, clear: Any, scheduler: Any, progress: bool) -> None:
        """One task per unfinished region: its band blocks (and QA block) in, one chunk of each array out."""
        from dask import delayed

        chunk = self.config.chunk_size
        img_blocks = image.data.to_delayed()  # (T, B, ny, nx), each block (1, 1, h, w)
        clear_blocks = clear.to_delayed() if clear is not None else None  # (T, ny, nx)
        band_nodata = tuple(b.nodata for b in plan.bands)
        store = str(self.store.absolute())  # workers of a cluster may run elsewhere in the file system
        todo = [r for r in regions(plan, chunk) if not region_done(store, *r)]
        tasks = [
            delayed(write_region, pure=False)(
                store, t, i, j, chunk, [img_blocks[t, b, i, j] for b in range(len(plan.bands))],
                clear_blocks[t, i, j] if clear_blocks is not None else None, plan.nodata, band_nodata,
                dask_key_name=f"write-region-{t}-{i}-{j}")
            for t, i, j in todo
        ]
        if not tasks:
            return
        try:
            with _tqdm(len(tasks), progress, store) as bar:
                if isinstance(scheduler, str):
                    _run_local(tasks, scheduler, bar)
                else:
                    _run_distributed(tasks, scheduler, bar)
        except (PlanError, IngestError):
            raise
        except Exception as exc:
            raise IngestError(f"ingest into {store} failed: {type(exc).__name__}: {exc} (completed regions are kept; "
                              "fix the input and rerun to resume)") from exc


#: Regions in flight per worker thread on the local scheduler (memory: about this x workers x region size).
_REGIONS_PER_WORKER = 2


def _run_local(tasks: list[Any], scheduler: str, bar: Any) -> None:
    """Run region tasks on dask's local scheduler in waves of a few regions each.

    Handed the whole graph at once, dask reads every block before the first write (the reads are all
    roots of one graph), so memory would grow with the datacube; waves of ``2 x workers`` regions keep
    it bounded while reads and Zarr writes (which release the GIL) still overlap within a wave. (A pool
    running each region's culled graph on one thread, without waves, measured no faster: each region
    then opens its own readers of the COGs, where the regions of a wave share them.)
    """
    import dask

    workers = 1 if scheduler == "synchronous" else 2 * (os.cpu_count() or 1)
    kwargs = {"num_workers": workers} if scheduler == "threads" else {}
    wave = _REGIONS_PER_WORKER * workers
    for start in range(0, len(tasks), wave):
        batch = tasks[start : start + wave]
        dask.compute(*batch, scheduler=scheduler, **kwargs)
        bar.update(len(batch))


def _cull(task: Any) -> Any:
    """A region task with its graph trimmed to its own band and QA blocks.

    One by one: optimizing them together would give every task the merged graph of all regions.
    """
    import dask

    return dask.optimize(task)[0]


def _compute_region(task: Any) -> Any:
    """Run one region's (culled) graph where it landed: reads and write on one worker, no transfers."""
    import dask

    return dask.compute(task, scheduler="synchronous")[0]


def _run_distributed(tasks: list[Any], client: Any, bar: Any) -> None:
    """One future per region, each carrying only its own reads, so a region's blocks never cross workers.

    (Handing the scheduler the whole graph spreads a region's band reads over workers and ships the
    blocks to the writer, which made a 2-worker LocalCluster several times slower than threads.)
    """
    from distributed import as_completed

    culled = [_cull(task) for task in tasks]
    futures = [client.submit(_compute_region, task, pure=False) for task in culled]
    for fut in as_completed(futures):
        fut.result()
        bar.update(1)


class _NullBar:
    def update(self, n: int) -> None:
        pass


@contextlib.contextmanager
def _tqdm(total: int, enabled: bool, store: str) -> Iterator[Any]:
    if not enabled:
        yield _NullBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=f"ingest {Path(store).name}", unit="region")
    try:
        yield bar
    finally:
        bar.close()


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

