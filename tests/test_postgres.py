"""PostgreSQL, for real: the database keeps the contract for any client, NOTIFY is only a
wake-up, late commits are delivered once and in order, and the log stays bounded.

Includes the brief's limits, demonstrated: a plain LISTEN/NOTIFY listener misses what is
notified while it is disconnected; orders-live's source does not.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from conftest import (
    Listener,
    database_orders,
    free_port,
    opened,
    running_service,
    settings_for,
    until,
    until_async,
)
from orders_live.domain.order import OrderCreate
from orders_live.sources.postgres import PostgresOptions, postgres_source

pytestmark = [pytest.mark.database, pytest.mark.socketio]


def versions(listener: Listener) -> list[tuple[str, int, int | None]]:
    return [(c["op"], c["id"], c["order"]["version"] if c["order"] else None) for c in listener.changes()]


async def test_any_client_writes_as_the_service_does_and_nothing_rolled_back_is_delivered(
    postgres_url: str, listeners: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psql-style SQL from another connection: the database sets version and updated_at,
    logs each row, and a multi-row transaction arrives whole and in order. NOTIFY wakes the
    service: with re-reads 60 s apart, the changes still arrive at once."""
    monkeypatch.setenv("ORDERS_LIVE_PG_POLL_INTERVAL", "60")
    async with running_service(settings_for(postgres_url)) as service:
        listener = await listeners(service.url)
        await listener.subscribe({})
        other = await asyncpg.connect(postgres_url)
        try:
            await other.execute("INSERT INTO orders (customer_name, product_name) VALUES ('Ada', 'Lamp')")
            async with other.transaction():
                await other.execute("UPDATE orders SET status = 'shipped' WHERE customer_name = 'Ada'")
                await other.execute(
                    "INSERT INTO orders (customer_name, product_name, status) VALUES ('Bo', 'Desk', 'pending'),"
                    " ('Cy', 'Chair', 'delivered')"
                )
            await other.execute(
                "BEGIN; INSERT INTO orders (customer_name, product_name) VALUES ('Never', 'Seen'); ROLLBACK"
            )
            await other.execute("UPDATE orders SET version = 99, updated_at = '2000-01-01' WHERE customer_name = 'Bo'")
            await other.execute("DELETE FROM orders WHERE customer_name = 'Cy'")
        finally:
            await other.close()
        await until(lambda: len(listener.changes()) == 6, within=10, what="six changes, without a re-read")
        ada, bo, cy = (c["id"] for c in listener.changes()[:1] + listener.changes()[2:4])
        assert versions(listener) == [
            ("insert", ada, 1),
            ("update", ada, 2),
            ("insert", bo, 1),
            ("insert", cy, 1),
            ("update", bo, 2),  # the database keeps the version, whatever the client sends
            ("delete", cy, None),
        ]
        stored = await database_orders(postgres_url)
        assert sorted(o["customer_name"] for o in stored.values()) == ["Ada", "Bo"]
        assert stored[bo]["version"] == 2 and stored[bo]["updated_at"] > "2026"
        positions = [c["position"] for c in listener.changes()]
        assert positions[2].split(".")[0] == positions[3].split(".")[0]  # one transaction, one commit


async def test_a_transaction_that_commits_late_is_delivered_once_and_in_order(
    postgres_url: str, listeners: Any
) -> None:
    """A writes first and commits last; B writes second and commits first. A client that
    reconnects from the position after B must still get A, once, after B. Reading the log by
    "id greater than the last one seen" would skip A for good."""
    async with opened(postgres_url) as source:
        first = await source.store.create(OrderCreate(customer_name="A", product_name="first"))
        second = await source.store.create(OrderCreate(customer_name="B", product_name="second"))
    async with running_service(settings_for(postgres_url, port=free_port())) as service:
        early = await listeners(service.url)
        await early.subscribe({})
        a, b = await asyncpg.connect(postgres_url), await asyncpg.connect(postgres_url)
        try:
            a_transaction, b_transaction = a.transaction(), b.transaction()
            await a_transaction.start()
            await a.execute("UPDATE orders SET status = 'shipped' WHERE id = $1", first.id)  # log row n
            await b_transaction.start()
            await b.execute("UPDATE orders SET status = 'shipped' WHERE id = $1", second.id)  # log row n + 1
            await b_transaction.commit()
            await until(lambda: len(early.changes()) == 1, what="B's change")
            between = early.changes()[-1]["position"]
            late = await listeners(service.url)  # a client that was away until now
            ack = await late.subscribe({"since": between})
            assert ack["replayed"] == 0
            await a_transaction.commit()
        finally:
            await a.close()
            await b.close()
        for client in (early, late):
            await until(lambda client=client: first.id in {c["id"] for c in client.changes()}, what="A's change")
        assert [c["id"] for c in early.changes()] == [second.id, first.id]
        assert [c["id"] for c in late.changes()] == [first.id]
        again = await listeners(service.url)
        await again.subscribe({"since": between})  # a reconnect from the same position, later
        assert [c["id"] for c in again.changes()] == [first.id]


