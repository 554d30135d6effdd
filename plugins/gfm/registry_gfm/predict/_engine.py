"""The deployment engine: a tile model over a whole scene as a lazy dask array of output blocks.

Each output block is one task. It reads its window of the input plus the halo the tiles around it
need (reflect-padded past the scene edges), runs the model on every tile of the global grid that
touches the block, ``batch_size`` tiles at a time, and adds ``weight * output`` into the block in the
grid's tile order, in float64, before dividing by the summed weight. A pixel's value therefore depends
only on the global grid, never on the block size, batch size or scheduler; memory is one block at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from registry_gfm.errors import PredictError
from registry_gfm.predict._grid import BLENDS, Blend, TileGrid, blend_window, reflect_index
from registry_gfm.predict._scene import Scene
from registry_gfm.predict._threads import CallGate
from registry_gfm.predict._tile_model import ModelInfo, model_info

__all__ = ["CLASS_NODATA", "MAX_TILE", "MAX_TILES_PER_CALL", "BlockPlan", "check_tiling", "class_map", "default_tiling",
           "machine_memory", "output_transform", "predict_block", "predict_blocks", "task_bytes"]

#: The value of a class map where the input is not valid.
CLASS_NODATA = 255


#: Largest ``--tile`` side in pixels, and most patch tokens one tile may hold (attention is quadratic in them).
MAX_TILE = 4096
MAX_TILE_TOKENS = 16384
#: Most tiles per call (``--batch-size``) or per forward pass (``--compute-batch``).
MAX_TILES_PER_CALL = 4096


def machine_memory() -> int:
    """This machine's physical memory in bytes (0 when the platform does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 0


