"""The class map read while it is predicted: reads wait for the blocks under them, a stopped prediction wakes them."""

from __future__ import annotations

import threading

import pytest

from registry_gfm.predict._following import BlockWatch, PredictionStopped


def reader(watch: BlockWatch, window: tuple[int, int, int, int]) -> tuple[threading.Thread, list[object]]:
    """A thread waiting for ``window``; what it ended with ("read" or the exception) lands in the list."""
    ended: list[object] = []

    def wait() -> None:
        try:
            watch.wait(*window)
            ended.append("read")
        except PredictionStopped as exc:
            ended.append(exc)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread, ended


def test_a_read_waits_for_every_block_under_its_window() -> None:
    watch = BlockWatch(3, 3, chunk=8)
    thread, ended = reader(watch, (7, 15, 2, 2))  # columns 7-8, rows 15-16: blocks (1, 0), (1, 1), (2, 0), (2, 1)
    for block in [(1, 0), (1, 1), (2, 0), (0, 0), (2, 2)]:
        watch.written(block)
        thread.join(0.05)
        assert thread.is_alive() and ended == []
    watch.written((2, 1))
    thread.join(10)
    assert ended == ["read"]


def test_stopping_wakes_every_reader_with_an_error() -> None:
    watch = BlockWatch(2, 2, chunk=4)
    waiting = [reader(watch, (0, 0, 8, 8)), reader(watch, (0, 4, 4, 4))]
    watch.written((0, 0))
    watch.stop()
    for thread, ended in waiting:
        thread.join(10)
        assert len(ended) == 1 and isinstance(ended[0], PredictionStopped)
    with pytest.raises(PredictionStopped):  # a read after the stop, even of written blocks
        watch.wait(0, 0, 2, 2)


def test_complete_releases_reads_of_blocks_never_reported() -> None:
    watch = BlockWatch(2, 3, chunk=4)
    thread, ended = reader(watch, (0, 0, 12, 8))
    watch.complete()
    thread.join(10)
    assert ended == ["read"]
