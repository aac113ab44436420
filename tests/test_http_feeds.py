"""Server-Sent Events with Last-Event-ID reconnects, and the polling baseline."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from conftest import running_service, settings_for, sse_events, until
from orders_live.client.rest import OrdersClient
from orders_live.service import Service

pytestmark = pytest.mark.database


class SseReader:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url
        self.events: list[tuple[str, str | None, Any]] = []
        self.last_id: str | None = None
        self.task: asyncio.Task[None] | None = None

    def open(self) -> None:
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
        async with self.session.get(self.url, headers=headers) as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"
            async for event, event_id, data in sse_events(response):
                self.events.append((event, event_id, data))
                if event_id is not None:
                    self.last_id = event_id

    async def drop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def changes(self) -> list[dict[str, Any]]:
        return [data for event, _, data in self.events if event == "order_change"]


async def test_sse_gives_a_snapshot_then_changes_and_replays_the_gap_after_a_reconnect(service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)
        first = await api.create("Ada", "Lamp")
        reader = SseReader(session, f"{service.url}/api/changes/stream?status=pending")
        reader.open()
        await until(lambda: any(e[0] == "caught_up" for e in reader.events), what="the snapshot")
        (event, event_id, snapshot), (end, end_id, caught_up) = reader.events[:2]
        assert (event, event_id, snapshot["reset"]) == ("snapshot", None, True)  # a page has no id
        assert [o["id"] for o in snapshot["orders"]] == [first["id"]]
        assert end == "caught_up" and end_id == caught_up["position"] and caught_up["snapshot"] == 1
        second = await api.create("Grace", "Desk")
        await until(lambda: len(reader.changes()) == 1, what="the first live change")
        await reader.drop()
        # While it is away: three changes, two of them touch pending orders.
        await api.update(first["id"], status="shipped")
        await api.create("Alan", "Chair", status="delivered")
        third = await api.create("Edsger", "Pen")
        reader.open()  # reconnects with Last-Event-ID, as an EventSource would
        await until(lambda: sum(e[0] == "caught_up" for e in reader.events) == 2, what="catch-up")
        await api.delete(second["id"])
        await until(lambda: len(reader.changes()) == 4, what="the live delete")
    await reader.drop()
    changes = reader.changes()
    assert [(c["op"], c["id"]) for c in changes] == [
        ("insert", second["id"]),
        ("update", first["id"]),  # moved out of pending
        ("insert", third["id"]),
        ("delete", second["id"]),
    ]
    assert service.streams.direct == 2  # both streams' live changes went straight to the socket (sse_direct)
    caught_up = [data for event, _, data in reader.events if event == "caught_up"][-1]  # the reconnect's
    assert caught_up["replayed"] == 2
    ids = [event_id for event, event_id, _ in reader.events if event == "order_change"]
    assert ids == [c["position"] for c in changes]


async def test_sse_with_an_unknown_last_event_id_gets_a_resync(service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        await OrdersClient(service.url, session).create("Ada", "Lamp")
        reader = SseReader(session, f"{service.url}/api/changes/stream")
        reader.last_id = "not-a-position"
        reader.open()
        await until(lambda: any(e[0] == "resync" for e in reader.events), what="the resync")
        await reader.drop()
    (page, _, orders), (event, _, data) = reader.events[:2]
    assert page == "snapshot" and orders["reset"] and len(orders["orders"]) == 1
    assert event == "resync"
    assert data["reason"] == "unknown_position" and data["snapshot"] == 1


async def test_idle_sse_streams_get_keep_alive_comments(database_url: str) -> None:
    settings = settings_for(database_url, sse_keepalive=0.05)
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        reader = SseReader(session, f"{service.url}/api/changes/stream")
        reader.open()
        await until(lambda: sum(e[0] == "comment" for e in reader.events) >= 2, what="keep-alives")
        await reader.drop()


async def test_polling_returns_at_once_with_what_changed_since_a_position(service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)
        start = (await api.list())["position"]
        async with session.get(f"{service.url}/api/changes", params={"since": start}) as response:
            empty = await response.json()
        assert empty == {"changes": [], "position": start, "counts": {"pending": 0, "shipped": 0, "delivered": 0}}
        order = await api.create("Ada", "Lamp")
        await api.update(order["id"], status="shipped")
        async with session.get(f"{service.url}/api/changes", params={"since": start, "status": "shipped"}) as r:
            shipped = await r.json()
        assert [(c["op"], c["order"]["status"]) for c in shipped["changes"]] == [("update", "shipped")]
        async with session.get(f"{service.url}/api/changes") as response:
            assert response.status == 422
            assert "since" in (await response.json())["error"]["fields"]
        kind = start.split(":", 1)[0]  # nx or pg: positions of other kinds are foreign
        foreigners = {"nx": ("8263A1B2C3000000012B0429", "abcd", "pg:1"), "pg": ("8263A1B2C3", "nx:1", "pg:x")}[kind]
        for foreign in foreigners:  # a MongoDB-style one to nx-27017: it would take it silently
            async with session.get(f"{service.url}/api/changes", params={"since": foreign}) as response:
                assert (await response.json())["resync"] == "unknown_position"
        # (far past any log position: PostgreSQL's WAL feed numbers commits by their log position)
        ahead = f"{kind}:999999" if kind == "nx" else "pg:100000000000000001"
        async with session.get(f"{service.url}/api/changes", params={"since": ahead}) as response:
            assert response.status == 422  # past the database's log: no instance handed it out
            assert "ahead of the database's change log" in (await response.json())["error"]["fields"]["since"]