def task_bytes(info: ModelInfo, *, tile: int, batch_size: int, compute_batch: int, block_size: int) -> int:
    """A lower bound of one block task's memory: its float32 tiles in flight and its float64 window and sums."""
    tiles = 4 * max(batch_size, compute_batch) * info.channels * tile * tile
    window = 8 * (block_size + 2 * tile) ** 2 * info.channels
    sums = 8 * (block_size // info.factor) ** 2 * (len(info.outputs) + 1)
    return tiles + window + sums


def check_tiling(info: ModelInfo, *, tile: int, overlap: int, blend: str, batch_size: int,
                 block_size: int, compute_batch: int = 1, memory: int | None = None) -> None:
    """Every problem of the tiling options for this model, reported at once, before anything is allocated.

    ``memory``: the bytes one block task may use (default: half this machine's memory).
    """
    problems: list[str] = []
    if tile < 1:
        problems.append(f"--tile {tile} must be a positive number of pixels")
    elif tile % info.multiple:
        problems.append(f"--tile {tile} must be a multiple of {info.multiple} (the model's patch size); "
                        f"try {max(info.multiple, tile // info.multiple * info.multiple)}")
    elif tile % info.factor:
        problems.append(f"--tile {tile} must be a multiple of {info.factor} (input pixels per output pixel)")
    elif tile > MAX_TILE or (tile // info.multiple) ** 2 > MAX_TILE_TOKENS:
        side = min(MAX_TILE, int(MAX_TILE_TOKENS ** 0.5) * info.multiple)
        problems.append(f"--tile {tile} is too large: at most {side} pixels for this model (patch size "
                        f"{info.multiple}, at most {MAX_TILE_TOKENS} patches per tile)")
    if not 0 <= overlap < max(tile, 1):
        problems.append(f"--overlap {overlap} must be at least 0 and smaller than --tile {tile}")
    elif overlap % info.factor:
        problems.append(f"--overlap {overlap} must be a multiple of {info.factor} (input pixels per output pixel)")
    if blend not in BLENDS:
        problems.append(f"--blend {blend!r} is unknown; expected one of {', '.join(BLENDS)}")
    for flag, value in (("--batch-size", batch_size), ("--compute-batch", compute_batch)):
        if not 1 <= value <= MAX_TILES_PER_CALL:
            problems.append(f"{flag} {value} must be between 1 and {MAX_TILES_PER_CALL} tiles")
    if block_size < 1 or block_size % info.factor:
        problems.append(f"--block-size {block_size} must be a positive multiple of {info.factor} "
                        "(input pixels per output pixel)")
    elif block_size < tile:
        problems.append(f"--block-size {block_size} must hold at least one tile (--tile {tile})")
    if not problems:
        budget = machine_memory() // 2 if memory is None else memory
        need = task_bytes(info, tile=tile, batch_size=batch_size, compute_batch=compute_batch, block_size=block_size)
        if budget and need > budget:
            problems.append(f"one block task would hold at least {need / 2**30:.3g} GiB (--tile {tile}, --batch-size "
                            f"{batch_size}, --compute-batch {compute_batch}, --block-size {block_size}), more than the "
                            f"{budget / 2**30:.3g} GiB allowed (half this machine's memory); lower them")
    if problems:
        raise PredictError("; ".join(problems))


def default_tiling(info: ModelInfo, tile: int | None = None, overlap: int | None = None) -> tuple[int, int]:
    """``--tile`` / ``--overlap`` where not given: 64 and 16 pixels, or what fits a model whose output pixel covers
    more (a classifier's chip: whole chips per tile, no overlap)."""
    if tile is None:
        tile = 64 if 64 % info.multiple == 0 and 64 % info.factor == 0 else max(info.multiple, info.factor)
    if overlap is None:
        overlap = 16 if 16 % info.factor == 0 and tile > 16 else 0
    return tile, overlap


@dataclass(frozen=True)
class BlockPlan:
    """What one block task needs to know (plain numbers, so it pickles to any worker)."""

    grid: TileGrid
    #: Output pixels [row0, row1) x [col0, col1) of the block.
    rows: tuple[int, int]
    cols: tuple[int, int]
    #: Tile indices along each axis whose output touches the block.
    tile_rows: range
    tile_cols: range
    #: First input row / column of the window the task receives (before reflect-padding).
    window_origin: tuple[int, int]
    channels: int
    batch_size: int

    def padded_index(self, axis: int) -> np.ndarray:
        """Window positions of the padded input along ``axis``: input pixels of the touching tiles, reflected."""
        tiles = self.tile_rows if axis == 0 else self.tile_cols
        size = self.grid.height if axis == 0 else self.grid.width
        start = tiles.start * self.grid.stride
        stop = (tiles.stop - 1) * self.grid.stride + self.grid.tile
        return reflect_index(np.arange(start, stop), size) - self.window_origin[axis]


def _plan(grid: TileGrid, rows: tuple[int, int], cols: tuple[int, int], channels: int,
          batch_size: int) -> tuple[BlockPlan, tuple[slice, slice]]:
    """The block's plan and the input window (rows, cols) its task must be given."""
    tile_rows, tile_cols = grid.tiles_touching(*rows, axis=0), grid.tiles_touching(*cols, axis=1)
    window = []
    for tiles, size in ((tile_rows, grid.height), (tile_cols, grid.width)):
        index = reflect_index(np.arange(tiles.start * grid.stride, (tiles.stop - 1) * grid.stride + grid.tile), size)
        window.append(slice(int(index.min()), int(index.max()) + 1))
    plan = BlockPlan(grid, rows, cols, tile_rows, tile_cols, (window[0].start, window[1].start), channels,
                     batch_size)
    return plan, (window[0], window[1])


def _valid_output(valid: np.ndarray, plan: BlockPlan) -> np.ndarray:
    """(h, w) bool: output pixels with at least one valid input pixel inside the scene."""
    f, g = plan.grid.factor, plan.grid
    (r0, r1), (c0, c1) = plan.rows, plan.cols
    y0, x0 = r0 * f - plan.window_origin[0], c0 * f - plan.window_origin[1]
    ys, xs = min(r1 * f, g.height) - r0 * f, min(c1 * f, g.width) - c0 * f
    own = valid[y0 : y0 + ys, x0 : x0 + xs]
    if f == 1:
        return own.copy()
    padded = np.zeros(((r1 - r0) * f, (c1 - c0) * f), dtype=bool)
    padded[:ys, :xs] = own
    return padded.reshape(r1 - r0, f, c1 - c0, f).any(axis=(1, 3))


def _run_model(model: Any, tiles: np.ndarray, valid: np.ndarray, plan: BlockPlan) -> np.ndarray:
    out = np.asarray(model(tiles, valid))
    size = plan.grid.out_tile
    want = (len(tiles), plan.channels, size, size)
    if out.shape != want:
        raise PredictError(f"model {type(model).__name__} returned shape {out.shape} for tiles {tiles.shape}; "
                           f"expected {want} (batch, channels, tile / factor, tile / factor)")
    return out.astype(np.float32, copy=False)


def predict_block(image: np.ndarray, valid: np.ndarray, model: Any, plan: BlockPlan, window: np.ndarray,
                  gate: CallGate | None = None) -> np.ndarray:
    """One output block (channels, h, w) float32, NaN where no input pixel is valid.

    ``image`` (bands, y, x) and ``valid`` (y, x) are the input window starting at ``plan.window_origin``;
    ``window`` is the tile's blending weights at output resolution; each model call waits for a turn at ``gate``.
    """
    g = plan.grid
    ys, xs = plan.padded_index(0), plan.padded_index(1)
    pixels = image[:, ys][:, :, xs]  # reflect-padded input under every touching tile
    valid = np.asarray(valid, dtype=bool)
    mask = valid[ys][:, xs]
    (r0, r1), (c0, c1) = plan.rows, plan.cols
    acc = np.zeros((plan.channels, r1 - r0, c1 - c0), np.float64)
    weight = np.zeros((r1 - r0, c1 - c0), np.float64)
    tiles = [(i, j) for i in plan.tile_rows for j in plan.tile_cols]  # global tile order: rows, then columns
    t, s, ot, os_ = g.tile, g.stride, g.out_tile, g.out_stride
    top, left = plan.tile_rows.start, plan.tile_cols.start
    for start in range(0, len(tiles), plan.batch_size):
        batch = tiles[start : start + plan.batch_size]
        crops = [(slice((i - top) * s, (i - top) * s + t), slice((j - left) * s, (j - left) * s + t)) for i, j in batch]
        x = np.stack([pixels[:, cy, cx] for cy, cx in crops])  # (B, C, tile, tile)
        v = np.stack([mask[cy, cx] for cy, cx in crops])
        with gate if gate is not None else contextlib.nullcontext():
            out = _run_model(model, x, v, plan)
        for (i, j), tile_out in zip(batch, out):
            y_lo, y_hi = max(i * os_, r0), min(i * os_ + ot, r1)
            x_lo, x_hi = max(j * os_, c0), min(j * os_ + ot, c1)
            ty, tx = slice(y_lo - i * os_, y_hi - i * os_), slice(x_lo - j * os_, x_hi - j * os_)
            by, bx = slice(y_lo - r0, y_hi - r0), slice(x_lo - c0, x_hi - c0)
            acc[:, by, bx] += window[ty, tx] * tile_out[:, ty, tx]
            weight[by, bx] += window[ty, tx]
    result = (acc / weight).astype(np.float32)
    result[:, ~_valid_output(valid, plan)] = np.nan
    return result


def _edges(size: int, step: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + step, size)) for lo in range(0, size, step)]


