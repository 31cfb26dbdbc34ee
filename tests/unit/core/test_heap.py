"""The heap settler freezes the long-lived heap and frees a removed instance's cycles (camioc.core.heap)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from camioc.core.heap import HeapSettler


class _Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def settler() -> Iterator[HeapSettler]:
    heap = HeapSettler(delay=0.01)
    try:
        yield heap
    finally:
        heap.close()
        assert gc.get_freeze_count() == 0


async def _settled(heap: HeapSettler, count: int) -> None:
    async with asyncio.timeout(5):
        while heap.settles < count:
            await asyncio.sleep(0.01)


async def test_the_first_settle_collects_then_freezes_everything(settler: HeapSettler) -> None:
    node = weakref.ref(_Node())  # garbage already: the first (full) settle frees it
    settler.schedule()
    await _settled(settler, 1)
    assert node() is None
    assert settler.full_settles == 1
    assert settler.frozen > 1000 and gc.get_freeze_count() > 1000


async def test_additions_freeze_without_a_full_collection_and_a_removal_frees_their_cycles(
        settler: HeapSettler) -> None:
    settler.schedule()
    await _settled(settler, 1)
    kept = _Node()  # an instance's objects, alive when the heap is settled after it was added
    node = weakref.ref(kept)
    settler.pipeline_added("p")
    settler.instances_changed("cam")  # its camera started with it
    await _settled(settler, 2)
    assert settler.full_settles == 1  # additions: no full pause
    del kept  # the instance goes: its frozen cycle is garbage now
    gc.collect()
    assert node() is not None, "a frozen cycle is not walked by the collector"
    settler.pipeline_removed("p")
    await _settled(settler, 3)
    assert settler.full_settles == 2
    assert node() is None


async def test_a_burst_of_changes_settles_once(settler: HeapSettler) -> None:
    for index in range(20):
        settler.camera_added(f"c{index}")
    settler.instances_changed("c0")
    await _settled(settler, 1)
    await asyncio.sleep(0.05)
    assert settler.settles == 1 and settler.full_settles == 1
