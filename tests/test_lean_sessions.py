"""Engine.IO sessions made leaner (``_engine_socket``): one task per WebSocket session, pings
from one wheel, a disconnect that walks only the client's own rooms, and a stop that tells
every client to reconnect. Fast tier: the manager and the wheel alone; the rest against a
service on the in-memory source, over real WebSockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import socketio
from socketio.base_manager import BaseManager

from conftest import running_service, settings_for, until
from orders_live.service import Service
from orders_live.transports.socketio._engine_socket import LeanManager, PingWheel

ENGINEIO_TASKS = ("_send_ping", "writer", "websocket_wait", "Queue.get")  # the library's per session


async def _manager_run(manager: Any) -> dict[str, Any]:
    """The same connects, room changes and disconnects (one in the middle of a mass
    disconnect, as at a stop) on a manager; what is left."""
    socketio.AsyncServer(client_manager=manager)
    manager.initialize()
    sids = [await manager.pre_connect(f"e{n}", "/") for n in range(6)]
    for sid in sids[1:]:
        await manager.connect(sid, "/")  # the first stays pending (never accepted)
    manager.basic_enter_room(sids[0], "/", "staff")
    manager.basic_enter_room(sids[1], "/", "staff")
    manager.basic_leave_room(sids[1], "/", "staff")
    for sid in sids[:4]:
        manager.pre_disconnect(sid, "/")
    for sid in sids[:4]:
        manager.basic_disconnect(sid, "/")
    return {
        "rooms": {
            room if room in (None, "staff") else "own": len(members) for room, members in manager.rooms["/"].items()
        },
        "pending": {ns: list(p) for ns, p in manager.pending_disconnect.items()},
        "connected": [manager.is_connected(sid, "/") for sid in sids],
    }


@pytest.mark.fast
async def test_the_lean_manager_leaves_the_same_state_as_the_librarys() -> None:
    ours, theirs = await _manager_run(LeanManager()), await _manager_run(socketio.AsyncManager())
    assert ours == theirs
    assert ours["connected"] == [False] * 4 + [True] * 2  # the disconnects happened
    assert "staff" not in ours["rooms"]  # its only member left: the room is gone


@pytest.mark.fast
async def test_a_disconnect_walks_only_the_clients_own_rooms() -> None:
    manager = LeanManager()
    socketio.AsyncServer(client_manager=manager)
    manager.initialize()
    sids = [BaseManager.pre_connect(manager, f"e{n}", "/") for n in range(50)]
    walked: list[Any] = []

    class Rooms(dict[Any, Any]):  # records every walk over all the namespace's rooms
        def copy(self) -> Any:
            walked.append("copy")
            return super().copy()

        def items(self) -> Any:
            walked.append("items")
            return super().items()

    manager.rooms["/"] = Rooms(manager.rooms["/"])
    manager.pre_disconnect(sids[7], "/")
    manager.basic_disconnect(sids[7], "/")
    assert walked == []
    assert sids[7] not in manager.rooms["/"] and sids[8] in manager.rooms["/"]
    assert manager.pending_disconnect == {}


class FakeSession:
    def __init__(self, pinged: list[int], n: int) -> None:
        self.pinged, self.n = pinged, n

    def ping(self) -> None:
        self.pinged.append(self.n)


@pytest.mark.fast
async def test_the_wheel_pings_each_session_once_an_interval_after_it_was_scheduled_in_order() -> None:
    wheel = PingWheel(0.05)
    pinged: list[int] = []
    running = asyncio.create_task(wheel.run())
    try:
        for n in range(5):
            wheel.schedule(FakeSession(pinged, n))  # type: ignore[arg-type]
        assert pinged == []  # not before the interval
        await until(lambda: len(pinged) == 5, within=5, what="every session's ping")
        assert pinged == [0, 1, 2, 3, 4]
        wheel.schedule(FakeSession(pinged, 9))  # type: ignore[arg-type]  # after an idle spell
        await until(lambda: len(pinged) == 6, within=5, what="a ping scheduled later")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


@pytest_asyncio.fixture
async def memory_service() -> AsyncIterator[Service]:
    async with running_service(settings_for("memory://")) as running:
        yield running


async def _subscribed(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    """A raw Engine.IO WebSocket client, connected and subscribed to every order."""
    ws = await http.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket", autoping=False)
    assert (await ws.receive_str()).startswith("0{")
    await ws.send_str("40")
    assert (await ws.receive_str()).startswith("40")
    await ws.send_str('420["subscribe",{}]')
    while not (await ws.receive_str()).startswith("430"):
        pass
    return ws


def _library_session_tasks() -> list[str]:
    names = [task.get_coro().__qualname__ for task in asyncio.all_tasks()]  # type: ignore[union-attr]
    return [name for name in names if name.endswith(ENGINEIO_TASKS)]


@pytest.mark.fast
@pytest.mark.socketio
async def test_a_websocket_session_runs_no_task_of_the_librarys_own(memory_service: Service) -> None:
    assert memory_service.gateway is not None
    if not memory_service.gateway.engine.direct:
        pytest.skip("the libraries' own path runs the library's sessions")
    async with aiohttp.ClientSession() as http:
        clients = [await _subscribed(http, memory_service.url) for _ in range(5)]
        assert len(memory_service.gateway.connection_per_sid) == 5
        assert _library_session_tasks() == []
        for ws in clients:
            await ws.close()


@pytest.mark.fast
@pytest.mark.socketio
async def test_a_client_that_answers_pings_stays_and_one_that_does_not_is_closed(memory_service: Service) -> None:
    gateway = memory_service.gateway
    assert gateway is not None
    if gateway.engine.pings is None:
        pytest.skip("the libraries' own path pings the library's way")
    gateway.engine.pings.interval = 0.1  # pings every 0.1 s, and 0.3 s to answer
    gateway.sio.eio.ping_timeout = 0.3
    async with aiohttp.ClientSession() as http:
        answering, silent = await _subscribed(http, memory_service.url), await _subscribed(http, memory_service.url)
        pings = 0
        while pings < 5:  # five rounds: the silent one is long past its timeout
            message = await answering.receive_str(timeout=5)
            if message == "2":
                pings += 1
                await answering.send_str("3")
        await until(lambda: len(gateway.connection_per_sid) == 1, within=10, what="the silent client to be closed")
        seen = [message async for message in silent]
        assert "2" in [m.data for m in seen if m.type == aiohttp.WSMsgType.TEXT]  # it was pinged, and said nothing
        assert not answering.closed
        await answering.close()


@pytest.mark.fast
@pytest.mark.socketio
async def test_a_stop_closes_every_websocket_with_1012_and_refuses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    service = Service(settings_for("memory://"))
    await service.start()
    assert service.hub is not None and service.gateway is not None
    await service.hub.wait_ready(10)
    direct = service.gateway.engine.direct
    async with aiohttp.ClientSession() as http:
        clients = [await _subscribed(http, service.url) for _ in range(5)]
        with caplog.at_level(logging.INFO):
            await service.stop()
        for ws in clients:
            while (message := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                pass
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            if direct:
                assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1012)  # service restart: come back
    assert [r.getMessage() for r in caplog.records if "refused" in r.getMessage()] == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and "event loop" not in r.getMessage()] == []
