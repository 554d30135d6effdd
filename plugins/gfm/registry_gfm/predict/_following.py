"""A class map read while ``predict`` writes it: each read waits until the blocks under it are written, so the
polygons of ``predict ... --output map.gpkg`` are traced and written behind the model instead of after it.

The regions are traced from the last block row up: the order dask's threads finish a scene's block rows in (its
graph order works from the last blocks back; bench/README.md has the timeline). Always that direction, so the same
command writes its features in the same order every time; where dask happens to finish the rows in another order,
the polygons wait for more of the map, as they did when they were written after the model.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from registry_gfm.predict._vectors import ClassGrid

__all__ = ["BlockWatch", "PredictionStopped", "following"]


class PredictionStopped(Exception):
    """The prediction a :class:`BlockWatch` follows failed or was interrupted: its blocks will not all come."""


class BlockWatch:
    """Which blocks (rows x columns of ``chunk`` pixels) of a store being written are complete, for readers in other
    threads; :meth:`stop` wakes them with :class:`PredictionStopped`."""

    def __init__(self, rows: int, columns: int, chunk: int) -> None:
        self.chunk = chunk
        self._written = np.zeros((rows, columns), bool)
        self._stopped = False
        self._changed = threading.Condition()

    def written(self, block: tuple[int, int]) -> None:
        with self._changed:
            self._written[block] = True
            self._changed.notify_all()

    def complete(self) -> None:
        """Every block is written (dask fuses a one-block graph's write into its last task: no block is reported)."""
        with self._changed:
            self._written[:] = True
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def wait(self, x0: int, y0: int, width: int, height: int) -> None:
        """Return once every block under the window is written; PredictionStopped once :meth:`stop` was called."""
        c = self.chunk
        under = self._written[y0 // c : (y0 + height - 1) // c + 1, x0 // c : (x0 + width - 1) // c + 1]
        with self._changed:
            self._changed.wait_for(lambda: self._stopped or bool(under.all()))
            if self._stopped:
                raise PredictionStopped("the prediction stopped before this part of the class map was read")


def following(grid: ClassGrid, watch: BlockWatch) -> ClassGrid:
    """``grid`` (a store being written) whose reads wait for their blocks (:meth:`BlockWatch.wait`), traced from the
    bottom block row up."""
    read = grid.read

    def wait_and_read(x0: int, y0: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray | None]:
        watch.wait(x0, y0, width, height)
        return read(x0, y0, width, height)

    return dataclasses.replace(grid, read=wait_and_read, upward=True)
