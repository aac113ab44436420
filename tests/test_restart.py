"""Restarts lose nothing: the saved resume position brings back what happened while down."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from conftest import NxServer, free_port, opened, running_service, settings_for, until
from orders_live.client.rest import OrdersClient
from orders_live.domain.order import OrderCreate, OrderPatch

pytestmark = [pytest.mark.database, pytest.mark.socketio]


async def test_changes_made_while_the_service_is_down_reach_subscribers_after_restart(
    database_url: str, listeners: Any
) -> None:
    settings = settings_for(database_url, port=free_port())
    async with running_service(settings) as first, aiohttp.ClientSession() as session:
        listener = await listeners(first.url)
        await listener.subscribe({})
        api = OrdersClient(first.url, session)
        kept = await api.create("Ada", "Keyboard")
        await api.create("Grace", "Monitor")
        await until(lambda: len(listener.changes()) == 2, what="the first two changes")
        last_seen = listener.changes()[-1]["position"]

    # The service is down; the database is not. Someone writes.
    async with opened(database_url) as writer:
        made = await writer.store.create(OrderCreate(customer_name="Alan", product_name="Desk"))
        await writer.store.update(kept["id"], OrderPatch(status="shipped"), expected_version=1)
        await writer.store.delete(made.id, expected_version=None)

    async with running_service(settings):
        await until(lambda: listener.sio.connected and listener.connects == 2, within=10, what="the reconnect")
        before = len(listener.changes())
        ack = await listener.subscribe({"since": last_seen})
        missed = listener.changes()[before:]
        assert ack["ok"] is True
        assert ack["replayed"] == 3
        assert [(c["op"], c["id"]) for c in missed] == [
            ("insert", made.id),
            ("update", kept["id"]),
            ("delete", made.id),
        ]
        assert missed[1]["order"]["status"] == "shipped"
        key = first.source.feed.position_key if first.source else None
        assert key is not None
        # The ack's position is the replay's end: the last change's, or (PostgreSQL) the same
        # point named as "after its whole commit".
        assert key(ack["position"]) >= key(missed[-1]["position"])  # type: ignore[operator]


async def test_a_position_the_change_log_no_longer_holds_gets_a_resync_not_a_gap(
    nx: NxServer, mongo_url: str, listeners: Any
) -> None:
    """nx-27017 prunes its change log ~1,000 rows behind its slowest open stream and
    then accepts the old token without a word; the service must notice."""
    settings = settings_for(mongo_url, port=free_port())
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        listener = await listeners(service.url)
        await listener.subscribe({})
        first = await OrdersClient(service.url, session).create("Ada", "Keyboard")
        await until(lambda: len(listener.changes()) == 1, what="the first change")
        old_position = listener.changes()[0]["position"]

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    orders = client.get_default_database()["orders"]
    try:
        async with await orders.watch() as stream:  # an open stream lets nx prune behind it
            for n in range(1_100):
                await orders.update_one({"_id": first["id"]}, {"$set": {"product_name": f"K{n}"}})
            while await stream.try_next() is not None:
                pass
    finally:
        await client.close()

    async with running_service(settings):
        await until(lambda: listener.sio.connected and listener.connects == 2, within=10, what="the reconnect")
        ack = await listener.subscribe({"since": old_position})
        assert ack["resync"] == "history_gone"
        assert [(o["id"], o["product_name"]) for o in listener.snapshot()] == [(first["id"], "K1099")]