def predict_blocks(scene: Scene, model: Any, *, tile: int = 64, overlap: int = 16, blend: Blend = "cosine",
                   batch_size: int = 16, block_size: int = 512, calls: int | None = None) -> Any:
    """The blended model output over ``scene``: a dask array (channels, H / factor, W / factor) float32.

    Chunks are output blocks of ``block_size / factor`` pixels; pixels without a valid input pixel are
    NaN. ``tile`` and ``overlap`` are in input pixels; ``blend`` weighs the overlapping tiles (see
    :func:`~registry_gfm.predict._grid.blend_ramp`); ``calls``: at most this many model calls at once in one
    process (default: no limit). Nothing is computed until the array is.
    """
    import dask
    import dask.array as da

    info = model_info(model)
    check_tiling(info, tile=tile, overlap=overlap, blend=blend, batch_size=batch_size, block_size=block_size,
                 compute_batch=int(getattr(model, "compute_batch", 1)))
    if scene.image.shape[0] != len(info.bands) * info.frames:
        frames = f"{info.frames} time steps of " if info.frames > 1 else ""
        raise PredictError(f"input {scene.path} gives {scene.image.shape[0]} channels, the model needs "
                           f"{frames}{len(info.bands)} bands ({', '.join(info.bands)})")
    height, width = scene.shape
    grid = TileGrid(height, width, tile, overlap, info.factor)
    window = blend_window(grid.out_tile, overlap // info.factor, blend)
    held = dask.delayed(model, pure=False)  # one graph node for the model, shared by every block
    gate = CallGate(calls) if calls else None
    step = block_size // info.factor
    out_h, out_w = grid.out_shape
    # the input in blocks of block_size, each read once and handed to every block task whose window reaches it
    image = scene.image.rechunk((scene.image.shape[0], block_size, block_size)).to_delayed()[0]
    valid = scene.valid.rechunk((block_size, block_size)).to_delayed()
    blocks: list[list[Any]] = []
    for rows in _edges(out_h, step):
        line = []
        for cols in _edges(out_w, step):
            plan, (wy, wx) = _plan(grid, rows, cols, info.channels, batch_size)
            parts = [((yi, xi), image[yi, xi], valid[yi, xi])
                     for yi in range(wy.start // block_size, (wy.stop - 1) // block_size + 1)
                     for xi in range(wx.start // block_size, (wx.stop - 1) // block_size + 1)]
            task = dask.delayed(_predict_from_blocks, pure=True)(parts, block_size, (wy, wx), held, plan, window, gate)
            line.append(da.from_delayed(task, (info.channels, rows[1] - rows[0], cols[1] - cols[0]), np.float32))
        blocks.append(line)
    return da.block(blocks)


def _predict_from_blocks(parts: Sequence[tuple[tuple[int, int], np.ndarray, np.ndarray]], block_size: int,
                         window: tuple[slice, slice], model: Any, plan: BlockPlan, weights: np.ndarray,
                         gate: CallGate | None = None) -> np.ndarray:
    """:func:`predict_block` on the input window ``window`` put together from the input blocks that cover it."""
    wy, wx = window
    image = np.empty((parts[0][1].shape[0], wy.stop - wy.start, wx.stop - wx.start), np.float32)
    valid = np.empty((wy.stop - wy.start, wx.stop - wx.start), bool)
    for (yi, xi), img, val in parts:
        y0, x0 = yi * block_size, xi * block_size
        ys = slice(max(y0, wy.start), min(y0 + img.shape[1], wy.stop))
        xs = slice(max(x0, wx.start), min(x0 + img.shape[2], wx.stop))
        image[:, ys.start - wy.start : ys.stop - wy.start, xs.start - wx.start : xs.stop - wx.start] = \
            img[:, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        valid[ys.start - wy.start : ys.stop - wy.start, xs.start - wx.start : xs.stop - wx.start] = \
            val[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return predict_block(image, valid, model, plan, weights, gate)


def _argmax(block: np.ndarray, nodata: int) -> np.ndarray:
    invalid = np.isnan(block).any(axis=0)
    classes = np.argmax(np.nan_to_num(block, nan=-np.inf), axis=0).astype(np.uint8)
    classes[invalid] = nodata
    return classes[None]


def class_map(probabilities: Any, nodata: int = CLASS_NODATA) -> Any:
    """(1, H, W) uint8 class map of blended per-class probabilities; ``nodata`` where any is NaN."""
    return probabilities.map_blocks(_argmax, nodata, dtype=np.uint8, chunks=((1,), *probabilities.chunks[1:]))


def output_transform(transform: Sequence[float], factor: int) -> tuple[float, float, float, float, float, float]:
    """The transform of an output raster whose pixels are ``factor`` x ``factor`` input pixels."""
    a, b, c, d, e, f = (float(v) for v in transform[:6])
    return a * factor, b * factor, c, d * factor, e * factor, f
