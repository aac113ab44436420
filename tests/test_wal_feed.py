"""The WAL feed (ORDERS_LIVE_PG_CHANGES=wal) on a real PostgreSQL with wal_level=logical: the
writers' transactions carry no orders-live trigger but the one that sets version and
updated_at; one instance reads the replication slot and appends to the change log every
instance follows; the slot is one per database, confirmed only once appended, and taken over
when its reader dies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from conftest import until_async
from orders_live.domain.change import CaughtUp, Change, StreamInvalidated
from orders_live.domain.order import OrderCreate
from orders_live.domain.source import Source
from orders_live.sources.postgres import PostgresOptions, postgres_source

pytestmark = [pytest.mark.database]


class Running:
    """A source opened with the WAL feed and its jobs running, as the service runs them."""

    def __init__(self, url: str) -> None:
        self.source: Source = postgres_source(url, PostgresOptions(changes="wal", poll_interval=60))
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Running:
        await self.source.connection.open()
        self.tasks = [asyncio.create_task(job(), name=name) for name, job in self.source.jobs.items()]
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.source.connection.close()

    def died(self) -> list[str]:
        return [f"{t.get_name()}: {t.exception()!r}" for t in self.tasks if t.done() and not t.cancelled()]


async def collect(
    source: Source, count: int, within: float = 10.0, started: asyncio.Event | None = None
) -> list[Change]:
    """The first ``count`` changes the feed gives after its start (``started`` is set at its first
    mark: the stream is open, "now" chosen)."""
    found: list[Change] = []

    async def read() -> None:
        async for item in source.feed.watch(None):
            if isinstance(item, CaughtUp):
                if started is not None:
                    started.set()
                continue
            found.append(item)
            if len(found) == count:
                return

    await asyncio.wait_for(read(), within)
    return found


@pytest.fixture
async def wal(postgres_url: str) -> AsyncIterator[Running]:
    async with Running(postgres_url) as running:
        yield running


async def slots(url: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT slot_name, plugin, active, database FROM pg_replication_slots"
            " WHERE database = current_database() ORDER BY slot_name"
        )
    finally:
        await connection.close()
    return [dict(r) for r in rows]


async def test_writes_without_orders_live_triggers_reach_the_feed_whole_in_order_and_never_rolled_back(
    wal: Running, postgres_url: str
) -> None:
    writer = await asyncpg.connect(postgres_url)
    try:
        triggers = await writer.fetch(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass AND NOT tgisinternal ORDER BY tgname"
        )
        assert [t["tgname"] for t in triggers] == ["orders_live_before_write"]  # version and updated_at only
        started = asyncio.Event()
        watching = asyncio.create_task(collect(wal.source, 5, started=started))
        await asyncio.wait_for(started.wait(), 10)
        await writer.execute("INSERT INTO orders (customer_name, product_name) VALUES ('Ada', 'Lamp')")
        await writer.execute(
            "BEGIN; INSERT INTO orders (customer_name, product_name) VALUES ('Never', 'Seen'); ROLLBACK"
        )
        async with writer.transaction():
            await writer.execute("UPDATE orders SET status = 'shipped' WHERE customer_name = 'Ada'")
            await writer.execute(
                "INSERT INTO orders (customer_name, product_name) VALUES ('Bo', 'Desk'), ('Cy', 'Pen')"
            )
        await writer.execute("DELETE FROM orders WHERE customer_name = 'Cy'")
        changes = await watching
    finally:
        await writer.close()
    assert wal.died() == []
    seen = [
        (c.op, c.order["customer_name"] if c.order else None, c.order["version"] if c.order else None) for c in changes
    ]
    assert seen == [
        ("insert", "Ada", 1),
        ("update", "Ada", 2),
        ("insert", "Bo", 1),
        ("insert", "Cy", 1),
        ("delete", None, None),
    ]
    # the update and the delete carry the row's status before (the table's REPLICA IDENTITY FULL)
    assert changes[1].before_status == "pending" and changes[4].before_status == "pending"
    commits = [c.position.split(".")[0] for c in changes]
    assert commits[1] == commits[2] == commits[3] != commits[0]  # one transaction, one commit
    assert await slots(postgres_url) == [
        {
            "slot_name": wal.source.connection.slot,
            "plugin": "pgoutput",
            "active": True,
            "database": postgres_url.rsplit("/", 1)[1],
        }
    ]


async def test_a_truncate_ends_the_stream_so_that_readers_resync(wal: Running, postgres_url: str) -> None:
    writer = await asyncpg.connect(postgres_url)
    try:
        await until_async(lambda: _leading(wal), 10, "an instance to read the slot")
        await writer.execute("INSERT INTO orders (customer_name, product_name) VALUES ('Ada', 'Lamp')")
        started = asyncio.Event()
        reading = asyncio.create_task(collect(wal.source, 2, started=started))
        await asyncio.wait_for(started.wait(), 10)
        await writer.execute("TRUNCATE orders")
        with pytest.raises(StreamInvalidated):
            await reading
    finally:
        await writer.close()


async def _leading(running: Running) -> bool:
    connection = await asyncpg.connect(running.source.connection.url)
    try:
        return bool(
            await connection.fetchval(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1", running.source.connection.slot
            )
        )
    finally:
        await connection.close()


async def read_from(source: Source, position: str, count: int, within: float = 15.0) -> list[Change]:
    """``count`` changes after ``position``."""
    found: list[Change] = []

    async def read() -> None:
        async for item in source.feed.watch(position):
            if isinstance(item, Change):
                found.append(item)
                if len(found) == count:
                    return

    await asyncio.wait_for(read(), within)
    return found


async def test_switching_a_database_from_triggers_to_the_wal_while_it_is_written_skips_no_change(
    postgres_url: str,
) -> None:
    """Contract note 17: one writer updates an order without pause while the database goes from the
    trigger feed to the WAL feed; the log holds every version once, in order."""
    triggers = postgres_source(postgres_url, PostgresOptions(changes="triggers"))
    await triggers.connection.open()
    try:
        order = await triggers.store.create(OrderCreate(customer_name="Ada", product_name="v1"))
        start = await _head(postgres_url)
    finally:
        await triggers.connection.close()
    writer = await asyncpg.connect(postgres_url)
    stop = asyncio.Event()

    async def write() -> int:
        n = 0
        while not stop.is_set() or n < 50:
            await writer.execute("UPDATE orders SET product_name = $2 WHERE id = $1", order.id, f"p{n}")
            n += 1
        return n

    writing = asyncio.create_task(write())
    try:
        async with Running(postgres_url) as wal:  # the switch, while the writer writes
            assert await _feed_of(postgres_url) == "wal"
            stop.set()
            written = await writing
            changes = await read_from(wal.source, start, written)
            assert wal.died() == []
    finally:
        stop.set()
        await writer.close()
    assert [c.order["version"] for c in changes if c.order] == list(range(2, written + 2))
    assert [c.order["product_name"] for c in changes if c.order] == [f"p{n}" for n in range(written)]


async def test_going_back_to_triggers_resyncs_every_reader_and_drops_the_slot(postgres_url: str) -> None:
    async with Running(postgres_url) as wal:
        before = await _head(postgres_url)
        await wal.source.store.create(OrderCreate(customer_name="Ada", product_name="Lamp"))

        async def appended() -> bool:  # the log trails the table: the reader has appended the write
            return await _head(postgres_url) != before

        await until_async(appended, what="the WAL reader's append of the write")
        position = await _head(postgres_url)
        slot = wal.source.connection.slot
    assert [s["slot_name"] for s in await slots(postgres_url)] == [slot]
    triggers = postgres_source(postgres_url, PostgresOptions(changes="triggers"))
    await triggers.connection.open()
    try:
        assert await _feed_of(postgres_url) == "triggers"
        assert await slots(postgres_url) == []  # no slot left to hold WAL back
        with pytest.raises(StreamInvalidated):
            await read_from(triggers, position, 1)
    finally:
        await triggers.connection.close()


async def _head(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        return f"pg:{await connection.fetchval('SELECT COALESCE(max(commit_seq), 0) FROM orders_live_commits')}"
    finally:
        await connection.close()


async def _feed_of(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        return str(await connection.fetchval("SELECT feed FROM orders_live_log"))
    finally:
        await connection.close()


async def test_a_recreated_orders_table_is_published_again_and_followed(wal: Running, postgres_url: str) -> None:
    """PostgreSQL removes a dropped table from its publications: the table made again by the next
    start's schema is put back, and its writes reach the feed."""
    started = asyncio.Event()
    reading = asyncio.create_task(collect(wal.source, 1, started=started))
    await asyncio.wait_for(started.wait(), 10)
    await wal.source.store.create(OrderCreate(customer_name="Ada", product_name="Lamp"))
    await reading  # appended: the reader is idle when the table goes
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute("DROP TABLE orders CASCADE")
        again = postgres_source(postgres_url, PostgresOptions(changes="wal"))
        await again.connection.open()  # what an instance's start does: the schema, the publication
        await again.connection.close()
        published = await admin.fetchval(
            "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'orders_live' AND tablename = 'orders'"
        )
        assert published == 1
    finally:
        await admin.close()
    started = asyncio.Event()
    reading = asyncio.create_task(collect(wal.source, 1, started=started))
    await asyncio.wait_for(started.wait(), 10)
    created = await wal.source.store.create(OrderCreate(customer_name="Bo", product_name="Desk"))
    [change] = await reading
    assert (change.op, change.id) == ("insert", created.id)
