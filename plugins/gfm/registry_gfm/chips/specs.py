"""The light manifest of the chips: ``zarr-chips``' config schema and spec (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass

from registry_core import ComponentSpec, option

__all__ = ["SPECS", "TASKS", "ZarrChipsConfig"]

#: What ``zarr-chips`` labels are for.
TASKS = ("segmentation", "classification")


@dataclass
class ZarrChipsConfig:
    """Options of ``zarr-chips``: which store, chip shape, bands, sampling, validity threshold, normalisation."""

    store: str = option("datacube.zarr", help="path of a complete Zarr datacube written by stac-zarr")
    chip_size: int = option(64, help="chip height and width in pixels", min=1, max=8192)
    frames: int = option(1, help="consecutive time steps per chip (the `frames` port)", min=1)
    bands: list[str] | None = option(None, help="bands in order, by store name, common name or catalog alias ('B8A', "
                                     "'nir08'); None: every store band in store order (the `bands` port)")
    sampling: str = option("grid", help="'grid': every whole chip on a chip-size grid; 'random': windows drawn "
                           "anywhere, deterministically by (seed, index)", choices=("grid", "random"))
    samples_per_epoch: int = option(1024, help="chips in the train split with random sampling (val: this times "
                                    "val_fraction)", min=1)
    min_valid: float = option(0.5, help="skip chips whose fraction of usable pixels (over all frames) is below this",
                              min=0.0, max=1.0)
    mean: list[float] | None = option(None, help="per-band mean to normalise with, in the units of the pixels "
                                      "(None: computed from the store in one pass and saved as <store>.stats.json)")
    std: list[float] | None = option(None, help="per-band standard deviation to normalise with (None: computed, "
                                     "with mean)")
    apply_scale: bool = option(True, help="turn stored numbers into physical values (dn * scale + offset, from the "
                               "store) before normalising; false normalises raw numbers")
    seed: int = option(0, help="seed of random sampling: chip i of a split depends only on (seed, split, i)")
    val_fraction: float = option(0.1, help="share of chip rows at the bottom (south) of the scene held out as the "
                                 "val split; 0: no val split", min=0.0, max=0.9)
    cache_mb: int = option(256, help="decoded-chunk cache per process (each DataLoader worker has its own), in "
                           "MiB; neighbouring chips share chunks; 0 turns it off", min=0)
    labels: str | None = option(None, help="land-cover labels: a single-band GeoTIFF / COG in any CRS (reprojected "
                                "with nearest resampling onto the datacube grid once, cached as "
                                "<store>.labels-<key>.npy) or 'store:NAME', a (y, x) variable of the store; None: "
                                "unlabelled chips")
    task: str | None = option(None, help="with labels: 'segmentation' (a label chip aligned pixel for pixel with "
                              "the image chip) or 'classification' (one label per chip, by label_rule); None: "
                              "segmentation when labels are set (the `task` port)", choices=TASKS)
    num_classes: int | None = option(None, help="classes of the labels (the `num_classes` port); needed with labels",
                                     min=1, max=65535)
    label_values: list[int] | None = option(None, help="raster value of each class in class order, e.g. [1, 2, 3] "
                                            "makes raster value 1 class 0; None: raster values are class indices")
    class_names: list[str] | None = option(None, help="a name per class, for metrics and reports (the "
                                           "`class_names` port); None: 'class 0', 'class 1', ...")
    ignore_index: int = option(255, help="label of pixels without a class (the raster's nodata, outside the raster, "
                               "no usable image pixel); losses and metrics skip it", min=-1, max=65535)
    label_rule: str = option("majority", help="classification: the chip's label is its most frequent class "
                             "('majority') or the class of its centre pixel ('centre')", choices=("majority", "centre"))
    min_labelled: float = option(0.0, help="with labels: skip chips whose labelled fraction is below this "
                                 "(classification: also the share the majority class needs)", min=0.0, max=1.0)

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError("options 'mean' and 'std' go together: give both (one value per band) or neither")
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"option 'std' must be positive for every band, got {self.std}")
        if self.bands is not None and not self.bands:
            raise ValueError("option 'bands' is an empty list; give band names, or leave it unset for all bands")
        if self.labels is None and self.task is not None:
            raise ValueError(f"option 'task' = {self.task!r} needs 'labels' (a label raster or 'store:NAME')")
        if self.labels is not None and self.task is None:
            self.task = "segmentation"
        if self.labels is not None and self.num_classes is None:
            raise ValueError("option 'labels' needs 'num_classes' (how many classes the labels hold)")
        if self.label_values is not None and self.num_classes is not None and len(self.label_values) != self.num_classes:
            raise ValueError(f"option 'label_values' gives {len(self.label_values)} values for num_classes="
                             f"{self.num_classes}; expected one raster value per class")
        if self.label_values is not None and len(set(self.label_values)) != len(self.label_values):
            twice = sorted({v for v in self.label_values if self.label_values.count(v) > 1})
            raise ValueError(f"option 'label_values' {list(self.label_values)} names the raster value(s) "
                             f"{', '.join(map(str, twice))} for more than one class; expected one distinct value per class")
        if self.class_names is not None and self.num_classes is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"option 'class_names' gives {len(self.class_names)} names for num_classes="
                             f"{self.num_classes}; expected one name per class")
        if self.num_classes is not None and 0 <= self.ignore_index < self.num_classes:
            raise ValueError(f"option 'ignore_index' {self.ignore_index} is a class index (num_classes="
                             f"{self.num_classes}); pick a value outside 0 .. {self.num_classes - 1}, e.g. 255")


SPECS: list[ComponentSpec] = [
    ComponentSpec(
        kind="data_source",
        name="zarr-chips",
        target="registry_gfm.chips.zarr_chips:build_zarr_chips",
        summary="Grid or random (frames, bands, chip, chip) samples from a Zarr datacube, normalised per band.",
        modality="imagery",
        tags=("gfm", "zarr", "chips", "training"),
        config=ZarrChipsConfig,
        provides={"bands": None, "frames": None, "chip_size": None, "num_classes": None, "class_names": None,
                  "task": None, "ignore_index": None, "tokens": "continuous"},
    ),
]
