"""The regions of a class map, traced block by block into polygons (WKB): the engine under ``vectorize`` and
``predict``'s vector outputs.

Regions are labelled block by block (``scipy.ndimage.label``) and joined across block edges with a union-find, so a
region that crosses blocks comes out as one polygon, identical for every block size. Their boundaries are traced
here, in numpy, as walks along pixel edges whose course depends on class values alone (:func:`_trace`): a walk that
leaves a block is cut there and joined again by its keys once its region is complete, straight-through vertices are
dropped, rings touching themselves across a corner are cut apart (shell and holes meeting at a point, as a valid
polygon has them), and the rings are put in the normal form ``shapely.normalize`` gives, all in integer pixel
coordinates (exact); only then are they mapped through the raster's transform, straight into WKB. A region is
yielded as soon as the block row below it cannot reach it; between block rows only the open regions' boundary walks
(integer vertex arrays, one set) and the labels the next row can meet are held, so memory follows the open regions'
boundaries, not the scene or how many blocks a region spans (a region spanning the scene still costs its own
boundary).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

__all__ = ["Batch", "BlockReader", "present", "regions"]


class _UnionFind:
    """Region labels joined across block edges, each to the lowest label it is joined with."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, a: int) -> int:
        root = a
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while a != root:  # path compression
            self.parent[a], a = root, self.parent.get(a, a)
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def keep(self, labels: Iterable[int]) -> None:
        """Forget every label but ``labels`` (each then points straight at its root): what the next block row can
        still meet, so the table follows the open regions, not the scene."""
        self.parent = {a: root for a in labels if (root := self.find(a)) != a}


#: Probabilities are summed as whole multiples of 2^-24: a block's sums stay below 2^53 (exact in float64), so the
#: mean probability of a region is the same whatever blocks it was read in.
_SCORE_UNIT: Final = float(1 << 24)
#: The signed type a block's class values are widened to, by their type's size: room below them for the value of
#: pixels in no region (beyond the map, nodata), the type's lowest (see :func:`_outside`). Small types keep the
#: block's comparisons cheap (a class map is uint8).
_WIDER: Final[dict[int, np.dtype[Any]]] = {1: np.dtype(np.int16), 2: np.dtype(np.int32), 4: np.dtype(np.int64)}

#: ``read(x0, y0, width, height)`` -> (class values, the chosen class's probability or None) of one block.
BlockReader = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray | None]]

#: Per side of a pixel (north, east, south, west): the neighbour across it (row, column offsets); the way a walk
#: along it goes with the pixel on its right (east along the top, south down the east side, ...); where that walk
#: starts (x, y from the pixel's top-left corner).
_ACROSS: Final = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])
_AHEAD: Final = np.array([(0, 1), (1, 0), (0, -1), (-1, 0)])
_START: Final = np.array([(0, 0), (1, 0), (1, 1), (0, 1)])
#: Vertex flags: a walk's first vertex (it may lie mid-side, where a walk was cut at a block edge); a vertex where
#: two pixels of one class meet across the corner only (a ring may pass it twice).
_CUT: Final = 1
_TOUCH: Final = 2