async def test_a_plain_listener_misses_what_is_notified_while_it_is_away_and_orders_live_does_not(
    postgres_url: str, listeners: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The brief's design as most implement it: LISTEN and trust the notifications (the trigger
    feed's, each writer's own NOTIFY, in every pass)."""
    monkeypatch.setenv("ORDERS_LIVE_PG_CHANGES", "triggers")
    async with running_service(settings_for(postgres_url)) as service:
        watcher = await listeners(service.url)
        await watcher.subscribe({})
        plain: list[str] = []
        connection = await asyncpg.connect(postgres_url)
        await connection.add_listener("orders_live", lambda *args: plain.append(args[3]))
        await connection.execute("INSERT INTO orders (customer_name, product_name) VALUES ('Seen', 'by both')")
        await until(lambda: len(plain) == 1 and len(watcher.changes()) == 1, what="the first change, twice")
        await connection.close()  # the plain listener drops...
        async with opened(postgres_url) as writer:  # ...and a change is made meanwhile
            missed = await writer.store.create(OrderCreate(customer_name="Missed", product_name="by one"))
        connection = await asyncpg.connect(postgres_url)  # it comes back
        try:
            await connection.add_listener("orders_live", lambda *args: plain.append(args[3]))
            # A change after its return: notifications arrive in commit order, so once this one
            # has arrived, anything the listener could ever get for the missed change has too.
            await connection.execute("INSERT INTO orders (customer_name, product_name) VALUES ('After', 'return')")
            await until(lambda: len(plain) >= 2 and len(watcher.changes()) == 3, what="the change after the return")
        finally:
            await connection.close()
        assert len(plain) == 2, "NOTIFY is at-most-once: nothing tells the plain listener what it missed"
        assert watcher.changes()[1]["id"] == missed.id


async def test_the_change_log_stays_bounded_and_a_position_it_dropped_gets_a_resync(
    postgres_url: str, listeners: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kept: 50 rows, and 1 s (the WAL feed appends a batch of commits at once, some time after they
    # committed: with no age to keep, retention could cut a batch before any reader read it)
    monkeypatch.setenv("ORDERS_LIVE_PG_LOG_KEEP_ROWS", "50")
    monkeypatch.setenv("ORDERS_LIVE_PG_LOG_KEEP_SECONDS", "1")
    monkeypatch.setenv("ORDERS_LIVE_PG_RETENTION_INTERVAL", "0.1")
    monkeypatch.setenv("ORDERS_LIVE_PG_RETENTION_BATCH", "40")
    async with running_service(settings_for(postgres_url, history_size=20)) as service:
        assert service.source is not None
        listener = await listeners(service.url)
        await listener.subscribe({})
        order = await service.source.store.create(OrderCreate(customer_name="Ada", product_name="P0"))
        await until(lambda: len(listener.changes()) == 1, what="the first change")
        old = listener.changes()[0]["position"]
        db = await asyncpg.connect(postgres_url)
        try:
            for n in range(1, 400):
                await db.execute("UPDATE orders SET product_name = $1 WHERE id = $2", f"P{n}", order.id)

            async def log_size() -> int:
                return int(await db.fetchval("SELECT count(*) FROM orders_live_changes"))

            async def bounded() -> bool:
                return await log_size() <= 50 + 40

            await until_async(bounded, within=10, what="retention to bring the log back to about 50 rows")
            horizon = await db.fetchval("SELECT horizon FROM orders_live_log")
        finally:
            await db.close()
        assert horizon > 1
        await until(lambda: len(listener.changes()) == 400, what="every change, live")
        late = await listeners(service.url)
        ack = await late.subscribe({"since": old})  # older than memory (20) and than the log
        assert ack["resync"] == "history_gone"
        assert [o["product_name"] for o in late.snapshot()] == ["P399"]


async def test_a_truncate_resyncs_every_view(postgres_url: str, listeners: Any) -> None:
    async with running_service(settings_for(postgres_url)) as service:
        assert service.source is not None and service.hub is not None
        order = await service.source.store.create(OrderCreate(customer_name="Ada", product_name="Lamp"))
        assert await service.hub.applied(order.id, 1, within=5)
        listener = await listeners(service.url)
        ack = await listener.subscribe({})
        assert ack["snapshot"] == 1 and len(listener.snapshot()) == 1
        db = await asyncpg.connect(postgres_url)
        try:
            await db.execute("TRUNCATE orders")
        finally:
            await db.close()
        await until(lambda: any(event == "resync" for event, _ in listener.received), what="the resync")
        (resync,) = [payload for event, payload in listener.received if event == "resync"]
        assert resync["reason"] == "history_lost" and resync["snapshot"] == 0 and listener.snapshot() == []


async def test_positions_and_options_of_the_postgres_source() -> None:
    source = postgres_source("postgresql://nobody@127.0.0.1:1/none", PostgresOptions(poll_interval=0.5))
    key = source.feed.position_key
    assert key("pg:9") is not None and key("pg:10.3") is not None
    assert key("pg:9.5") < key("pg:9") < key("pg:10.1") < key("pg:10")  # type: ignore[operator]
    for foreign in ("nx:9", "8263A1B2C3", "", "pg:", "pg:-1", "pg:1.2.3", "pg:1; drop table orders"):
        assert key(foreign) is None
