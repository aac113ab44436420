"""Tables of any size: a 100,000-order table on PostgreSQL, generated in the database.

Snapshots come in bounded pages before the ack (Socket.IO) or before ``caught_up`` (SSE);
windowed subscriptions get the newest ``limit`` orders and the counts; the REST list pages
with ``before=``; and a change made while pages are being sent is neither lost nor applied
twice. The table is generated once for the module (one SQL statement, its triggers firing as
for any write), before the service starts; each test starts its own service on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio

from conftest import (
    ORDERS_LIVE,
    Listener,
    PgServer,
    database_counts,
    database_orders,
    running_service,
    settings_for,
    until,
)
from orders_live.bench.bulk import insert_orders
from orders_live.client.live_orders import LiveOrders
from orders_live.client.live_view import LiveView
from orders_live.client.rest import OrdersClient
from orders_live.service import Service

pytestmark = pytest.mark.database

ORDERS = 100_000
PAGE_BYTES = 64 * 1024  # smaller than the default, so that the bound is the page's bytes, not its count


@pytest.fixture(scope="module")
def big_table(pg: PgServer) -> str:
    url = pg.new_database()
    asyncio.run(insert_orders(url, ORDERS))  # the schema, then one INSERT ... SELECT generate_series
    return url


@pytest_asyncio.fixture
async def service(big_table: str) -> AsyncIterator[Service]:
    async with running_service(settings_for(big_table, snapshot_page_bytes=PAGE_BYTES)) as running:
        yield running


class RawSocket:
    """An Engine.IO/Socket.IO client over a plain WebSocket that records every message's size."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.sizes: list[int] = []
        self.events: list[tuple[str, Any]] = []

    async def handshake(self) -> None:
        await self._text()  # Engine.IO open
        await self.ws.send_str("40")
        while not (await self._text()).startswith("40"):
            pass

    async def subscribe(self, payload: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send_str("420" + json.dumps(["subscribe", payload]))
        while True:
            text = await self._text()
            if text == "2":
                await self.ws.send_str("3")
            elif text.startswith("430"):
                ack: dict[str, Any] = json.loads(text[3:])[0]
                return ack
            elif text.startswith("42"):
                event, data = json.loads(text[2:])
                self.events.append((event, data))

    async def _text(self) -> str:
        message = await self.ws.receive(timeout=30)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        text: str = message.data
        self.sizes.append(len(text.encode()))
        return text


async def test_no_socketio_or_sse_message_exceeds_the_bound_for_a_100k_snapshot(service: Service) -> None:
    ws_url = service.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, max_msg_size=0) as ws:
            raw = RawSocket(ws)
            await raw.handshake()
            ack = await raw.subscribe({})
        assert ack["ok"] and ack["snapshot"] == ORDERS
        pages = [data for event, data in raw.events if event == "snapshot"]
        assert len(pages) >= ORDERS * 100 // PAGE_BYTES  # ~100 bytes an order: the byte bound split them
        assert pages[0]["reset"] and not any(page.get("reset") for page in pages[1:])
        assert sum(len(page["orders"]) for page in pages) == ORDERS
        assert max(len(page["orders"]) for page in pages) <= 1000
        assert max(raw.sizes) <= PAGE_BYTES

        sse_sizes: list[int] = []
        sent = 0
        async with session.get(f"{service.url}/api/changes/stream") as response:
            event = b""
            async for line in response.content:
                event += line
                if line == b"\n":
                    sse_sizes.append(len(event))
                    if event.startswith(b"event: caught_up"):
                        sent = json.loads(event.split(b"data: ", 1)[1])["snapshot"]
                        break
                    event = b""
        assert sent == ORDERS
        assert len(sse_sizes) > len(pages) // 2 and max(sse_sizes) <= PAGE_BYTES


async def test_live_orders_and_watch_get_the_whole_pending_snapshot_then_live_changes(
    service: Service, big_table: str
) -> None:
    pending = {i: o for i, o in (await database_orders(big_table)).items() if o["status"] == "pending"}
    assert len(pending) > 30_000
    watch = await asyncio.create_subprocess_exec(
        *ORDERS_LIVE, "watch", "--url", service.url, "--status", "pending", stdout=asyncio.subprocess.PIPE
    )
    try:
        async with LiveOrders(service.url, status="pending") as live:
            await live.wait_live(within=60)
            assert live.orders == pending
            assert live.counts == {"pending": len(pending)}
            assert watch.stdout is not None
            first = (await asyncio.wait_for(watch.stdout.readline(), 60)).decode()
            assert first.startswith(f"-- snapshot: {len(pending)} orders ({len(pending)} pending)"), first
            async with aiohttp.ClientSession() as session:
                created = await OrdersClient(service.url, session).create("Live", "Change")
            await until(lambda: created["id"] in live.orders, what="the live change in LiveOrders")
            assert live.counts == {"pending": len(pending) + 1}
            line = (await asyncio.wait_for(watch.stdout.readline(), 10)).decode()
            assert f"insert #{created['id']} " in line, line
    finally:
        watch.terminate()
        await watch.wait()