@dataclass
class _Walks:
    """Boundary walks as arrays: closed rings, or stretches of rings cut where they leave a block. ``head`` keys a
    walk's first edge and ``tail`` the edge after its last (a ring: its own head) over the whole map, as
    ``(row * width + column) * 4 + side``, so a stretch's tail is the head of the stretch that continues it."""

    label: np.ndarray  # region label per walk
    head: np.ndarray
    tail: np.ndarray
    sizes: np.ndarray  # vertices per walk
    coords: np.ndarray  # (vertices, 2) int32 (x, y) in pixels: the corners (and a stretch's first vertex)
    flags: np.ndarray  # uint8 per vertex: _CUT, _TOUCH

    def take(self, keep: np.ndarray) -> _Walks:
        if keep.all():
            return self
        vertices = np.repeat(keep, self.sizes)
        return _Walks(self.label[keep], self.head[keep], self.tail[keep], self.sizes[keep], self.coords[vertices],
                      self.flags[vertices])

    @staticmethod
    def concat(parts: list[_Walks]) -> _Walks:
        if not parts:
            empty = np.empty(0, np.int64)
            return _Walks(empty, empty, empty, empty, np.empty((0, 2), np.int32), np.empty(0, np.uint8))
        if len(parts) == 1:
            return parts[0]
        return _Walks(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("label", "head", "tail", "sizes", "coords", "flags")))


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, sizes)])`` without the loop."""
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if len(ends) else 0
    kind = np.int32 if total + int(starts.max(initial=0)) < 2**31 else np.int64  # half the memory for long rings
    at: np.ndarray = np.arange(total, dtype=kind)
    at += np.repeat((starts - (ends - sizes)).astype(kind), sizes)
    return at


def _walk(nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items in walking order, where ``nxt[i]`` follows item i (-1: none) and no item follows two: (the order, where
    each walk starts in it and one more for the end, whether it closes on itself: then it starts at its lowest item).
    Ranked by pointer jumping, a few passes over the items still walking, so long walks cost log(length) passes."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(nxt)
    linked = np.flatnonzero(nxt >= 0)
    pred = np.full(n, -1, np.int64)
    pred[nxt[linked]] = linked
    graph = csr_matrix((np.ones(len(linked), np.int8), (linked, nxt[linked])), shape=(n, n))
    count, walk = connected_components(graph, directed=True, connection="weak")
    starts = np.flatnonzero(pred < 0)
    ring = np.ones(count, bool)
    ring[walk[starts]] = False
    in_ring = np.flatnonzero(ring[walk])
    lowest = np.full(count, n, np.int64)
    np.minimum.at(lowest, walk[in_ring], in_ring)
    breaks = lowest[ring]
    nxt = nxt.copy()
    nxt[pred[breaks]] = -1
    heads = np.concatenate([starts, breaks])
    togo = (nxt >= 0).astype(np.int64)  # items from each to its walk's last: pointer jumping
    jump = nxt.copy()
    live = np.flatnonzero(jump >= 0)
    while live.size:
        ahead = jump[live]
        togo[live] += togo[ahead]
        jump[live] = jump[ahead]
        live = live[jump[live] >= 0]
    length = togo[heads] + 1
    offsets = np.zeros(len(heads) + 1, np.int64)
    np.cumsum(length, out=offsets[1:])
    of_walk = np.empty(count, np.int64)
    of_walk[walk[heads]] = np.arange(len(heads))
    which = of_walk[walk]
    order = np.empty(n, np.int64)
    order[offsets[which] + length[which] - 1 - togo] = np.arange(n)
    return order, offsets, np.arange(len(heads)) >= len(starts)


def _trace(padded: np.ndarray, labels: np.ndarray, x0: int, y0: int, width: int) -> tuple[_Walks, np.ndarray]:
    """The boundary walks of the regions of one block, and which are closed rings. ``labels``: the block's regions
    (0: none); ``padded``: its class values with a one-pixel margin from the neighbouring blocks (:func:`_outside` beyond
    the map and on nodata); (x0, y0): its corner in the map, ``width`` the map's.

    Every side of a region pixel facing another class is an edge, walked with the region on its right. At its end
    the walk turns right when the pixel ahead-right is of another class, else goes straight when the pixel
    ahead-left is, else turns left: it never steps across a corner, as 4-connected regions do not. What follows an
    edge depends on class values alone, so the walks are the same whatever the blocks; one leaving the block is cut
    there (its tail keys the edge it continues with) and joined again by :func:`_rings`."""
    h, w = labels.shape
    core = padded[1:-1, 1:-1]
    inside = labels > 0
    found = [np.flatnonzero(inside & (padded[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w] != core))
             for dr, dc in _ACROSS]
    side = np.repeat(np.arange(4), [len(f) for f in found])
    r, c = np.divmod(np.concatenate(found), w)
    # flat positions in ``padded`` (one row is w + 2): neighbours are fixed steps away, and the margin's -1 in
    # ``index`` marks a next edge outside the block
    stride = w + 2
    across, ahead = _ACROSS @ (stride, 1), _AHEAD @ (stride, 1)
    at = (r + 1) * stride + c + 1
    flat = padded.ravel()
    value = flat[at]
    ahead_at = at + ahead[side]
    left_at = ahead_at + across[side]
    straight = flat[ahead_at] == value
    left = straight & (flat[left_at] == value)
    next_at = np.where(left, left_at, np.where(straight, ahead_at, at))
    next_side = np.where(left, (side + 3) % 4, np.where(straight, side, (side + 1) % 4))
    index = np.full(4 * padded.size, -1, np.int32 if 4 * padded.size < 2**31 else np.int64)
    index[side * padded.size + at] = np.arange(len(at), dtype=index.dtype)
    nxt = index[next_side * padded.size + next_at]
    del index, ahead_at, left_at, straight, left
    order, offsets, closed = _walk(nxt)
    first, last = order[offsets[:-1]], order[offsets[1:] - 1]
    head = ((r[first] + y0) * width + c[first] + x0) * 4 + side[first]
    next_r, next_c = np.divmod(next_at[last], stride)
    tail = np.where(closed, head, ((next_r - 1 + y0) * width + next_c - 1 + x0) * 4 + next_side[last])
    walked = side[order]
    corner = np.ones(len(order), bool)
    corner[1:] = walked[1:] != walked[:-1]
    corner[offsets[:-1]] = True
    starts = np.zeros(len(order), np.uint8)
    starts[offsets[:-1]] = _CUT
    o = order[corner]
    x, y = c[o] + _START[side[o], 0], r[o] + _START[side[o], 1]
    flags = starts[corner] | np.where(_touching(padded)[y, x], _TOUCH, 0).astype(np.uint8)
    coords = np.stack([x + x0, y + y0], axis=1).astype(np.int32)
    sizes = np.diff(np.searchsorted(np.flatnonzero(corner), offsets))
    return _Walks(labels[r[first], c[first]].astype(np.int64), head, tail, sizes, coords, flags), closed


def _rectangles(padded: np.ndarray, local: np.ndarray, pixels: np.ndarray,
                edge: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Which of a block's regions are rectangles inside it (most regions of a noisy map: single pixels, pairs), per
    label, and their corners (x0, y0, x1, y1 in pixels from the block's corner; None when there are none): they
    need no walk. A region is its bounding box when it has one pixel with a convex top-left corner and one with a
    convex bottom-right corner (its top-left-most and bottom-right-most pixels) and as many pixels as that box."""
    core = padded[1:-1, 1:-1]
    inside = local > 0
    top_left = inside & (padded[:-2, 1:-1] != core) & (padded[1:-1, :-2] != core)
    bottom_right = inside & (padded[2:, 1:-1] != core) & (padded[1:-1, 2:] != core)
    count = len(pixels)
    box = ~edge & (np.bincount(local[top_left], minlength=count) == 1) & (
        np.bincount(local[bottom_right], minlength=count) == 1)
    box[0] = False
    if not box.any():
        return box, None
    corners = np.zeros((count, 4), np.int64)
    for mask, at in ((top_left, 0), (bottom_right, 2)):
        where = np.flatnonzero(mask & box[local])
        rows, cols = np.divmod(where, local.shape[1])
        corners[local.flat[where], at : at + 2] = np.stack([cols, rows], axis=1) + (at // 2)
    box &= (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1]) == pixels
    return box, corners[box] if box.any() else None


