"""The live path against the real embedded database: REST writes → change stream → Socket.IO."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from conftest import Listener, database_orders, until
from orders_live.client.rest import OrdersClient
from orders_live.service import Service

pytestmark = [pytest.mark.database, pytest.mark.socketio]


def summary(changes: list[dict[str, Any]]) -> list[tuple[str, int, str | None, int | None]]:
    return [
        (c["op"], c["id"], c["order"]["status"] if c["order"] else None, c["order"]["version"] if c["order"] else None)
        for c in changes
    ]


@contextlib.asynccontextmanager
async def updates_running(api: OrdersClient, ids: list[int]) -> AsyncIterator[None]:
    """One writer updating ``ids`` in turn, as fast as the service answers, until the block ends."""
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await api.update(ids[n % len(ids)], product_name=f"P{n}")

    writing = asyncio.create_task(writer(), name="test.writer")
    try:
        yield
    finally:
        stop.set()
        await writing


async def test_filtered_clients_see_exactly_their_changes_in_order(service: Service, listeners: Any) -> None:
    pending = await listeners(service.url)
    everything = await listeners(service.url)
    one = await listeners(service.url)
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)
        assert (await pending.subscribe({"status": "pending"}))["snapshot"] == 0 and pending.snapshot() == []
        assert (await everything.subscribe({}))["ok"] is True
        first = await api.create("Ada Lovelace", "Keyboard")
        assert (await one.subscribe({"id": first["id"]}))["snapshot"] == 1 and one.snapshot() == [first]
        second = await api.create("Grace Hopper", "Monitor")
        await api.update(first["id"], status="shipped")  # moves out of pending
        await api.update(second["id"], customer_name="Grace B. Hopper")
        await api.delete(second["id"])  # deleted while pending
        third = await api.create("Alan Turing", "Desk", status="shipped")
        await api.update(first["id"], status="delivered")
        await api.delete(first["id"])  # deleted while delivered
        await until(lambda: len(everything.changes()) == 8, what="all eight changes")
        await until(lambda: len(one.changes()) == 3, what="the three changes of order 1")
    a, b, c = first["id"], second["id"], third["id"]
    assert summary(everything.changes()) == [
        ("insert", a, "pending", 1),
        ("insert", b, "pending", 1),
        ("update", a, "shipped", 2),
        ("update", b, "pending", 2),
        ("delete", b, None, None),
        ("insert", c, "shipped", 1),
        ("update", a, "delivered", 3),
        ("delete", a, None, None),
    ]
    # The pending view gets the move out of pending, and the delete of a pending order,
    # but nothing about orders that were never pending while it watched.
    assert summary(pending.changes()) == [
        ("insert", a, "pending", 1),
        ("insert", b, "pending", 1),
        ("update", a, "shipped", 2),
        ("update", b, "pending", 2),
        ("delete", b, None, None),
    ]
    assert summary(one.changes()) == [
        ("update", a, "shipped", 2),
        ("update", a, "delivered", 3),
        ("delete", a, None, None),
    ]
    positions = [change["position"] for change in everything.changes()]
    assert len(set(positions)) == len(positions)
    assert all(change["committed_at"].endswith("Z") for change in everything.changes())
    assert await database_orders(service.settings.database_url or "") == {c: third}


async def test_snapshot_in_the_ack_matches_the_database(service: Service, listeners: Any) -> None:
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)
        for n in range(12):
            order = await api.create(f"Customer {n}", f"Product {n}", status=("pending", "shipped", "delivered")[n % 3])
            if n % 4 == 0:
                await api.update(order["id"], status="delivered")
    await until(lambda: service.hub is not None and len(service.hub.index) == 12, what="the index")
    stored = await database_orders(service.settings.database_url or "")
    listener = await listeners(service.url)
    for wanted in ({}, {"status": "pending"}, {"status": "delivered"}, {"id": 5}):
        ack = await listener.subscribe(wanted)
        expected = [o for o in stored.values() if all(o[k] == v for k, v in wanted.items())]
        assert sorted(listener.snapshot(), key=lambda o: o["id"]) == sorted(expected, key=lambda o: o["id"])
        assert ack["snapshot"] == len(expected)
        assert sum(ack["counts"].values()) == len(expected)
        window = await listener.subscribe({**wanted, "limit": 3})
        newest = sorted(expected, key=lambda o: (o["updated_at"], o["id"]), reverse=True)[:3]
        assert listener.snapshot() == newest and window["snapshot"] == len(newest)  # a window: newest first


async def test_nothing_but_the_ack_then_later_changes_under_concurrent_writes(service: Service, listeners: Any) -> None:
    assert service.source is not None
    assert service.hub is not None
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)
        ids = [(await api.create(f"C{n}", "P"))["id"] for n in range(5)]
        async with updates_running(api, ids):
            listener = await listeners(service.url)
            await until(lambda: service.hub is not None and service.hub.changes_in > 20, what="writes flowing")
            ack = await listener.subscribe({})
            await until(lambda: len(listener.changes()) >= 10, what="live changes")
    before_ack = listener.received[: listener.received.index(("ack", ack))]
    assert before_ack and all(event == "snapshot" for event, _ in before_ack)  # pages, then the ack
    key = service.source.feed.position_key
    ack_key = key(ack["position"])
    assert ack_key is not None
    snapshot = {o["id"]: o["version"] for o in listener.snapshot()}
    for change in listener.changes():
        change_key = key(change["position"])
        assert change_key is not None
        assert change_key > ack_key
        assert change["order"]["version"] == snapshot[change["id"]] + 1  # nothing the snapshot held, nothing skipped
        snapshot[change["id"]] = change["order"]["version"]


async def test_replayed_changes_then_the_ack_then_later_changes_under_concurrent_writes(
    service: Service, listeners: Any
) -> None:
    """With ``since``: every replayed change comes before the ack (and is at or before its
    position), every live change after it (and later than it), no version skipped or repeated."""
    assert service.source is not None
    key = service.source.feed.position_key
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)
        ids = [(await api.create(f"C{n}", "P"))["id"] for n in range(5)]
        since = (await api.list())["position"]
        versions = {order_id: 1 for order_id in ids}
        async with updates_running(api, ids):
            listener = await listeners(service.url)
            await until(lambda: service.hub is not None and service.hub.changes_in > 40, what="writes flowing")
            ack = await listener.subscribe({"since": since})
            await until(lambda: len(listener.received) > ack["replayed"] + 10, what="live changes after the ack")
    assert ack["ok"] is True and ack["replayed"] > 0
    events = [event for event, _ in listener.received]
    assert events.index("ack") == ack["replayed"], "the replayed changes must all come before the ack"
    ack_key = key(ack["position"])
    assert ack_key is not None
    for n, change in enumerate(listener.changes()):
        change_key = key(change["position"])
        assert change_key is not None
        assert change_key <= ack_key if n < ack["replayed"] else change_key > ack_key
        assert change["order"]["version"] == versions[change["id"]] + 1
        versions[change["id"]] = change["order"]["version"]


async def test_unsubscribe_stops_the_changes_and_several_subscriptions_coexist(
    service: Service, listeners: Any
) -> None:
    listener = await listeners(service.url)
    await listener.subscribe({"status": "pending"})
    await listener.subscribe({"status": "shipped"})
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)
        order = await api.create("Ada", "Lamp")
        await api.update(order["id"], status="shipped")  # both rooms: one copy per subscription
        await until(lambda: len(listener.changes()) == 3, what="three deliveries")
        left = await listener.sio.call("unsubscribe", {"status": "pending"}, timeout=5)
        assert left == {"ok": True, "filter": {"status": "pending"}, "subscribed": True}
        await api.update(order["id"], customer_name="Ada L.")
        await api.create("Bob", "Chair")  # pending: nobody listens any more
        await until(lambda: len(listener.changes()) == 4, what="the shipped update")
        await api.update(order["id"], customer_name="Ada Lovelace")
        await until(lambda: len(listener.changes()) == 5, what="one more shipped update")
    assert [c["order"]["customer_name"] for c in listener.changes()[3:]] == ["Ada L.", "Ada Lovelace"]


@pytest.mark.parametrize("database_url", ["nx"], indirect=True)  # the transport's concern, not the database's
async def test_websocket_clients_get_shared_frames_and_polling_clients_the_engineio_path(service: Service) -> None:
    """(python-socketio's client takes ~30 s to close a long-polling connection, so this runs
    on one database only.)"""
    assert service.gateway is not None
    websocket = await Listener(service.url).connect()
    polling = Listener(service.url)
    await polling.sio.connect(service.url, transports=["polling"])
    try:
        for listener in (websocket, polling):
            await listener.subscribe({})
        ways = {c.sid: c.direct is not None for c in service.gateway.connection_per_sid.values()}
        # On the direct path the WebSocket client gets frames; off it, both take Engine.IO's send.
        assert sorted(ways.values()) == [False, service.gateway.engine.direct]
        async with aiohttp.ClientSession() as session:
            api = OrdersClient(service.url, session)
            order = await api.create("Ada", "Lamp")
            for n in range(20):
                await api.update(order["id"], product_name=f"Lamp {n}")
        for listener in (websocket, polling):
            await until(lambda listener=listener: len(listener.changes()) == 21, what="every change")
            assert [c["order"]["version"] for c in listener.changes()] == list(range(1, 22))
    finally:
        await websocket.close()
        await polling.close()
