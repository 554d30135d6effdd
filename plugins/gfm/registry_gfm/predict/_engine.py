"""The deployment engine: a tile model over a whole scene as a lazy dask array of output blocks.

Every tile of the global grid is computed once, by the task of the block its last output pixel lies in, on
that block's window of the input plus the reflect-padded halo its tiles read (each input block read once and
handed to every task that reaches into it), ``batch_size`` tiles at a time. A pixel only that task's tiles
reach is blended there; a pixel on a seam gets the raw outputs of the tiles of up to four tasks, blended by
its block's finishing task. Either way it is the sum of ``weight * output`` over the tiles touching it, in
the grid's tile order, in float64, divided by the summed weight: a pixel's value depends only on the global
grid, never on the block size, batch size or scheduler; memory is a few blocks at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from registry_gfm.errors import PredictError
from registry_gfm.predict._grid import BLENDS, Blend, TileGrid, blend_window, reflect_index
from registry_gfm.predict._scene import Scene
from registry_gfm.predict._threads import CallGate
from registry_gfm.predict._tile_model import ModelInfo, model_info

__all__ = ["CLASS_NODATA", "MAX_TILE", "MAX_TILES_PER_CALL", "BlockLayout", "TileJob", "check_tiling", "class_map",
           "compute_tiles", "default_tiling", "finish_block", "group_side", "machine_memory", "output_transform",
           "owned_tiles", "predict_blocks", "task_bytes"]

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


#: Output pixels (row0, row1, col0, col1) of the scene, ends excluded.
Rect = tuple[int, int, int, int]
#: Part of one tile's raw output handed to a finishing task: the index of the target's shared rectangle it lies
#: in, the tile (row, column), the output pixel (row, column) of its top-left corner, and its values (K, h, w).
Piece = tuple[int, tuple[int, int], int, int, np.ndarray]
#: The finishing tasks a block's tiles reach, in the order of ``TileJob.targets``: (block row, block column) steps
#: to this block and those to the left, above and diagonally (a tile is owned by the block its last pixel lies in).
NEIGHBOURS: tuple[tuple[int, int], ...] = ((0, 0), (0, -1), (-1, 0), (-1, -1))


@dataclass(frozen=True)
class TileJob:
    """What one block's tile task needs (plain numbers, so it pickles to any worker): the tiles it owns (see
    :func:`owned_tiles`) and where their outputs go."""

    grid: TileGrid
    tile_rows: range
    tile_cols: range
    #: First input row / column of the window the task receives (before reflect-padding).
    window_origin: tuple[int, int]
    #: The block's pixels that only its own tiles reach: blended here, final (None: there are none).
    core: Rect | None
    #: Per neighbour of ``NEIGHBOURS``: the shared rectangles its finishing task blends (see :class:`BlockLayout`).
    targets: tuple[tuple[Rect, ...], ...]
    channels: int
    batch_size: int


@dataclass(frozen=True)
class BlockLayout:
    """One output block's pixels and how its finishing task assembles them.

    A pixel is *shared* when a tile owned by the block below or to the right reaches it: such pixels lie in the
    band those tiles spill back into (the bottom rows, then the right columns above them), and the finishing task
    blends them from the raw tile outputs every tile task hands it, in the grid's tile order. The other pixels,
    ``core``, only the block's own tiles reach: its tile task blends them.
    """

    grid: TileGrid
    rows: tuple[int, int]
    cols: tuple[int, int]
    core: Rect | None
    shared: tuple[Rect, ...]
    channels: int


def group_side(compute_batch: int) -> int:
    """The least m whose square is a multiple of ``compute_batch`` (4 for 16): a block owning a multiple of m tile
    rows and of m tile columns owns whole groups of ``compute_batch`` tiles."""
    return next(m for m in range(1, compute_batch + 1) if (m * m) % compute_batch == 0)


def owned_tiles(grid: TileGrid, edges: Sequence[tuple[int, int]], axis: int, multiple: int = 1) -> list[range]:
    """Per block along ``axis``: the tiles its task computes, every tile once.

    A block may own a tile that ends inside it and starts no earlier than the block before it (a tile spills only
    one block back: a tile is no larger than a block). Within that, each block but the last owns a multiple of
    ``multiple`` tiles where it can (as many as it may, else every tile that ends in it): with whole groups of the
    model's ``compute_batch`` per block only the blocks of the last row and column pad a call with zero tiles (at
    4096^2, 7,568 tile evaluations for 7,225 tiles became 7,312)."""
    count = grid.rows if axis == 0 else grid.cols
    owned, first = [], 0
    for k, (lo, hi) in enumerate(edges):
        stop = count
        if k + 1 < len(edges):
            most = grid.tiles_owned(lo, hi, axis).stop  # the tiles that end before hi
            least = -(-lo // grid.out_stride)  # the next block's first tile must not start before this block
            stop = most - (most - first) % multiple
            if stop < max(least, first):
                stop = most
        owned.append(range(first, stop))
        first = stop
    return owned


def _reach(grid: TileGrid, edges: Sequence[tuple[int, int]], owned: Sequence[range]) -> list[int]:
    """Per block along an axis: where the band that the next block's tiles spill back into starts (``hi`` if none).

    Only the next block's tiles reach back into a block (see :func:`owned_tiles`)."""
    starts = []
    for k, (lo, hi) in enumerate(edges):
        after = owned[k + 1] if k + 1 < len(edges) else range(0)
        starts.append(max(lo, min(hi, after.start * grid.out_stride)) if after else hi)
    return starts