def _box_wkb(corners: np.ndarray, transform: Any) -> Any:
    """Rectangles (x0, y0, x1, y1 in pixels) as WKB polygons, as :func:`_shapes` writes them: the ring from the top-left
    corner down, right, up and back (the normal form), through ``transform``."""
    import pyarrow as pa

    ring = corners[:, [0, 1, 0, 3, 2, 3, 2, 1, 0, 1]].reshape(-1, 2).astype(np.float64)
    if transform is not None:
        ring = _to_map(ring, transform)
    record = np.zeros(len(corners), np.dtype([("order", "u1"), ("type", "<u4"), ("rings", "<u4"), ("size", "<u4"),
                                               ("xy", "<f8", (10,))]))  # 93 bytes, packed
    record["order"], record["type"], record["rings"], record["size"] = 1, 3, 1, 5
    record["xy"] = ring.reshape(-1, 10)
    offsets = np.arange(len(corners) + 1, dtype=np.int32) * record.dtype.itemsize
    return pa.BinaryArray.from_buffers(pa.binary(), len(corners), [None, pa.py_buffer(offsets),
                                                                   pa.py_buffer(record.view(np.uint8))])


def _merge(k: np.ndarray, polygons: Any, k_boxes: np.ndarray, boxes: Any) -> tuple[np.ndarray, Any]:
    """Traced regions and rectangles as one batch in label order (as if all had been traced)."""
    import pyarrow as pa

    labels = np.concatenate([k, k_boxes])
    order = np.argsort(labels, kind="stable")
    return labels[order], pa.concat_arrays([polygons, boxes]).take(pa.array(order))


