"""``zarr-chips``: training samples of (frames, bands, chip, chip) windows cut from a Zarr datacube.

Sample ``i`` of a split is a pure function of (store, config, split, i): grid sampling walks the whole
chips that pass the ``min_valid`` test in a fixed order, and random sampling draws window ``i`` from a
generator seeded with (seed, split, i), so DataLoader workers and DDP ranks striping the indices all see
the same chips. Index ``i`` gives the same window in every epoch; the sampler's per-epoch permutation
changes only the order. The store is opened lazily in each process (handles are dropped when pickled), and
each process keeps its own cache of decoded chunks (``cache_mb``).

Each item is a dict::

    pixels        float32 (frames, bands, chip, chip)  normalised per band; 0 where not valid
    valid         bool    (frames, chip, chip)         True where the pixel is usable
    time          int64   (frames,)                     acquisition time, Unix seconds (UTC)
    center_lonlat float64 (2,)                          chip centre, WGS84 longitude and latitude
    gsd           float64 ()                            ground-sample distance: pixel size in CRS units
    window        int64   (3,)                          (t0, y0, x0) in store indices
    bands         list[str]                             band names, in the order of ``pixels``
    label         int64   (chip, chip) or ()            with ``labels``: class indices (segmentation) or the
                                                        chip's class (classification); ``ignore_index`` unlabelled

Once a pipeline attaches its tokenizer (``attach_tokenizer``), items are ``tokenizer.encode(item)``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from registry_core.atomic import sha256_file
from registry_gfm.chips.labels import STORE_PREFIX, LabelSpec, prepare_labels
from registry_gfm.chips.windows import Region, grid_windows, random_window, split_region, window_rng
from registry_gfm.cube.band_stats import BandStats, compute_band_stats, load_band_stats, save_band_stats
from registry_gfm.cube.chunk_cache import ChunkCache
from registry_gfm.cube.reader import CubeInfo, open_cube, select_bands
from registry_gfm.errors import DatacubeError

if TYPE_CHECKING:
    from registry_gfm.chips.specs import ZarrChipsConfig

__all__ = ["ChipDataset", "ChipLabels", "ZarrChips", "build_zarr_chips", "chip_label", "stats_path"]

log = logging.getLogger(__name__)

#: Random draws tried per sample before giving up on finding a window that passes ``min_valid``.
MAX_DRAWS = 64


def stats_path(store: str) -> Path:
    """Where band statistics of ``store`` are saved: next to it, ``<store>.stats.json``."""
    path = Path(store)
    return path.with_name(path.name + ".stats.json")


@dataclass(frozen=True)
class ChipLabels:
    """How a split labels its chips: the label array (opened lazily in each process) and the task's rule."""

    spec: LabelSpec
    #: The cached ``.npy`` on the datacube grid, or None for a ``store:NAME`` variable.
    cache: str | None
    task: str
    rule: str
    min_labelled: float

    def open(self, store: str) -> Any:
        """The (y, x) label array: the cache memory-mapped, or the store variable (read chip by chip)."""
        if self.cache is not None:
            return np.load(self.cache, mmap_mode="r")
        import zarr

        return zarr.open_group(store, mode="r", use_consolidated=False)[self.spec.source[len(STORE_PREFIX):]]


def chip_label(labels: np.ndarray, usable: np.ndarray, how: ChipLabels) -> tuple[np.ndarray, bool]:
    """The label of one chip (a (chip, chip) map or a class) and whether the chip passes ``min_labelled``.

    ``usable`` (chip, chip) is where any frame has a usable image pixel: elsewhere there is no label.
    """
    ignore, k = how.spec.ignore_index, how.spec.num_classes
    seg = np.where(usable, labels, ignore).astype(np.int64)
    labelled = seg != ignore
    fraction = float(labelled.mean())
    if how.task == "segmentation":
        return seg, fraction >= how.min_labelled and fraction > 0
    if how.rule == "centre":
        c = seg.shape[0] // 2
        label = int(seg[c, c])
        return np.asarray(label, np.int64), label != ignore and fraction >= how.min_labelled
    counts = np.bincount(seg[labelled], minlength=k)
    if counts.sum() == 0:
        return np.asarray(ignore, np.int64), False
    top = int(np.argmax(counts))  # ties go to the lower class index
    return np.asarray(top, np.int64), counts[top] / seg.size >= how.min_labelled