def _layout(grid: TileGrid, rows: tuple[int, int], cols: tuple[int, int], row_start: int, col_start: int,
            channels: int) -> BlockLayout:
    """The block's core and shared rectangles, given where the spill of the tiles below / to the right starts."""
    (r0, r1), (c0, c1) = rows, cols
    shared = []
    if row_start < r1:
        shared.append((row_start, r1, c0, c1))
    if col_start < c1 and row_start > r0:
        shared.append((r0, row_start, col_start, c1))
    core = (r0, row_start, c0, col_start) if row_start > r0 and col_start > c0 else None
    return BlockLayout(grid, rows, cols, core, tuple(shared), channels)


def _tile_pixels(grid: TileGrid, tiles: range, axis: int) -> np.ndarray:
    """Scene positions along ``axis`` of the input pixels under the tiles ``tiles``, reflect padding folded back."""
    size = grid.height if axis == 0 else grid.width
    return reflect_index(np.arange(tiles.start * grid.stride, (tiles.stop - 1) * grid.stride + grid.tile), size)


def _input_window(grid: TileGrid, tiles: range, axis: int) -> slice:
    """The input pixels along ``axis`` the tiles ``tiles`` read, reflect padding folded back into the scene."""
    index = _tile_pixels(grid, tiles, axis)
    return slice(int(index.min()), int(index.max()) + 1)