def _touching(padded: np.ndarray) -> np.ndarray:
    """Per vertex of a block (rows y, columns x from its top-left corner): whether two pixels of one class meet there
    across the corner only (the other two of other classes): where a region may touch itself."""
    nw, ne, sw, se = padded[:-1, :-1], padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]
    outside = _outside(padded)
    return (((nw == se) & (nw != ne) & (nw != sw) & (nw != outside))
            | ((ne == sw) & (ne != nw) & (ne != se) & (ne != outside)))


def _rings(walks: _Walks) -> _Walks:
    """Walks joined tail to head into closed rings."""
    by_head = np.argsort(walks.head)
    nxt = by_head[np.searchsorted(walks.head, walks.tail, sorter=by_head)]
    order, offsets, _ = _walk(nxt)
    begin = np.cumsum(walks.sizes) - walks.sizes
    at = _ranges(begin[order], walks.sizes[order])
    head = walks.head[order[offsets[:-1]]]
    return _Walks(walks.label[order[offsets[:-1]]], head, head, np.add.reduceat(walks.sizes[order], offsets[:-1]),
                  walks.coords[at], walks.flags[at])


def _corners(rings: _Walks) -> _Walks:
    """Closed rings without the vertices they run straight through (where a walk was cut at a block edge: only a
    walk's first vertex can be one)."""
    end = np.cumsum(rings.sizes)
    begin = end - rings.sizes
    cut = np.flatnonzero(rings.flags & _CUT)
    ring = np.searchsorted(end, cut, side="right")
    before = np.where(cut == begin[ring], end[ring] - 1, cut - 1)
    after = np.where(cut == end[ring] - 1, begin[ring], cut + 1)
    into, out = rings.coords[cut] - rings.coords[before], rings.coords[after] - rings.coords[cut]
    straight = ((into[:, 0] == 0) & (out[:, 0] == 0)) | ((into[:, 1] == 0) & (out[:, 1] == 0))
    if not straight.any():
        return rings
    keep = np.ones(len(rings.coords), bool)
    keep[cut[straight]] = False
    sizes = rings.sizes - np.bincount(ring[straight], minlength=len(rings.sizes))
    return _Walks(rings.label, rings.head, rings.tail, sizes, rings.coords[keep], rings.flags[keep])


