"""Fast tier: one direct writer for both transports (``transports/direct_write.py``). Its start-up
self-check passes on the pinned aiohttp, and both transports write straight to the socket; when
the check finds a difference, the Socket.IO engine and the event streams both take their
library's own path (Engine.IO's send, aiohttp's ``response.write``), and clients get the same
events."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from conftest import Listener, running_service, settings_for, sse_events, until
from orders_live.client.rest import OrdersClient
from orders_live.transports import direct_write
from orders_live.transports.http import sse_direct
from orders_live.transports.socketio._engine import Engine

pytestmark = pytest.mark.fast


def test_the_shared_check_passes_on_the_pinned_aiohttp_and_is_part_of_the_engine_check() -> None:
    assert direct_write.check() == []
    assert sse_direct.check() == []
    assert Engine(direct=True).direct is True


async def _sse_changes(url: str, seen: list[dict[str, Any]], caught_up: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/changes/stream") as response:
        async for event, _, data in sse_events(response):
            if event == "caught_up":
                caught_up.set()
            elif event == "order_change":
                seen.append(data)


@pytest.mark.parametrize("found", [[], ["aiohttp reshaped (the test says so)"]], ids=["as-tested", "reshaped"])
async def test_both_transports_write_straight_to_the_socket_or_both_fall_back(
    found: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_write, "PROBLEMS", found)
    direct = not found
    settings = settings_for("memory://", socketio_direct=True)  # what is tested is the check, not the switch
    async with running_service(settings) as service, aiohttp.ClientSession() as session:
        assert service.gateway is not None and service.streams is not None
        assert service.gateway.engine.direct is direct
        assert any(problem in service.gateway.engine.problems for problem in found) or direct
        listener = await Listener(service.url).connect()
        sse_seen: list[dict[str, Any]] = []
        caught_up = asyncio.Event()
        reader = asyncio.create_task(_sse_changes(service.url, sse_seen, caught_up))
        try:
            assert (await listener.subscribe({"status": "pending"}))["ok"] is True
            await asyncio.wait_for(caught_up.wait(), 5)
            api = OrdersClient(service.url, session)
            created = [await api.create(f"C{n}", "Lamp") for n in range(3)]
            ids = [order["id"] for order in created]
            await until(lambda: [c["id"] for c in listener.changes()] == ids, what="the Socket.IO changes")
            await until(lambda: [c["id"] for c in sse_seen] == ids, what="the SSE changes")
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await listener.close()
        assert service.streams.direct == int(direct)  # streams opened on the direct path