class ChipDataset:
    """Map-style chips of one split; picklable, opening the store on first use in each process."""

    def __init__(
        self,
        info: CubeInfo,
        *,
        split: str,
        band_index: tuple[int, ...],
        mean: np.ndarray,
        std: np.ndarray,
        apply_scale: bool,
        chip: int,
        frames: int,
        region: Region,
        windows: np.ndarray | None,
        length: int,
        min_valid: float,
        seed: int,
        cache_bytes: int = 0,
        labels: ChipLabels | None = None,
    ) -> None:
        self.info, self.split, self.band_index = info, split, band_index
        self.chip, self.frames, self.region = chip, frames, region
        self.windows, self.length, self.min_valid, self.seed = windows, length, min_valid, seed
        self.band_names = [info.bands[i].name for i in band_index]
        # pixels = (dn * scale + offset - mean) / std = dn * gain + bias, per (time, band)
        idx = list(band_index)
        scale = np.asarray(info.scale, np.float64)[:, idx] if apply_scale else np.ones((info.shape[0], len(idx)))
        offset = np.asarray(info.offset, np.float64)[:, idx] if apply_scale else np.zeros((info.shape[0], len(idx)))
        self._gain = (scale / std).astype(np.float32)  # (time, band)
        self._bias = ((offset - mean) / std).astype(np.float32)
        # reads cover the store's band range [lo, hi); a subset or reordering is picked from it afterwards
        self._band_lo, self._band_hi = min(idx), max(idx) + 1
        self._pick = None if idx == list(range(self._band_lo, self._band_hi)) else [i - self._band_lo for i in idx]
        self.cache_bytes = cache_bytes
        self.labels = labels
        self._label_array: Any = None
        self._times = np.asarray(info.times, np.int64)
        self._image: Any = None
        self._valid: Any = None
        self._to_lonlat: Any = None
        self._cache: ChunkCache | None = None
        #: ``tokenizer.encode`` applied to every item when a pipeline attached a tokenizer.
        self.encode: Any = None

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_image=None, _valid=None, _to_lonlat=None, _cache=None, _label_array=None)  # reopened lazily in each process
        return state

    def _open(self) -> None:
        import zarr

        group = zarr.open_group(self.info.store, mode="r")
        self._image, self._valid = group["image"], group["valid"]
        self._cache = ChunkCache(self.cache_bytes)
        if self.labels is not None:
            self._label_array = self.labels.open(self.info.store)

    def _lonlat(self, y0: int, x0: int) -> tuple[float, float]:
        if self._to_lonlat is None:
            from pyproj import CRS, Transformer

            crs = CRS.from_user_input(self.info.crs_wkt or f"EPSG:{self.info.epsg}")
            self._to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        a, b, c, d, e, f = self.info.transform
        col, row = x0 + self.chip / 2, y0 + self.chip / 2  # the chip centre, in pixel-edge coordinates
        lon, lat = self._to_lonlat.transform(a * col + b * row + c, d * col + e * row + f)
        return float(lon), float(lat)

    def _read_valid(self, t0: int, y0: int, x0: int) -> np.ndarray:
        assert self._cache is not None
        sel = (slice(t0, t0 + self.frames), slice(y0, y0 + self.chip), slice(x0, x0 + self.chip))
        return self._cache.read("valid", self._valid, sel).astype(bool)

    def chip_label(self, y0: int, x0: int, valid: np.ndarray) -> tuple[np.ndarray, bool] | None:
        """The label of the chip at ``(y0, x0)`` and whether it passes ``min_labelled``; None without labels."""
        if self.labels is None:
            return None
        raw = np.asarray(self._label_array[y0 : y0 + self.chip, x0 : x0 + self.chip])
        return chip_label(raw, valid.any(axis=0), self.labels)

    def locate(self, index: int) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray | None]:
        """Window ``(t0, y0, x0)`` of sample ``index``, its valid mask (frames, chip, chip) and its label."""
        if not 0 <= index < self.length:
            raise IndexError(f"chip index {index} out of range for the {self.split} split of {self.length} chips")
        if self._image is None:
            self._open()
        if self.windows is not None:
            t0, y0, x0 = (int(v) for v in self.windows[index])
            valid = self._read_valid(t0, y0, x0)
            labelled = self.chip_label(y0, x0, valid)
            return (t0, y0, x0), valid, None if labelled is None else labelled[0]
        rng = window_rng(self.seed, self.split, index)
        width, ntime = self.info.shape[3], self.info.shape[0]
        for _ in range(MAX_DRAWS):
            t0, y0, x0 = random_window(rng, self.region, ntime, self.frames, self.chip, width)
            valid = self._read_valid(t0, y0, x0)
            if valid.mean() < self.min_valid:
                continue
            labelled = self.chip_label(y0, x0, valid)
            if labelled is None:
                return (t0, y0, x0), valid, None
            if labelled[1]:
                return (t0, y0, x0), valid, labelled[0]
        need = f"min_valid={self.min_valid}"
        if self.labels is not None:
            need += f" and min_labelled={self.labels.min_labelled} (labels {self.labels.spec.source})"
        raise DatacubeError(
            f"datacube store {self.info.store}: no random {self.chip}x{self.chip} chip of the {self.split} split "
            f"reached {need} in {MAX_DRAWS} draws (sample {index}); lower the thresholds, or check the store's "
            "valid mask (it may be mostly cloud or nodata) and the labels' coverage"
        )

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.raw(index)
        return item if self.encode is None else self.encode(item)

    def raw(self, index: int) -> dict[str, Any]:
        """Sample ``index`` as a raw chip (``pixels``, ``valid``, ...), before any tokenizer's ``encode``."""
        import torch

        (t0, y0, x0), valid, label = self.locate(int(index))
        ts, ys, xs = slice(t0, t0 + self.frames), slice(y0, y0 + self.chip), slice(x0, x0 + self.chip)
        assert self._cache is not None
        raw = self._cache.read("image", self._image, (ts, slice(self._band_lo, self._band_hi), ys, xs))
        if self._pick is not None:
            raw = raw[:, self._pick]
        # (frames, bands, chip, chip) float32, computed in place: dn * gain + bias, then 0 where not valid
        pixels = np.multiply(raw, self._gain[ts, :, None, None], dtype=np.float32)
        pixels += self._bias[ts, :, None, None]
        pixels *= valid[:, None]  # unusable pixels read as 0, the band mean after normalisation
        a, b = self.info.transform[0], self.info.transform[1]
        item = {
            "pixels": torch.from_numpy(pixels),
            "valid": torch.from_numpy(valid),
            "time": torch.from_numpy(self._times[ts].copy()),
            "center_lonlat": torch.tensor(self._lonlat(y0, x0), dtype=torch.float64),
            "gsd": torch.tensor(float(np.hypot(a, b)), dtype=torch.float64),
            "window": torch.tensor([t0, y0, x0], dtype=torch.int64),
            "bands": list(self.band_names),
        }
        if label is not None:
            item["label"] = torch.from_numpy(label)
        return item