def _overlap(a: Rect, b: Rect) -> Rect | None:
    y0, y1, x0, x1 = max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3])
    return (y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None


def _blend_into(acc: np.ndarray, weight: np.ndarray, rect: Rect, values: np.ndarray, at: tuple[int, int],
                tile_at: tuple[int, int], weights: np.ndarray) -> None:
    """Add ``weights * values`` into the float64 sums of ``rect``: ``values`` (K, h, w) is part of the tile whose
    output origin is ``tile_at``, its top-left output pixel at ``at``. The same float64 products and sums in the
    same order give the same bits, whichever task adds them."""
    y, x = at
    cut = _overlap((y, y + values.shape[1], x, x + values.shape[2]), rect)
    if cut is None:
        return
    vy, vx = slice(cut[0] - y, cut[1] - y), slice(cut[2] - x, cut[3] - x)
    wy, wx = slice(cut[0] - tile_at[0], cut[1] - tile_at[0]), slice(cut[2] - tile_at[1], cut[3] - tile_at[1])
    ay, ax = slice(cut[0] - rect[0], cut[1] - rect[0]), slice(cut[2] - rect[2], cut[3] - rect[2])
    acc[:, ay, ax] += weights[wy, wx] * values[:, vy, vx]
    weight[ay, ax] += weights[wy, wx]


def _sums(channels: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
    return (np.zeros((channels, rect[1] - rect[0], rect[3] - rect[2]), np.float64),
            np.zeros((rect[1] - rect[0], rect[3] - rect[2]), np.float64))


def _valid_output(valid: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: output pixels of a block with at least one valid input pixel inside the scene; ``valid`` is
    the block's own input mask (a partial last block holds fewer than h * factor rows)."""
    if factor == 1:
        return valid
    padded = np.zeros((shape[0] * factor, shape[1] * factor), dtype=bool)
    padded[: valid.shape[0], : valid.shape[1]] = valid
    return padded.reshape(shape[0], factor, shape[1], factor).any(axis=(1, 3))


def _run_model(model: Any, tiles: np.ndarray, valid: np.ndarray, channels: int, size: int) -> np.ndarray:
    out = np.asarray(model(tiles, valid))
    want = (len(tiles), channels, size, size)
    if out.shape != want:
        raise PredictError(f"model {type(model).__name__} returned shape {out.shape} for tiles {tiles.shape}; "
                           f"expected {want} (batch, channels, tile / factor, tile / factor)")
    return out.astype(np.float32, copy=False)


def _assemble(parts: Sequence[tuple[tuple[int, int], np.ndarray, np.ndarray]], block_size: int,
              window: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    """The input window ``window`` (image, valid) put together from the input blocks that cover it."""
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
    return image, valid


def compute_tiles(parts: Sequence[tuple[tuple[int, int], np.ndarray, np.ndarray]], block_size: int,
                  window: tuple[slice, slice], model: Any, job: TileJob, weights: np.ndarray,
                  gate: CallGate | None = None) -> tuple[Any, ...]:
    """Run the tiles ``job`` owns, ``batch_size`` per model call in the grid's tile order, on the input window
    ``window`` assembled from ``parts``; the calls run on ``gate``'s threads (up to its limit of them ahead, their
    outputs blended here in order as they come back), else here one after another.

    Returns the block's core (K, h, w) float32 (None if it has none), then per block of ``NEIGHBOURS`` the
    :data:`Piece` list of the raw outputs its shared rectangles need (copies, so the task's buffers are freed).
    """
    image, valid = _assemble(parts, block_size, window)
    g = job.grid
    ys = _tile_pixels(g, job.tile_rows, 0) - job.window_origin[0]
    xs = _tile_pixels(g, job.tile_cols, 1) - job.window_origin[1]
    pixels, mask = image[:, ys][:, :, xs], valid[ys][:, xs]  # reflect-padded input under every owned tile
    del image, valid
    sums = _sums(job.channels, job.core) if job.core else None
    pieces: list[list[Piece]] = [[] for _ in job.targets]
    tiles = [(i, j) for i in job.tile_rows for j in job.tile_cols]  # the grid's tile order: rows, then columns
    t, s, ot, os_ = g.tile, g.stride, g.out_tile, g.out_stride
    top, left = job.tile_rows.start, job.tile_cols.start

    def call(batch: list[tuple[int, int]]) -> Any:
        crops = [(slice((i - top) * s, (i - top) * s + t), slice((j - left) * s, (j - left) * s + t)) for i, j in batch]
        x = np.stack([pixels[:, cy, cx] for cy, cx in crops])  # (B, C, tile, tile)
        v = np.stack([mask[cy, cx] for cy, cx in crops])
        if gate is None:
            return _run_model(model, x, v, job.channels, ot)
        return gate.submit(_run_model, model, x, v, job.channels, ot)

    batches = [tiles[start : start + job.batch_size] for start in range(0, len(tiles), job.batch_size)]
    depth = gate.limit if gate is not None else 0  # calls handed to the gate ahead of the one blended next
    ahead: deque[Any] = deque(call(b) for b in batches[:depth])
    for n, batch in enumerate(batches):
        if n + depth < len(batches):
            ahead.append(call(batches[n + depth]))
        done = ahead.popleft()
        out = done.result() if gate is not None else done
        for (i, j), tile_out in zip(batch, out):
            at = (i * os_, j * os_)
            if sums is not None and job.core is not None:
                _blend_into(*sums, job.core, tile_out, at, at, weights)
            for found, rects in zip(pieces, job.targets):
                for k, rect in enumerate(rects):
                    cut = _overlap((at[0], at[0] + ot, at[1], at[1] + ot), rect)
                    if cut is not None:
                        part = tile_out[:, cut[0] - at[0] : cut[1] - at[0], cut[2] - at[1] : cut[3] - at[1]]
                        found.append((k, (i, j), cut[0], cut[2], part.copy()))
    core = (sums[0] / sums[1]).astype(np.float32) if sums is not None else None
    return (core, *pieces)


def finish_block(core: np.ndarray | None, sources: Sequence[Sequence[Piece]], valid: np.ndarray,
                 layout: BlockLayout, weights: np.ndarray) -> np.ndarray:
    """One output block (K, h, w) float32, NaN where no input pixel is valid: the core its tile task blended,
    and each shared rectangle blended here from the pieces of the tile tasks that reach it, in the grid's tile
    order, as the core is; ``valid`` is the block's own input mask."""
    (r0, r1), (c0, c1) = layout.rows, layout.cols
    g = layout.grid
    result = np.empty((layout.channels, r1 - r0, c1 - c0), np.float32)
    if layout.core is not None:
        y0, y1, x0, x1 = layout.core
        result[:, y0 - r0 : y1 - r0, x0 - c0 : x1 - c0] = core
    for k, rect in enumerate(layout.shared):
        acc, weight = _sums(layout.channels, rect)
        pieces = sorted((p for found in sources for p in found if p[0] == k), key=lambda p: p[1])
        for _, (i, j), y, x, values in pieces:
            _blend_into(acc, weight, rect, values, (y, x), (i * g.out_stride, j * g.out_stride), weights)
        result[:, rect[0] - r0 : rect[1] - r0, rect[2] - c0 : rect[3] - c0] = acc / weight
    result[:, ~_valid_output(np.asarray(valid, dtype=bool), g.factor, (r1 - r0, c1 - c0))] = np.nan
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

    Three kinds of tasks, so that each input block is read once and each tile computed once: the input in blocks
    of ``block_size`` (read once, handed to every tile task whose window reaches into it); per block, a tile task
    running the tiles the block owns (:func:`owned_tiles`, :func:`compute_tiles`), which blends the pixels only they
    reach and hands the raw outputs of its tiles' other pixels to the finishing tasks of this block and its
    neighbours left, above and diagonal; per block, a finishing task (:func:`finish_block`) that blends those
    shared pixels in the grid's tile order. Each pixel is the same float64 sum in the same order as if one task
    ran every tile touching it, so the output does not depend on the block size, batch size or scheduler; what
    waits for a finishing task is a core and a few strips of tile outputs, not whole tiles.

    The tasks' keys end in their block's row and column, so dask orders them the same way every time: from the
    last block to the first, row by row. A tile spills only into blocks whose tasks come later then, so a
    finishing task can run right after its block's tile task and cores do not wait. (Measured at 8192^2 with a
    per-pixel linear model on 2 cores, peak RSS: 1214 MiB; the one-task-per-block engine 1378 MiB; tiles owned by
    the block of their first pixel and keys of hashes only, which dask ran down columns, 1457 MiB.)
    """
    import dask
    import dask.array as da
    from dask.base import tokenize

    info = model_info(model)
    check_tiling(info, tile=tile, overlap=overlap, blend=blend, batch_size=batch_size, block_size=block_size,
                 compute_batch=int(getattr(model, "compute_batch", 1)))
    if scene.image.shape[0] != len(info.bands) * info.frames:
        frames = f"{info.frames} time steps of " if info.frames > 1 else ""
        raise PredictError(f"input {scene.path} gives {scene.image.shape[0]} channels, the model needs "
                           f"{frames}{len(info.bands)} bands ({', '.join(info.bands)})")
    height, width = scene.shape
    grid = TileGrid(height, width, tile, overlap, info.factor)
    weights = blend_window(grid.out_tile, overlap // info.factor, blend)
    held = dask.delayed(model, pure=False)  # one graph node for the model, shared by every block
    gate = CallGate(calls) if calls else None
    step = block_size // info.factor
    out_h, out_w = grid.out_shape
    rows, cols = _edges(out_h, step), _edges(out_w, step)
    side = group_side(int(getattr(model, "compute_batch", 1)))
    owned = owned_tiles(grid, rows, 0, side), owned_tiles(grid, cols, 1, side)
    starts = _reach(grid, rows, owned[0]), _reach(grid, cols, owned[1])
    layouts = {(bi, bj): _layout(grid, r, c, starts[0][bi], starts[1][bj], info.channels)
               for bi, r in enumerate(rows) for bj, c in enumerate(cols)}
    # the input in blocks of block_size, each read once and handed to every tile task whose window reaches it
    # (not optimized apart: that fuses the read of a chunk into both its image and its mask, reading it twice)
    image = scene.image.rechunk((scene.image.shape[0], block_size, block_size)).to_delayed(optimize_graph=False)[0]
    valid = scene.valid.rechunk((block_size, block_size)).to_delayed(optimize_graph=False)
    outputs: dict[tuple[int, int], Any] = {}
    name = tokenize(held.key, image[0, 0].key, grid, blend, batch_size, block_size, calls)
    for (bi, bj), layout in layouts.items():
        tile_rows, tile_cols = owned[0][bi], owned[1][bj]
        if not tile_rows or not tile_cols:
            continue
        wy, wx = _input_window(grid, tile_rows, 0), _input_window(grid, tile_cols, 1)
        targets = tuple(layouts[bi + di, bj + dj].shared if (bi + di, bj + dj) in layouts else ()
                        for di, dj in NEIGHBOURS)
        job = TileJob(grid, tile_rows, tile_cols, (wy.start, wx.start), layout.core, targets, info.channels,
                      batch_size)
        parts = [((yi, xi), image[yi, xi], valid[yi, xi])
                 for yi in range(wy.start // block_size, (wy.stop - 1) // block_size + 1)
                 for xi in range(wx.start // block_size, (wx.stop - 1) // block_size + 1)]
        outputs[bi, bj] = dask.delayed(compute_tiles, pure=True, nout=1 + len(NEIGHBOURS))(
            parts, block_size, (wy, wx), held, job, weights, gate,
            dask_key_name=f"compute_tiles-{name}-{bi:06d}-{bj:06d}")
    blocks: list[list[Any]] = []
    for bi, (r0, r1) in enumerate(rows):
        line = []
        for bj, (c0, c1) in enumerate(cols):
            layout = layouts[bi, bj]
            core = outputs[bi, bj][0] if layout.core is not None else None
            sources = [outputs[bi - di, bj - dj][1 + n] for n, (di, dj) in enumerate(NEIGHBOURS)
                       if (bi - di, bj - dj) in outputs]
            task = dask.delayed(finish_block, pure=True)(core, sources, valid[bi, bj], layout, weights,
                                                         dask_key_name=f"finish_block-{name}-{bi:06d}-{bj:06d}")
            line.append(da.from_delayed(task, (info.channels, r1 - r0, c1 - c0), np.float32))
        blocks.append(line)
    return da.block(blocks)


def _most_probable(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each pixel's most probable class, the probabilities with NaN as -inf, where any probability is NaN)."""
    filled = np.nan_to_num(block, nan=-np.inf)
    return np.argmax(filled, axis=0), filled, np.isnan(block).any(axis=0)


def _argmax(block: np.ndarray, nodata: int) -> np.ndarray:
    classes, _, invalid = _most_probable(block)
    classes = classes.astype(np.uint8)
    classes[invalid] = nodata
    return classes[None]


def class_map(probabilities: Any, nodata: int = CLASS_NODATA) -> Any:
    """(1, H, W) uint8 class map of blended per-class probabilities; ``nodata`` where any is NaN."""
    return probabilities.map_blocks(_argmax, nodata, dtype=np.uint8, chunks=((1,), *probabilities.chunks[1:]))


def _class_and_score(block: np.ndarray) -> np.ndarray:
    classes, filled, invalid = _most_probable(block)
    chosen = np.take_along_axis(filled, classes[None], axis=0)[0]
    out = np.stack([classes.astype(np.float32), chosen])
    out[:, invalid] = np.nan
    return out


def class_and_score(probabilities: Any) -> Any:
    """(2, H, W) float32: each pixel's most probable class (as :func:`class_map` picks it) and that class's
    probability, NaN where any probability is: all that polygons need of the probabilities, in 2 bands, not C."""
    return probabilities.map_blocks(_class_and_score, dtype=np.float32, chunks=((2,), *probabilities.chunks[1:]))


def output_transform(transform: Sequence[float], factor: int) -> tuple[float, float, float, float, float, float]:
    """The transform of an output raster whose pixels are ``factor`` x ``factor`` input pixels."""
    a, b, c, d, e, f = (float(v) for v in transform[:6])
    return a * factor, b * factor, c, d * factor, e * factor, f