def _untangle(rings: _Walks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rings that pass a vertex twice (a region touching itself across a corner) cut there into simple rings, as a
    valid polygon has them: its shell and holes meet at such a point, no ring runs through it. (vertices, vertices
    per ring, region per ring)."""
    coords, sizes, region = rings.coords, rings.sizes, rings.label
    end = np.cumsum(sizes)
    begin = end - sizes
    at = np.flatnonzero(rings.flags & _TOUCH)  # only where pixels meet across a corner can a ring pass twice
    if not at.size:
        return coords, sizes, region
    ring = np.searchsorted(end, at, side="right")
    xy = coords[at].astype(np.int64)
    xy -= xy.min(axis=0)
    span = xy.max(axis=0) + 1
    key = (ring * span[1] + xy[:, 1]) * span[0] + xy[:, 0]
    order = np.argsort(key, kind="stable")
    twice = np.flatnonzero(key[order[1:]] == key[order[:-1]])
    if not twice.size:
        return coords, sizes, region
    which = ring[order[twice]]
    first, second = at[order[twice]] - begin[which], at[order[twice + 1]] - begin[which]
    pairs: dict[int, list[tuple[int, int]]] = {}
    for k, i, j in zip(which.tolist(), first.tolist(), second.tolist(), strict=True):
        pairs.setdefault(k, []).append((i, j))
    keep = np.ones(len(sizes), bool)
    keep[list(pairs)] = False
    loops = [(loop, int(region[k])) for k, cuts in pairs.items()
             for loop in _cut(coords[begin[k] : end[k]], cuts)]
    kept = np.repeat(keep, sizes)
    return (np.concatenate([coords[kept], *(loop for loop, _ in loops)]),
            np.concatenate([sizes[keep], [len(loop) for loop, _ in loops]]),
            np.concatenate([region[keep], [r for _, r in loops]]))


def _cut(ring: np.ndarray, cuts: list[tuple[int, int]]) -> list[np.ndarray]:
    """``ring`` (vertices) cut into loops where it passes a vertex twice (positions i < j of each such vertex):
    the loop between i and j, less the loops nested in it, is one ring."""
    closing = {j: i for i, j in cuts}
    stack: list[tuple[int, list[np.ndarray], int]] = [(0, [], 0)]  # (where a loop starts, its parts, where next)
    loops = []
    for p in sorted(q for cut in cuts for q in cut):
        if p not in closing:
            stack.append((p, [], p))
            continue
        start, parts, cursor = stack.pop()
        if start != closing[p]:
            raise AssertionError("a ring's loops cross")  # walks that never cross a corner cannot do this
        loops.append(np.concatenate([*parts, ring[cursor:p]]))
        outer_start, outer_parts, outer_cursor = stack.pop()
        stack.append((outer_start, [*outer_parts, ring[outer_cursor:start]], p))
    _, parts, cursor = stack.pop()
    return [*loops, np.concatenate([*parts, ring[cursor:]])]


def _shapes(rings: _Walks, transform: Any = None, fill_holes: bool = False) -> tuple[np.ndarray, Any]:
    """(regions in order, a polygon each as WKB in an Arrow array) of the closed rings of whole regions: vertices a
    ring runs straight through dropped, rings touching themselves cut, the ring around each region its shell (holes
    left out with ``fill_holes``); in the normal form GEOS gives (see :func:`_normal_order`), then through
    ``transform`` (pixel coordinates without). Exact integers until the coordinates are mapped: the same polygons
    whatever blocks the rings were traced in."""
    coords, sizes, region = _untangle(_corners(rings))
    begin = np.cumsum(sizes) - sizes
    lowest = _lowest(coords, sizes, begin)
    before = np.where(lowest == begin, begin + sizes - 1, lowest - 1)  # the second vertex in normal form
    after = np.where(lowest == begin + sizes - 1, begin, lowest + 1)
    first, second, third = coords[lowest].astype(np.int64), coords[before].astype(np.int64), coords[after]
    # the turn at the lowest vertex (a convex corner) tells a shell (walked counter-clockwise) from a hole
    hole = (first[:, 0] - second[:, 0]) * (third[:, 1] - first[:, 1]) < (first[:, 1] - second[:, 1]) * (
        third[:, 0] - first[:, 0])
    # each region's shell, then its holes as GEOS sorts them, descending: by vertex count, then vertex by vertex (two
    # holes never share their first two vertices)
    rank = np.lexsort((-second[:, 1], -second[:, 0], -first[:, 1], -first[:, 0], -sizes, hole, region))
    if fill_holes:
        rank = rank[~hole[rank]]
    source = _normal_order(begin[rank], sizes[rank], lowest[rank])
    sizes, region = sizes[rank] + 1, region[rank]
    regions, shells = np.unique(region, return_index=True)
    return regions, _wkb(coords, source, sizes, shells, transform)


#: Vertices mapped and written to WKB at a time.
_WKB_CHUNK = 1 << 18


def _wkb(coords: np.ndarray, source: np.ndarray, sizes: np.ndarray, shells: np.ndarray, transform: Any) -> Any:
    """Polygons as little-endian WKB in one Arrow array, assembled in numpy: their closed rings' vertices one after
    another are ``coords[source]`` (pixels) through ``transform``, ``sizes`` the rings' vertex counts, ``shells``
    where each polygon's rings start. No geometry objects: each vertex is mapped and copied once, with each polygon's
    and ring's header put in before its first vertex, _WKB_CHUNK vertices at a time (the map coordinates of a
    region spanning the scene are never all held beside its WKB)."""
    import pyarrow as pa

    polygon = np.zeros(len(shells), np.dtype([("order", "u1"), ("type", "<u4"), ("rings", "<u4")]))  # 9 bytes
    polygon["order"], polygon["type"], polygon["rings"] = 1, 3, np.diff(np.append(shells, len(sizes)))
    headers = np.zeros((len(sizes), 13), np.uint8)  # per ring: its polygon's header (first rings only), its size
    headers[shells, :9] = polygon.view(np.uint8).reshape(-1, 9)
    headers[:, 9:] = sizes.astype("<u4").view(np.uint8).reshape(-1, 4)
    used = np.ones((len(sizes), 13), bool)
    used[:, :9] = False
    used[shells, :9] = True
    length = used.sum(axis=1)  # header bytes before each ring's first vertex
    starts = np.cumsum(sizes) - sizes
    before = np.zeros(len(sizes) + 1, np.int64)  # header bytes before each ring's header
    np.cumsum(length, out=before[1:])
    data = np.empty(16 * len(source) + int(before[-1]), np.uint8)
    for s in range(0, len(source), _WKB_CHUNK):
        e = min(s + _WKB_CHUNK, len(source))
        first, last = np.searchsorted(starts, [s, e])  # the rings starting in this chunk
        xy = coords[source[s:e]].astype(np.float64)
        if transform is not None:
            xy = _to_map(xy, transform)
        part = np.insert(np.ascontiguousarray(xy, "<f8").view(np.uint8).ravel(),
                         np.repeat(16 * (starts[first:last] - s), length[first:last]),
                         headers[first:last][used[first:last]])
        data[16 * s + before[first] : 16 * e + before[last]] = part
    offsets = np.zeros(len(shells) + 1, np.int64)
    np.cumsum(9 + np.add.reduceat(4 + 16 * sizes, shells), out=offsets[1:])
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(shells), [None, pa.py_buffer(offsets),
                                                                             pa.py_buffer(data)]).cast(pa.binary())


def _lowest(coords: np.ndarray, sizes: np.ndarray, begin: np.ndarray) -> np.ndarray:
    """Where each simple ring's lowest vertex is (by x, then y: where its normal form starts)."""
    ring = np.repeat(np.arange(len(sizes), dtype=np.int32 if len(sizes) < 2**31 else np.int64), sizes)
    left = np.flatnonzero(coords[:, 0] == np.minimum.reduceat(coords[:, 0], begin)[ring])  # each ring's leftmost
    of = ring[left]
    low = np.minimum.reduceat(coords[left, 1], np.flatnonzero(np.diff(of, prepend=-1)))
    return left[coords[left, 1] == low[of]]  # one per ring: a simple ring's vertices are distinct