class ZarrChips:
    """The ``zarr-chips`` data source: ``prepare()`` checks the store and its statistics, ``dataset(split)``."""

    #: What the trainer calls one sample when it cannot count tokens.
    sample_unit = "chips"

    def __init__(self, config: ZarrChipsConfig) -> None:
        self.config = config
        self._info: CubeInfo | None = None
        self._band_index: tuple[int, ...] = ()
        self._norm: tuple[np.ndarray, np.ndarray] | None = None
        self._datasets: dict[str, ChipDataset] = {}
        self._tokenizer: Any = None
        self._labels: ChipLabels | None = None

    def attach_tokenizer(self, tokenizer: Any) -> ZarrChips:
        """Serve ``tokenizer.encode(chip)`` (the pipeline does this); a tokenizer without bands learns ours.

        A tokenizer with ``attach_normalization`` is handed :meth:`normalization`, to call when it needs the
        per-band mean / std the chips are normalised with (a spectral index wants physical values back).
        """
        self._tokenizer = tokenizer
        attach = getattr(tokenizer, "attach_bands", None)
        if callable(attach) and getattr(tokenizer, "bands", None) is None:
            attach(self.bands)
        attach_norm = getattr(tokenizer, "attach_normalization", None)
        if callable(attach_norm):
            attach_norm(self.normalization)
        for ds in self._datasets.values():
            ds.encode = tokenizer.encode
        return self

    def attach_weights(self, weights: Any) -> ZarrChips:
        """Normalise with the pretrained weights' statistics (``weights.input_stats()``, in the data's band
        order) unless ``mean`` / ``std`` are set: a pretrained encoder must see inputs scaled as in pretraining.

        Their statistics are in the weights' units (``meta["stats_scale"]`` physical units per number, 1e-4 for
        Prithvi's HLS reflectance x 10000); with ``apply_scale`` they are converted to physical units.
        """
        stats = getattr(weights, "input_stats", None)
        if self.config.mean is not None or not callable(stats):
            return self
        meta = getattr(weights, "meta", {})
        if "apply_scale" in meta and bool(meta["apply_scale"]) != self.config.apply_scale:
            raise DatacubeError(
                f"zarr-chips: the weights ({meta.get('run', 'pretrained')}) were trained with apply_scale="
                f"{str(bool(meta['apply_scale'])).lower()}, the data has apply_scale="
                f"{str(self.config.apply_scale).lower()}; set the same, so pixels are in the units of the statistics"
            )
        mean, std = (np.asarray(v, np.float64) for v in stats())
        unit = float(meta.get("stats_scale", 1.0))
        if self.config.apply_scale:
            mean, std = mean * unit, std * unit
        if len(mean) != len(self.bands):
            raise DatacubeError(f"zarr-chips: the weights give statistics for {len(mean)} bands, the data serves "
                                f"{len(self.bands)} bands {self.bands}")
        self._norm = (mean, std)
        log.info("zarr-chips normalises with the weights' mean / std: %s / %s", mean.tolist(), std.tolist())
        return self

    def fingerprint(self) -> dict[str, Any]:
        """What this source trains on, for the run's lock: the datacube's content hash (shape, bands, times,
        attributes) and the label raster's sha256; ``source`` names them (a resumed run must train on the same)."""
        labels = self.config.labels
        label_hash = sha256_file(labels) if labels and not labels.startswith(STORE_PREFIX) and Path(labels).is_file() else labels
        return {"source": f"datacube {self.config.store}" + (f" with labels {labels}" if labels else ""),
                "datacube": self.info.fingerprint, "labels": label_hash,
                **({"stac": self.info.stac} if self.info.stac else {})}

    @property
    def info(self) -> CubeInfo:
        """The store's metadata; opening it checks it is complete and holds the configured bands and sizes."""
        if self._info is None:
            self._open_store()
        assert self._info is not None
        return self._info

    @property
    def bands(self) -> list[str]:
        """Names of the store bands served, in ``pixels`` order."""
        info = self.info  # opens the store and resolves the band selection first
        return [info.bands[i].name for i in self._band_index]

    def _open_store(self) -> None:
        cfg = self.config
        info = open_cube(cfg.store)
        ntime, _, height, width = info.shape
        if cfg.frames > ntime:
            raise DatacubeError(f"datacube store {cfg.store} has {ntime} time step{'s' if ntime != 1 else ''}; option "
                                f"'frames' = {cfg.frames} needs at least {cfg.frames} (lower 'frames', or ingest more dates)")
        if cfg.chip_size > min(height, width):
            raise DatacubeError(
                f"datacube store {cfg.store} is {height}x{width} pixels, smaller than chip_size={cfg.chip_size}"
            )
        self._band_index = select_bands(info, cfg.bands)
        self._info = info

    def prepare(self) -> None:
        """Open and check the store, resolve bands, and compute or load per-band statistics; idempotent."""
        if self._norm is not None:
            return
        cfg, names = self.config, self.bands  # reading the band names opens and checks the store
        band_index = self._band_index
        if cfg.mean is not None and cfg.std is not None:
            if len(cfg.mean) != len(names) or len(cfg.std) != len(names):
                raise DatacubeError(
                    f"zarr-chips: mean ({len(cfg.mean)} values) and std ({len(cfg.std)} values) must give one value "
                    f"per band: {len(names)} bands {names}"
                )
            mean, std = np.asarray(cfg.mean, np.float64), np.asarray(cfg.std, np.float64)
        else:
            stats = self.band_stats()
            idx = list(band_index)
            src_mean, src_std = (stats.scaled_mean, stats.scaled_std) if cfg.apply_scale else (stats.mean, stats.std)
            mean, std = np.asarray(src_mean)[idx], np.asarray(src_std)[idx]
            std = np.where(std > 0, std, 1.0)  # a constant band stays constant instead of dividing by zero
        self._norm = (mean, std)

    def normalization(self) -> dict[str, Any]:
        """What a model trained on these chips expects: bands, per-band mean / std, and whether they apply to
        physical values (``apply_scale``: dn * scale + offset) or to the stored numbers; for deployment.

        A config with bands, mean and std (a saved run pins them) answers without opening the store."""
        cfg = self.config
        if cfg.bands is not None and cfg.mean is not None and cfg.std is not None:
            return {"bands": list(cfg.bands), "mean": list(cfg.mean), "std": list(cfg.std),
                    "apply_scale": bool(cfg.apply_scale)}
        self.prepare()
        assert self._norm is not None
        mean, std = self._norm
        return {"bands": list(self.bands), "mean": [float(v) for v in mean], "std": [float(v) for v in std],
                "apply_scale": bool(self.config.apply_scale)}

    def resolved_config(self) -> ZarrChipsConfig:
        """The config with the mean / std in use pinned (once prepared), so a saved run normalises as it
        trained without its store's statistics file: what ``predict`` and ``from-run`` weights rely on."""
        if self._norm is None or self.config.mean is not None:
            return self.config
        mean, std = self._norm
        return dataclasses.replace(self.config, mean=[float(v) for v in mean], std=[float(v) for v in std])

    @property
    def class_names(self) -> list[str]:
        """A name per class (``class_names``, else ``class 0``, ``class 1``, ...); empty without labels."""
        cfg = self.config
        if cfg.num_classes is None:
            return []
        return list(cfg.class_names) if cfg.class_names else [f"class {i}" for i in range(cfg.num_classes)]

    def chip_labels(self) -> ChipLabels | None:
        """The labels on the datacube grid (reprojected and cached on first use), with the task's rule."""
        cfg = self.config
        if cfg.labels is None or cfg.num_classes is None:
            return None
        if self._labels is None:
            spec = LabelSpec(cfg.labels, cfg.num_classes, cfg.ignore_index, tuple(cfg.label_values or ()))
            path = prepare_labels(self.info, spec)  # checks and caches (raises naming the raster)
            cache = None if path is None else str(path)
            self._labels = ChipLabels(spec, cache, cfg.task or "segmentation", cfg.label_rule, cfg.min_labelled)
        return self._labels

    def band_stats(self) -> BandStats:
        """Statistics of every store band: loaded from ``<store>.stats.json``, or one pass and then saved."""
        import zarr

        info = self.info
        path = stats_path(info.store)
        stats = load_band_stats(path, info.fingerprint)
        if stats is not None:
            return stats
        log.info("computing band statistics of %s (one pass over the store)", info.store)
        group = zarr.open_group(info.store, mode="r")
        stats = compute_band_stats(
            group["image"],
            group["valid"],
            info.band_names,
            np.asarray(info.scale, np.float64),
            np.asarray(info.offset, np.float64),
            info.fingerprint,
        )
        try:
            save_band_stats(stats, path)
        except OSError as exc:  # a read-only location: keep the numbers for this run only
            log.warning("cannot save band statistics to %s (%s); they will be recomputed next time", path, exc)
        return stats

    def has_split(self, split: str) -> bool:
        """Whether ``split`` has chips: ``"train"`` always, ``"val"`` unless ``val_fraction`` is 0."""
        return split == "train" or (split == "val" and self.config.val_fraction > 0)

    def dataset(self, split: str) -> ChipDataset:
        """The chips of ``split`` (``"train"`` or ``"val"``)."""
        if split in self._datasets:
            return self._datasets[split]
        self.prepare()
        assert self._norm is not None
        cfg, info = self.config, self.info
        region = split_region(info.store, info.shape[2], cfg.chip_size, cfg.val_fraction, split)
        windows: np.ndarray | None = None
        if cfg.sampling == "grid":
            import zarr

            valid = zarr.open_group(info.store, mode="r")["valid"]
            windows = grid_windows(valid, region, cfg.chip_size, cfg.frames, cfg.min_valid, info.shape[3])
            labels = self.chip_labels()
            if labels is not None and len(windows):
                windows = _labelled_windows(windows, valid, labels.open(info.store), labels, cfg.chip_size, cfg.frames)
            if len(windows) == 0:
                need = f"a valid fraction >= min_valid={cfg.min_valid}"
                if labels is not None:
                    need += f" and a labelled fraction >= min_labelled={cfg.min_labelled} ({cfg.labels})"
                raise DatacubeError(
                    f"datacube store {info.store}: no {cfg.chip_size}x{cfg.chip_size} grid chip of the {split} split "
                    f"has {need}; lower the thresholds or chip_size"
                )
            length = len(windows)
        elif split == "train":
            length = cfg.samples_per_epoch
        else:
            length = max(1, round(cfg.samples_per_epoch * cfg.val_fraction))
        mean, std = self._norm
        ds = ChipDataset(
            info,
            split=split,
            band_index=self._band_index,
            mean=mean,
            std=std,
            apply_scale=cfg.apply_scale,
            chip=cfg.chip_size,
            frames=cfg.frames,
            region=region,
            windows=windows,
            length=length,
            min_valid=cfg.min_valid,
            seed=cfg.seed,
            cache_bytes=cfg.cache_mb * 2**20,
            labels=self.chip_labels(),
        )
        if self._tokenizer is not None:
            ds.encode = self._tokenizer.encode
        self._datasets[split] = ds
        return ds


def _labelled_windows(windows: np.ndarray, valid: Any, labels: Any, how: ChipLabels, chip: int,
                      frames: int) -> np.ndarray:
    """The grid windows whose chip passes the labels' ``min_labelled`` test (in the same order)."""
    keep = []
    for i, (t0, y0, x0) in enumerate(windows.tolist()):
        usable = np.asarray(valid[t0 : t0 + frames, y0 : y0 + chip, x0 : x0 + chip]).astype(bool).any(axis=0)
        if chip_label(np.asarray(labels[y0 : y0 + chip, x0 : x0 + chip]), usable, how)[1]:
            keep.append(i)
    return windows[keep]


def build_zarr_chips(config: ZarrChipsConfig) -> ZarrChips:
    """Factory named by the ``zarr-chips`` spec; nothing is read until ``prepare()`` or ``dataset()``."""
    return ZarrChips(config)
