"""A predicted land-cover map for the report: next to the label raster on the scene grid, and the RGB scene.

The map is a single-band GeoTIFF / COG that ``predict`` wrote for a segmentation run (its ``classes`` tag
names the classes its values index). The run among the report's runs whose data slot has the same class
names gives the label raster and the datacube: the labels are put on the datacube's grid exactly as for
training (``prepare_labels``: reprojected with nearest resampling, cached), and the scene's first frame is
shown as a stretched RGB composite. One colour per class in every panel and in the legend, which the page
shows once, under the figure (not inside the PNG as well).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from registry_core.report import ReportFigure, ReportRun
from registry_core.report.figures import image_panels
from registry_gfm.chips.labels import LabelSpec, prepare_labels
from registry_gfm.cube.reader import CubeInfo, open_cube
from registry_gfm.render import rgb_indices, stretch

__all__ = ["UNLABELLED", "VECTOR_SUFFIXES", "class_colours", "landcover_figures", "polygon_figures"]

#: Colours of common land-cover class names (after the NLCD legend); other names take the FALLBACK colours.
COLOURS: Final = {
    "developed": "#d7301f", "urban": "#d7301f", "built-up": "#d7301f",
    "agriculture": "#e6c229", "cropland": "#e6c229", "crops": "#e6c229",
    "herbaceous": "#a6d96a", "grassland": "#a6d96a", "grass": "#a6d96a",
    "shrubland": "#b8a055", "shrub": "#b8a055",
    "forest": "#1a7837", "trees": "#1a7837",
    "water": "#2c7fb8",
    "sediment": "#d8b48a", "barren": "#d8b48a", "bare": "#d8b48a",
    "wetland": "#7fcdbb", "snow": "#f0f0f0", "ice": "#f0f0f0", "cloud": "#bdbdbd",
}
#: Colours for class names not in COLOURS, in order (distinct from each other and from the table above).
FALLBACK: Final = ("#6a3d9a", "#ff7f00", "#e7298a", "#8c510a", "#01665e", "#525252", "#b2182b", "#4d9221")
#: Pixels without a class (unlabelled, no data, outside the scene).
UNLABELLED: Final = "#ffffff"


def class_colours(names: Sequence[str]) -> list[str]:
    """One ``#rrggbb`` per class name: a land-cover colour for a known name, else the next fallback colour."""
    out, spare = [], iter(FALLBACK * (len(names) // len(FALLBACK) + 1))
    for name in names:
        out.append(COLOURS.get(name.strip().lower()) or next(spare))
    return out


def _paint(classes: np.ndarray, colours: Sequence[str]) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) in [0, 1]; values outside the classes are UNLABELLED."""
    table = np.array([[int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)] for c in [*colours, UNLABELLED]])
    index = np.where((classes >= 0) & (classes < len(colours)), classes, len(colours)).astype(np.int64)
    return np.asarray(table[index])


def _labelled_run(runs: Sequence[ReportRun], names: Sequence[str]) -> ReportRun | None:
    """The run whose data slot has labels with exactly these class names (the run that made the map)."""
    for run in runs:
        data = run.slot("data")
        if run.uses("registry_gfm") and data.get("labels") and list(data.get("class_names") or []) == list(names):
            return run
    return None


def _same_grid(info: CubeInfo, shape: tuple[int, ...], transform: Sequence[float]) -> bool:
    return tuple(info.shape[2:]) == shape and np.allclose(info.transform, transform[:6])


def _scene_rgb(info: CubeInfo) -> np.ndarray:
    """The datacube's first frame as a stretched RGB composite (H, W, 3), invalid pixels black."""
    import zarr

    idx = list(rgb_indices(info.band_names))
    group: Any = zarr.open_group(info.store, mode="r")
    image = np.stack([np.asarray(group["image"][0, b], np.float64) * info.scale[0][b] + info.offset[0][b]
                      for b in idx])
    valid = np.asarray(group["valid"][0]).astype(bool)
    return np.asarray(stretch(image, valid=valid).transpose(1, 2, 0))


def _labels(run: ReportRun, info: CubeInfo) -> tuple[np.ndarray, int, str]:
    """The run's labels on the datacube grid (class indices), their ignore index and where they came from."""
    data = run.slot("data")
    source = str(data["labels"])
    spec = LabelSpec(source, int(data.get("num_classes") or len(data.get("class_names") or [])),
                     int(data.get("ignore_index", 255)), tuple(int(v) for v in data.get("label_values") or ()))
    cached = prepare_labels(info, spec)
    if cached is None:  # a store variable
        import zarr

        group: Any = zarr.open_group(info.store, mode="r")
        labels = np.asarray(group[source.split(":", 1)[1]][...])
    else:
        labels = np.load(cached)
    return labels, spec.ignore_index, Path(source).name


def _read_map(path: Path) -> tuple[np.ndarray, list[str], float | None, tuple[float, ...]] | None:
    """The class map, its class names, nodata and transform; None when the file is not a class map."""
    import rasterio

    try:
        ds = rasterio.open(path)
    except rasterio.errors.RasterioIOError:
        return None
    with ds:
        names = ds.tags().get("classes")
        if ds.count != 1 or not names:
            return None
        classes = json.loads(names)
        return ds.read(1), [str(n) for n in classes], ds.nodata, tuple(ds.transform)[:6]


def landcover_figures(path: Path, runs: Sequence[ReportRun], out_dir: Path) -> list[ReportFigure] | None:
    """The land-cover figure of a class map ``predict`` wrote; None for any other file."""
    if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
        return None
    found = _read_map(path)
    if found is None:
        return None
    predicted, names, nodata, transform = found
    colours = class_colours(names)
    pred = np.where(predicted == nodata, -1, predicted.astype(np.int64)) if nodata is not None else predicted
    panels: list[tuple[str, Any]] = []
    scene: tuple[str, Any] | None = None
    notes = []
    run = _labelled_run(runs, names)
    if run is None:
        notes.append("no run of the report has labels with these classes, so the map is shown alone")
    else:
        store = str(run.slot("data").get("store", ""))
        info = open_cube(store)
        if not _same_grid(info, predicted.shape, transform):
            notes.append(f"the map's grid differs from datacube {store}, so the scene and labels are left out")
        else:
            labels, ignore, source = _labels(run, info)
            lab = np.where(labels == ignore, -1, labels.astype(np.int64))
            panels.append((f"labels ({source} on the scene grid)", _paint(lab, colours)))
            scene = (f"scene (RGB, {Path(store).name}, frame 0)", _scene_rgb(info))
            scored = (lab >= 0) & (pred >= 0)
            if scored.any():
                notes.append(f"the map agrees with the labels on {float((lab[scored] == pred[scored]).mean()):.1%} "
                             f"of {int(scored.sum()):,} labelled pixels (train and validation areas)")
    panels.append((f"predicted ({path.name})", _paint(pred, colours)))
    if scene is not None:
        panels.append(scene)  # labels and prediction side by side; the scene after them (below on a narrow figure)
    legend = [*zip(names, colours), ("unlabelled / no data", UNLABELLED)]
    # the page shows the legend under the figure (ReportFigure.legend), in text that any screen keeps readable
    image = image_panels(out_dir / f"landcover-{path.stem}.png", panels, title=f"land cover: {path.name}")
    maker = f" of run {run.label}" if run is not None else ""
    size = f"{predicted.shape[1]} x {predicted.shape[0]} px"
    shown = (f"The label raster reprojected (nearest) onto the scene grid, the predicted land-cover map{maker} "
             f"({size}) and the RGB scene" if scene is not None else f"The predicted land-cover map{maker} ({size})")
    caption = shown + "; one colour per class" + "".join(f"; {n}" for n in notes) + "."
    return [ReportFigure("Land cover", f"land-cover map {path.name}", caption, image, tuple(legend))]


#: Polygon files ``predict`` / ``vectorize`` write.
VECTOR_SUFFIXES: Final = (".gpkg", ".geojson", ".fgb", ".parquet")


def _read_polygons(path: Path) -> list[tuple[int, str, Any]] | None:
    """(class, name, shapely polygon) of every feature; None when the file is not a polygon file of class maps.

    Read with pyarrow and pyogrio, the packages that wrote it (fiona is no run-time dependency; imports stay out of
    the ``try``, so a missing package is an error, not "not a polygon file")."""
    import pyarrow.parquet as pq
    import pyogrio
    import shapely

    try:
        if path.suffix.lower() == ".parquet":
            table = pq.read_table(path, columns=["class", "name", "geometry"])
            classes, names, wkb = (table.column(c).to_pylist() for c in ("class", "name", "geometry"))
        else:
            if not {"class", "name"} <= set(pyogrio.read_info(path)["fields"].tolist()):
                return None
            _, _, wkb, (classes, names) = pyogrio.raw.read(path, columns=["class", "name"])
        return [(int(c), str(n), g) for c, n, g in zip(classes, names, shapely.from_wkb(wkb), strict=True)]
    except Exception:  # not a vector file we read
        return None


def polygon_figures(path: Path, runs: Sequence[ReportRun], out_dir: Path) -> list[ReportFigure] | None:
    """The polygons of a land-cover map (predict's or vectorize's output) drawn over the RGB scene; None for any
    other file."""
    if path.suffix.lower() not in VECTOR_SUFFIXES or not path.is_file():
        return None
    found = _read_polygons(path)
    if found is None:
        return None
    from rasterio.features import rasterize
    from rasterio.transform import from_bounds

    by_class = {c: n for c, n, _ in found}
    run = next((r for r in runs if r.uses("registry_gfm") and r.slot("data").get("labels")
                and all(0 <= c < len(r.slot("data").get("class_names") or [])
                        and r.slot("data")["class_names"][c] == n for c, n in by_class.items())), None)
    names = list(run.slot("data")["class_names"]) if run is not None else [by_class[c] for c in sorted(by_class)]
    colours = class_colours(names)
    notes = []
    if run is not None:
        info = open_cube(str(run.slot("data").get("store", "")))
        background, shape, transform = _scene_rgb(info), tuple(info.shape[2:]), info.transform
        where = f"over the RGB scene ({Path(info.store).name}, frame 0)"
    else:
        import shapely

        west, south, east, north = shapely.total_bounds([g for *_, g in found])
        width = 512
        height = max(1, round(width * (north - south) / max(east - west, 1e-9)))
        shape, transform = (height, width), tuple(from_bounds(west, south, east, north, width, height))[:6]
        background = np.ones((*shape, 3))
        where = "alone (no run of the report has these classes)"
        notes.append("no run of the report has these classes, so the scene is left out")
    from affine import Affine

    colour_of = {c: colours[c] if c < len(colours) else FALLBACK[0] for c in by_class}
    edges = rasterize(((g.boundary, c + 1) for c, _, g in found), out_shape=shape, transform=Affine(*transform),
                      fill=0, all_touched=True, dtype="int32")
    image = background.copy()
    for c, colour in colour_of.items():
        image[edges == c + 1] = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    counts = {n: sum(1 for k, _, _ in found if k == c) for c, n in sorted(by_class.items())}
    legend = [(f"{n} ({counts.get(n, 0)})", col) for n, col in zip(names, colours, strict=True) if n in counts]
    figure = image_panels(out_dir / f"polygons-{path.stem}.png", [(f"{len(found):,} polygons {where}", image)],
                          title=f"land-cover polygons: {path.name}", panel_size=6.0)  # legend: on the page
    maker = f" of run {run.label}" if run is not None else ""
    caption = (f"The {len(found):,} polygons of {path.name}{maker}, outlined in their class colour {where}; the "
               "legend gives each class's polygon count" + "".join(f"; {n}" for n in notes) + ".")
    return [ReportFigure("Land cover", f"land-cover polygons {path.name}", caption, figure, tuple(legend))]