def _normal_order(begin: np.ndarray, sizes: np.ndarray, lowest: np.ndarray) -> np.ndarray:
    """Where each vertex of simple rings (in this order) comes from in their normal form (as ``shapely.normalize``):
    from the ring's lowest vertex, shells clockwise and holes counter-clockwise (each ring walked backwards: they
    were walked with the region on their right), closed (the first vertex again at the end)."""
    total = int(sizes.sum()) + len(sizes)
    kind = np.int32 if total + int(begin.max(initial=0)) < 2**31 else np.int64
    ring = np.repeat(np.arange(len(sizes), dtype=kind), sizes + 1)
    step: np.ndarray = np.arange(total, dtype=kind)
    step -= (np.cumsum(sizes + 1) - (sizes + 1)).astype(kind)[ring]
    step -= (lowest - begin).astype(kind)[ring]
    np.negative(step, out=step)
    step %= sizes.astype(kind)[ring]
    step += begin.astype(kind)[ring]
    return step


#: One batch of regions: class values, pixels, mean probabilities (NaN without), polygons (WKB in map coordinates,
#: an Arrow binary array).
Batch = tuple[np.ndarray, np.ndarray, np.ndarray, Any]


def _read_padded(read: BlockReader, x0: int, y0: int, w: int, h: int, height: int, width: int,
                 nodata: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """One block's class values with a one-pixel margin (:func:`_outside` beyond the map and on nodata; the walks look one
    pixel ahead), and its probabilities (the block alone)."""
    xa, ya, xb, yb = max(x0 - 1, 0), max(y0 - 1, 0), min(x0 + w + 1, width), min(y0 + h + 1, height)
    values, confidence = read(xa, ya, xb - xa, yb - ya)
    kind = _WIDER.get(values.dtype.itemsize, np.dtype(np.int64)) if values.dtype.kind in "iu" else np.dtype(np.int64)
    outside = np.iinfo(kind).min
    padded = np.full((h + 2, w + 2), outside, kind)
    padded[ya - y0 + 1 : yb - y0 + 1, xa - x0 + 1 : xb - x0 + 1] = values
    if nodata is not None and outside < nodata <= np.iinfo(kind).max:
        padded[padded == nodata] = outside
    if confidence is not None:
        confidence = confidence[y0 - ya : y0 - ya + h, x0 - xa : x0 - xa + w]
    return padded, confidence


def _outside(values: np.ndarray) -> int:
    """The value of pixels in no region (beyond the map, nodata) in a block of :func:`_read_padded`."""
    return int(np.iinfo(values.dtype).min)


def present(values: np.ndarray) -> np.ndarray:
    """The distinct values of ``values``, ascending (class maps are small numbers: counted, not sorted)."""
    if values.size and values.min() >= 0 and values.max() < 1 << 16:
        return np.flatnonzero(np.bincount(values.ravel()))
    return np.unique(values)


def _label(values: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The block's 4-connected regions of one class (local labels from 1; 0: none) and each label's class."""
    from scipy import ndimage

    local = np.zeros(values.shape, np.int64)
    classes = [0]
    for value in present(values[values != _outside(values)]).tolist():
        labelled, found = ndimage.label(values == value)
        where = labelled > 0
        local[where] = labelled[where] + len(classes) - 1
        classes += [value] * found
    return local, classes


def regions(read: BlockReader, height: int, width: int, block: int, nodata: int | None,
             transform: Any = None, fill_holes: bool = False) -> Iterator[Batch]:
    """Every 4-connected region of one class, in batches: a region inside one block as soon as it is traced, one that
    touches a block edge once no later block can reach it (joined across blocks into one polygon).

    What is held between blocks is the open regions' boundary walks (vertex arrays, joined into one set after every
    block row) and a union-find over the labels the next block row can meet: it grows with the open regions'
    boundaries, not with the scene or with how many blocks a region spans."""
    uf = _UnionFind()
    info: dict[int, tuple[int, int, int]] = {}  # open region label -> (class, pixels, score)
    pending: list[_Walks] = []  # boundary walks of the open regions (global labels)
    next_id = 1
    above: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # column block -> (values, labels) of the row above's last row
    for y0 in range(0, height, block):
        left: tuple[np.ndarray, np.ndarray] | None = None
        bottoms: list[np.ndarray] = []
        for x0 in range(0, width, block):
            h, w = min(block, height - y0), min(block, width - x0)
            padded, confidence = _read_padded(read, x0, y0, w, h, height, width, nodata)
            values = padded[1:-1, 1:-1]
            local, classes = _label(values)
            count = len(classes) - 1
            labels = np.where(local > 0, local + next_id - 1, 0)
            if count:
                pixels = np.bincount(local.ravel(), minlength=count + 1)
                scores = np.full(count + 1, -1, np.int64)
                if confidence is not None:
                    units = np.round(np.nan_to_num(confidence, nan=0.0).astype(np.float64) * _SCORE_UNIT)
                    scores = np.bincount(local.ravel(), weights=units.ravel(), minlength=count + 1).astype(np.int64)
                edge = np.zeros(count + 1, bool)
                edge[np.concatenate([local[0], local[-1], local[:, 0], local[:, -1]])] = True
                box, corners = _rectangles(padded, local, pixels, edge)
                walks, _ = _trace(padded, np.where(box[local], 0, local) if corners is not None else local,
                                  x0, y0, width)
                inner = ~edge[walks.label]
                if inner.any() or corners is not None:  # regions inside the block: their walks are closed rings
                    k, polygons = _shapes(walks.take(inner), transform, fill_holes)
                    if corners is not None:
                        k, polygons = _merge(k, polygons, np.flatnonzero(box),
                                             _box_wkb(corners + np.array([x0, y0, x0, y0]), transform))
                    mean = np.where(scores[k] >= 0, scores[k] / _SCORE_UNIT / pixels[k], np.nan)
                    yield np.asarray(classes)[k], pixels[k], mean, polygons
                outer = walks.take(~inner)
                outer.label += next_id - 1
                pending.append(outer)
                for k in np.flatnonzero(edge[1:]).tolist():
                    info[next_id + k] = (classes[k + 1], int(pixels[k + 1]), int(scores[k + 1]))
            next_id += count
            if left is not None:  # the block to the left: its last column against this first one
                _join(uf, *left, values[:, 0], labels[:, 0])
            if x0 in above:  # the block above: its last row against this first one
                _join(uf, *above[x0], values[0, :], labels[0, :])
            left = (values[:, -1], labels[:, -1])
            above[x0] = (values[-1, :].copy(), labels[-1, :].copy())  # copies: views would hold the whole block
            bottoms.append(above[x0][1])
        reachable = np.unique(np.concatenate(bottoms)) if y0 + block < height else np.empty(0, np.int64)
        batch = _settle(uf, info, pending, reachable[reachable > 0].tolist(), (transform, fill_holes))
        if batch is not None:
            yield batch


def _settle(uf: _UnionFind, info: dict[int, tuple[int, int, int]], pending: list[_Walks], reachable: list[int],
            shaping: tuple[Any, bool]) -> Batch | None:
    """After a block row: the open regions merged under their root label (``info`` in place), those the next row
    cannot reach (none of their labels in ``reachable``) as a batch, the walks of the rest as one set (``pending``,
    in place)."""
    walks = _Walks.concat(pending)
    pending.clear()
    merged: dict[int, tuple[int, int, int]] = {}
    for label, (value, pixels, score) in info.items():
        _, held, summed = merged.get(root := uf.find(label), (value, 0, 0))
        merged[root] = (value, held + pixels, -1 if min(summed, score) < 0 else summed + score)
    labels, where = np.unique(walks.label, return_inverse=True)
    walks.label = np.array([uf.find(a) for a in labels.tolist()], np.int64)[where]
    still = {uf.find(a) for a in reachable}
    uf.keep(reachable)
    info.clear()
    info.update((root, merged[root]) for root in still)
    closed = np.isin(walks.label, np.fromiter(still, np.int64, count=len(still)), invert=True)
    pending.append(walks.take(~closed))
    if not closed.any():
        return None
    done = walks.take(closed)
    del walks  # the rings are built from ``done`` alone
    k, polygons = _shapes(_rings(done), *shaping)
    table = np.array([merged[r] for r in k.tolist()], np.int64).reshape(-1, 3)  # class, pixels, score
    mean = np.where(table[:, 2] >= 0, table[:, 2] / _SCORE_UNIT / table[:, 1], np.nan)
    return table[:, 0], table[:, 1], mean, polygons


def _join(uf: _UnionFind, values_a: np.ndarray, labels_a: np.ndarray, values_b: np.ndarray,
          labels_b: np.ndarray) -> None:
    """Union the regions that touch across a block edge (neighbouring pixels of one class)."""
    joined = (labels_a > 0) & (labels_b > 0) & (values_a == values_b)
    for a, b in set(zip(labels_a[joined].tolist(), labels_b[joined].tolist(), strict=True)):
        uf.union(a, b)


def _to_map(xy: np.ndarray, transform: Any) -> np.ndarray:
    a, b, c, d, e, f = transform[:6]
    x, y = xy[:, 0], xy[:, 1]
    return np.stack([c + a * x + b * y, f + d * x + e * y], axis=1)