async def test_a_window_gets_the_newest_orders_and_the_counts(service: Service, big_table: str) -> None:
    stored = list((await database_orders(big_table)).values())
    newest = sorted(stored, key=lambda o: (o["updated_at"], o["id"]), reverse=True)
    async with LiveOrders(service.url, limit=500) as live:
        await live.wait_live(within=30)
        assert list(live.orders.values()) == newest[:500]
        assert live.counts == await database_counts(big_table)
        assert live.view.total == len(stored)
    shipped = [o for o in newest if o["status"] == "shipped"]
    async with LiveOrders(service.url, status="shipped", limit=1500) as live:  # more than one page
        await live.wait_live(within=30)
        assert list(live.orders.values()) == shipped[:1500]
        assert live.counts == {"shipped": len(shipped)}


async def test_the_rest_list_pages_through_the_table_with_a_cursor(service: Service, big_table: str) -> None:
    stored = list((await database_orders(big_table)).values())
    delivered = sorted(
        (o for o in stored if o["status"] == "delivered"), key=lambda o: (o["updated_at"], o["id"]), reverse=True
    )
    seen: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        before: str | None = None
        for _ in range(3):
            params = {"status": "delivered", "limit": "1000", **({"before": before} if before else {})}
            async with session.get(f"{service.url}/api/orders", params=params) as response:
                assert response.status == 200
                page = await response.json()
            assert page["counts"] == {"delivered": len(delivered)}
            seen += page["orders"]
            before = page["next_before"]
            assert before is not None
        async with session.get(f"{service.url}/api/orders", params={"before": "yesterday"}) as response:
            assert response.status == 422
            assert "before" in (await response.json())["error"]["fields"]
    assert seen == delivered[:3000]


async def test_changes_made_while_pages_are_sent_are_neither_lost_nor_applied_twice(
    service: Service, big_table: str
) -> None:
    """A writer updates, moves, deletes and creates orders while a client takes a 100,000-order
    snapshot; once the writer stops, the client's view is the database, and every change it got
    after the ack is later than the ack and one version on from what it held."""
    db = await asyncpg.connect(big_table)
    stop = asyncio.Event()
    written = 0

    async def write() -> None:
        nonlocal written
        n = 0
        while not stop.is_set():
            n += 1
            order_id = 1 + (n * 7919) % ORDERS
            if n % 10 == 0:
                await db.execute("DELETE FROM orders WHERE id = $1", order_id)
            elif n % 10 == 1:
                await db.execute("INSERT INTO orders (customer_name, product_name) VALUES ($1, 'New')", f"W{n}")
            else:
                status = ("pending", "shipped", "delivered")[n % 3]
                await db.execute("UPDATE orders SET status = $2 WHERE id = $1", order_id, status)
            written += 1
            await asyncio.sleep(0)

    writer = asyncio.create_task(write())
    listener = Listener(service.url)
    try:
        await until(lambda: written > 20, what="the writer to start")
        await listener.connect()
        ack = await listener.sio.call("subscribe", {}, timeout=60)
        listener.received.append(("ack", ack))
        assert ack["ok"] and written > 100  # the writer ran through the snapshot's pages
        await until(lambda: len(listener.changes()) > 50, what="live changes after the ack")
        stop.set()
        await writer
        # The last write, known by its name: once it is delivered, every earlier one is (on the WAL
        # feed the log trails the table, so its highest commit now may not be the last one yet).
        await db.execute("INSERT INTO orders (customer_name, product_name) VALUES ('Last', 'Last')")
        await until(
            lambda: bool(listener.changes()) and (listener.changes()[-1]["order"] or {}).get("customer_name") == "Last",
            within=15,
            what="the last change",
        )
        stored = await database_orders(big_table)
    finally:
        stop.set()
        await asyncio.gather(writer, return_exceptions=True)
        await db.close()
        await listener.close()
    assert service.source is not None
    key = service.source.feed.position_key
    ack_key = key(ack["position"])
    assert ack_key is not None
    before_ack = listener.received[: listener.received.index(("ack", ack))]
    assert all(event == "snapshot" for event, _ in before_ack)
    view = LiveView({})
    view.begin()
    view.add(listener.snapshot(), [])
    view.end(ack["position"], ack["counts"])
    for change in listener.changes():
        change_key = key(change["position"])
        assert change_key is not None and change_key > ack_key
        held = view.orders.get(change["id"])
        if change["order"] is not None:
            expected = 1 if held is None else held["version"] + 1  # none twice, none skipped
            assert change["order"]["version"] == expected, (change, held)
        assert view.apply(change)
    assert view.orders == stored
    assert view.counts == await database_counts(big_table)
