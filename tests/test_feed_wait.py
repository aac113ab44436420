"""Fast tier: while the change feed is not live, every transport waits the same ``READY_WAIT``
(5 s) before it answers ``unavailable``: a REST read with 503, a Socket.IO subscribe with its
ack's error, well inside the dashboard's 15 s ack timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import aiohttp
import pytest

from conftest import Listener, settings_for
from orders_live.domain.change import CaughtUp, Change
from orders_live.service import Service
from orders_live.sources.memory import MemoryDatabase
from orders_live.transports.feed_requests import READY_WAIT

pytestmark = pytest.mark.fast


class NeverLive(MemoryDatabase):
    """A database whose change stream never catches up: the feed never becomes live."""

    async def watch(self, resume_after: str | None) -> AsyncGenerator[Change | CaughtUp, None]:
        await asyncio.Event().wait()
        yield CaughtUp("m:0")  # never reached


async def _timed_read(url: str) -> tuple[float, int, str]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/orders") as response:
        body = await response.json()
    return loop.time() - started, response.status, body["error"]["code"]


async def _timed_subscribe(url: str) -> tuple[float, dict[str, object]]:
    listener = await Listener(url).connect()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        ack: dict[str, object] = await listener.sio.call("subscribe", {"status": "pending"}, timeout=20)
        return loop.time() - started, ack
    finally:
        await listener.close()


async def test_rest_and_socketio_wait_the_same_ready_wait_for_a_feed_that_is_not_live() -> None:
    service = Service(settings_for("memory://"))
    service.source = NeverLive().source()
    await service.start()
    try:
        (read_wait, status, code), (subscribe_wait, ack) = await asyncio.gather(
            _timed_read(service.url), _timed_subscribe(service.url)
        )
    finally:
        await service.stop()
    assert (status, code) == (503, "unavailable")
    assert ack["ok"] is False and isinstance(ack["error"], dict) and ack["error"]["code"] == "unavailable", ack
    assert READY_WAIT - 0.1 <= read_wait < READY_WAIT + 2.5, read_wait
    assert READY_WAIT - 0.1 <= subscribe_wait < READY_WAIT + 2.5, subscribe_wait
