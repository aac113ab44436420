"""Snapshot pages asked for while nothing changed are read once; never from a read sent before a change."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from conftest import until
from orders_live.hub.shared_reads import SharedReads
from orders_live.runtime.heap import REBUILD_AFTER, SettledHeap


class Database:
    """Counts reads; each read waits until ``release`` lets it finish."""

    def __init__(self) -> None:
        self.started = 0
        self.gate = asyncio.Event()

    async def read(self) -> int:
        self.started += 1
        number = self.started
        await self.gate.wait()
        return number


@pytest.mark.fast
async def test_readers_that_ask_while_a_read_waits_for_a_slot_share_it() -> None:
    reads, database = SharedReads[int](readers=1, generation=lambda: 0), Database()
    first = asyncio.create_task(reads.read("other", database.read))  # holds the one slot
    await until(lambda: database.started == 1, what="the first read to be sent")
    asking = [asyncio.create_task(reads.read("page", database.read)) for _ in range(5)]
    await asyncio.sleep(0)
    database.gate.set()
    assert await first == 1
    assert await asyncio.gather(*asking) == [2] * 5  # one read for all five
    assert (reads.reads, reads.shared, database.started) == (2, 4, 2)


@pytest.mark.fast
async def test_a_read_is_shared_while_nothing_changes_and_never_across_a_change() -> None:
    changes = [0]
    reads, database = SharedReads[int](readers=4, generation=lambda: changes[0]), Database()
    early = asyncio.create_task(reads.read("page", database.read))
    await until(lambda: database.started == 1, what="the early read to be sent")
    sharing = asyncio.create_task(reads.read("page", database.read))  # sent, and nothing changed since
    await until(lambda: reads.shared == 1, what="the second reader to share the read")
    changes[0] += 1  # a change reaches the index while the read is out
    late = asyncio.create_task(reads.read("page", database.read))
    await until(lambda: database.started == 2, what="the late reader's own read")
    database.gate.set()
    assert (await early, await sharing, await late) == (1, 1, 2)
    assert await reads.read("page", database.read) == 2  # kept: nothing changed since it was sent
    assert database.started == 2
    changes[0] += 1
    kept_before = reads.read("page", database.read)
    assert await kept_before == 3  # the kept read is older than the change: read again
    assert await reads.read("other", database.read) == 4
    assert (reads.reads, database.started) == (4, 4)


@pytest.mark.fast
async def test_readers_whose_reader_gave_up_read_again_and_an_error_reaches_every_sharer() -> None:
    reads, database = SharedReads[int](readers=1, generation=lambda: 0), Database()
    blocker = asyncio.create_task(reads.read("other", database.read))
    await until(lambda: database.started == 1, what="the slot to be taken")
    giving_up = asyncio.create_task(reads.read("page", database.read))  # would have read for all
    staying = [asyncio.create_task(reads.read("page", database.read)) for _ in range(3)]
    await asyncio.sleep(0)
    giving_up.cancel()
    database.gate.set()
    await blocker
    results = await asyncio.gather(*staying)  # not cancelled with it: each read, after it asked
    assert all(number >= 2 for number in results)
    assert giving_up.cancelled()

    async def broken() -> int:
        await asyncio.sleep(0)
        raise ConnectionError("the database went away")

    sharers = [asyncio.create_task(reads.read("lost page", broken)) for _ in range(3)]
    results = await asyncio.gather(*sharers, return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError] * 3
    assert await reads.read("lost page", database.read) >= 3  # a failed read is not kept


@pytest.mark.fast
# Its full collections reach the whole test process: another test's leftover (an unclosed
# transport) would be reported here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_the_settled_heap_is_frozen_and_rebuilt_once_enough_connections_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ended, open_now = [0], [10]
    heap = SettledHeap(lambda: ended[0], lambda: open_now[0])
    settling = asyncio.create_task(heap.run())
    try:
        await until(lambda: gc.get_freeze_count() > 0, what="the heap to be frozen at start")
        frozen, settled = gc.get_freeze_count(), [[n] for n in range(1_000)]
        gc.collect()
        assert gc.get_freeze_count() >= frozen + len(settled)  # a full collection's survivors are frozen
        ended[0] = REBUILD_AFTER - 1
        assert not heap.due()
        with caplog.at_level(logging.INFO):
            ended[0] = REBUILD_AFTER
            await until(lambda: heap.rebuilds == 1, what="a rebuild")
        assert any("heap rebuilt" in r.getMessage() for r in caplog.records)
        assert not heap.due()  # counted afresh from the rebuild
        assert gc.get_freeze_count() > 0  # frozen again
    finally:
        settling.cancel()
        await asyncio.gather(settling, return_exceptions=True)
        heap.release()
    assert gc.get_freeze_count() == 0
