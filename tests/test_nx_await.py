"""The embedded nx-27017 with MongoDB's awaitData (``sources/mongo/nx_await``): its start-up
check, its fallback, and a change-stream getMore held until a write."""

from __future__ import annotations

import asyncio
import importlib.metadata
import tempfile
import threading
import time
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from orders_live.sources.mongo import nx_await
from orders_live.sources.mongo.embedded import EmbeddedMongo


@pytest.mark.fast
def test_the_check_passes_on_the_pinned_nx_27017_and_names_what_differs_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert nx_await.check() == []
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")
    assert nx_await.check() == ["nx-27017 9.9.9 is not the pinned 0.8.1"]


@pytest.mark.fast
def test_a_waiter_wakes_on_the_next_write_and_never_misses_one_made_before_it_waits() -> None:
    writes = nx_await.Writes()
    seen = writes.count
    writes.done()  # between reading the count and waiting: must not be missed
    assert writes.wait_after(seen, timeout=5) == seen + 1
    woke: list[int] = []
    waiter = threading.Thread(target=lambda: woke.append(writes.wait_after(writes.count, timeout=5)))
    waiter.start()
    writes.done()
    waiter.join(5)
    assert woke == [seen + 2]


async def start(folder: Path, monkeypatch: pytest.MonkeyPatch, await_data: bool) -> EmbeddedMongo:
    monkeypatch.setenv("ORDERS_LIVE_NX_AWAIT", "true" if await_data else "false")
    server = EmbeddedMongo(folder)
    await server.start()
    return server


@pytest.mark.database
@pytest.mark.parametrize("await_data", [True, False])
async def test_an_empty_change_stream_read_is_held_until_a_write_with_await_data(
    monkeypatch: pytest.MonkeyPatch, await_data: bool
) -> None:
    """With the launcher's awaitData an empty getMore is held for its maxAwaitTimeMS and a write
    from another client ends it with the change; without it (the fallback) nx-27017 answers at
    once, as it always did, and the change comes on a later read."""
    server = await start(Path(tempfile.mkdtemp()), monkeypatch, await_data)
    reader, writer = AsyncMongoClient(server.url), AsyncMongoClient(server.url)
    try:
        assert server.mode == ("awaitData" if await_data else "plain: switched off (ORDERS_LIVE_NX_AWAIT=false)")
        orders = reader.orders_live.orders
        await orders.insert_one({"_id": 0})
        async with await orders.watch(max_await_time_ms=400) as stream:
            started = time.monotonic()
            assert await stream.try_next() is None
            held = time.monotonic() - started  # without awaitData: answered at once (not asserted: a bound on speed)
            if await_data:
                assert held >= 0.3  # a lower bound: a slow machine only holds it longer
            reading = asyncio.create_task(stream.try_next())
            await writer.orders_live.orders.insert_one({"_id": 1})
            event = await reading
            while event is None:  # without awaitData the read may have come back before the write
                event = await stream.try_next()
            assert event["documentKey"]["_id"] in (1, "1")
    finally:
        await reader.close()
        await writer.close()
        await server.stop()


@pytest.mark.database
async def test_a_stop_does_not_wait_for_a_held_change_stream_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A getMore held in one of nx-27017's threads (up to ``MAX_WAIT``) used to hold up the
    process's exit on SIGTERM for as long (a service stop took 10 s more): it answers at once."""
    server = await start(Path(tempfile.mkdtemp()), monkeypatch, True)
    reader = AsyncMongoClient(server.url)
    try:
        orders = reader.orders_live.orders
        await orders.insert_one({"_id": 0})
        stream = await orders.watch(max_await_time_ms=int(nx_await.MAX_WAIT * 1000))
        reading = asyncio.create_task(stream.try_next())
        await asyncio.sleep(0.5)  # the getMore is sent and held: nothing outside the server shows it
        process = server.process
        assert process is not None
        process.terminate()
        await asyncio.wait_for(process.wait(), nx_await.MAX_WAIT / 2)  # before the held read's own end
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    finally:
        await reader.close()
        await server.stop()
