"""Hostile Socket.IO clients cost the service little: sockets that do not connect are closed, a
refused connect hears why and is closed, guessed tokens are throttled and logged in summary,
every socket counts against max_connections, and one connection's work is bounded (one
snapshot at a time, the cap counting subscribes in flight, answers it leaves unread, a
disconnect cancelling what it asked for). Raw sockets stand for the hostile clients."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import socketio

from conftest import running_service, settings_for, until
from orders_live.client.lean_socketio import LeanSocketIO
from orders_live.domain.order import OrderCreate
from orders_live.identity import refusal_throttle
from orders_live.service import Service

pytestmark = [pytest.mark.fast, pytest.mark.socketio]

READ = "read-secret-1"
WITHIN = 10.0
UNREAD_ANSWERS = 64  # answers a connection may leave unread (docs/protocol.md)


def engine_url(service: Service, transport: str = "websocket") -> str:
    return f"{service.url}/socket.io/?EIO=4&transport={transport}"


async def texts_until_closed(ws: aiohttp.ClientWebSocketResponse, within: float = WITHIN) -> list[str]:
    """Every text frame the server sends until it closes the socket (fails after ``within`` s)."""
    received = []
    async with asyncio.timeout(within):
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                received.append(message.data)
    return received


async def opened(http: aiohttp.ClientSession, service: Service) -> aiohttp.ClientWebSocketResponse:
    """A raw Engine.IO WebSocket, its open packet read; nothing sent."""
    ws = await http.ws_connect(engine_url(service))
    first = await ws.receive(timeout=5)
    assert first.type == aiohttp.WSMsgType.TEXT and first.data.startswith("0{"), first
    return ws


async def connect_error(http: aiohttp.ClientSession, service: Service, token: str) -> dict[str, Any]:
    """A Socket.IO connect with ``token`` on a socket of its own: its connect_error (the socket
    then closes)."""
    ws = await opened(http, service)
    await ws.send_str("40" + json.dumps({"token": token}))
    texts = await texts_until_closed(ws)
    refusals = [json.loads(text[2:]) for text in texts if text.startswith("44")]
    assert len(refusals) == 1, texts
    return dict(refusals[0])


@pytest_asyncio.fixture
async def locked() -> AsyncIterator[Service]:
    async with running_service(settings_for("memory://", read_token=READ, auth_timeout=0.5)) as service:
        yield service


# -- sessions that do not authenticate do not stay --------------------------------------------
async def test_a_websocket_that_never_connects_is_closed_after_auth_timeout(locked: Service) -> None:
    assert locked.gateway is not None
    async with aiohttp.ClientSession() as http:
        ws = await opened(http, locked)
        assert await texts_until_closed(ws, within=5) in ([], ["1"])  # at most Engine.IO's CLOSE
    await until(lambda: locked.gateway is not None and len(locked.gateway.engine_sessions) == 0, what="no session")
    assert locked.gateway.budget.open == 0
    assert locked.gateway.engine_sessions.timed_out == 1


async def test_a_long_polling_session_that_never_connects_is_closed_after_auth_timeout(locked: Service) -> None:
    assert locked.gateway is not None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WITHIN)) as http:
        async with http.get(engine_url(locked, "polling")) as response:
            sid = json.loads((await response.text())[1:])["sid"]
        async with http.get(f"{engine_url(locked, 'polling')}&sid={sid}") as response:
            assert await response.text() == "1"  # Engine.IO's CLOSE, long before its first ping (25 s)
    await until(lambda: locked.gateway is not None and locked.gateway.budget.open == 0, what="the slot freed")


async def test_a_socket_left_open_after_its_socketio_disconnect_is_closed_too() -> None:
    async with (
        running_service(settings_for("memory://", auth_timeout=0.5)) as service,
        aiohttp.ClientSession() as http,
    ):
        ws = await opened(http, service)
        await ws.send_str("40")
        connected = await ws.receive(timeout=5)
        assert connected.type == aiohttp.WSMsgType.TEXT and connected.data.startswith("40{"), connected
        await ws.send_str("41")  # Socket.IO's disconnect; the socket itself stays open
        await texts_until_closed(ws, within=5)
        assert service.gateway is not None and service.gateway.connection_per_sid == {}


async def test_a_refused_connect_hears_why_then_its_socket_closes(locked: Service) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await opened(http, locked)
        await ws.send_str("40" + json.dumps({"token": "nope"}))
        texts = await texts_until_closed(ws, within=5)
    assert texts[0] == "44" + json.dumps(
        {"message": "this token does not allow reads", "data": {"code": "forbidden"}}, separators=(",", ":")
    )
    assert texts[1:] in ([], ["1"])


async def test_guessed_tokens_from_one_address_are_throttled_and_logged_in_summary(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refusal_throttle, "SUMMARY_EVERY", 1.0)
    attempts = 100
    caplog.set_level(logging.INFO)
    async with (
        running_service(settings_for("memory://", read_token=READ)) as service,
        aiohttp.ClientSession() as http,
    ):
        answers = await asyncio.gather(*(connect_error(http, service, f"guess-{n}") for n in range(attempts)))
        codes = [answer["data"]["code"] for answer in answers]
        checked = codes.count("forbidden")
        assert refusal_throttle.FREE_REFUSALS <= checked < refusal_throttle.FREE_REFUSALS + 8, codes
        assert codes.count("rate_limited") == attempts - checked
        throttled = next(answer for answer in answers if answer["data"]["code"] == "rate_limited")
        assert throttled["data"]["retry_after"] >= 1
        assert throttled["message"].startswith("too many refused attempts; try again in")

        def logged() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.levelno >= logging.WARNING and "127.0.0.1" in r.getMessage() and "refused" in r.getMessage()
            ]

        def counted() -> int:
            more = [re.match(r"refused (\d+) more connects from 127\.0\.0\.1", line) for line in logged()]
            return sum(int(match.group(1)) if match else 1 for match in more)

        await until(lambda: counted() == attempts, within=5, what="every refusal in the summaries")
        lines = logged()
        assert lines[0] == "refused a connect from 127.0.0.1: this token does not allow reads"
        assert "too many refused attempts: " in " ".join(lines[1:])
        assert len(lines) <= 10  # one at once, then one per interval (of 1 s here): not one per attempt

        # A good token from that address waits its turn, or is told when to come back.
        client = socketio.AsyncClient(reconnection=False)
        refusals: list[Any] = []
        client.on("connect_error", refusals.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(service.url, transports=["websocket"], auth={"token": READ}, wait_timeout=5)
        assert refusals[0]["data"]["code"] == "rate_limited"


def test_the_turns_of_an_address_are_spaced_more_with_each_refusal_up_to_a_cap() -> None:
    throttle = refusal_throttle.RefusalThrottle()
    free = refusal_throttle.FREE_REFUSALS
    delays = [throttle.delay(refusals) for refusals in range(free + 12)]
    assert delays[:free] == [0.0] * free
    assert delays[free : free + 4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[-1] == refusal_throttle.MAX_DELAY


async def test_an_address_is_forgotten_after_a_quiet_while_and_success_resets_nothing() -> None:
    now = [1000.0]
    throttle = refusal_throttle.RefusalThrottle(max_wait=1.0, clock=lambda: now[0])
    for _ in range(refusal_throttle.FREE_REFUSALS + 3):
        throttle.refused("203.0.113.7", "wrong token")
    with pytest.raises(refusal_throttle.Throttled) as throttled:
        await throttle.turn("203.0.113.7")
    assert throttled.value.retry_after == 4.0
    await throttle.turn("198.51.100.1")  # another address is not held up
    now[0] += 4.0
    await throttle.turn("203.0.113.7")  # its turn came (a right token would now be let in)
    with pytest.raises(refusal_throttle.Throttled):
        await throttle.turn("203.0.113.7")  # and the next one is spaced all the same
    now[0] += refusal_throttle.FORGET_AFTER + 1
    await throttle.turn("203.0.113.7")
    throttle.close()


async def test_sockets_that_have_not_connected_count_against_max_connections() -> None:
    settings = settings_for("memory://", max_connections=3, auth_timeout=30)
    async with running_service(settings) as service, aiohttp.ClientSession() as http:
        idle = [await opened(http, service) for _ in range(3)]
        client = socketio.AsyncClient(reconnection=False)
        refusals: list[Any] = []
        client.on("connect_error", refusals.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(service.url, transports=["websocket"], wait_timeout=5)
        assert refusals == [{"message": "the server is full", "data": {"code": "too_many_connections"}}]
        async with http.get(f"{service.url}/api/changes/stream") as response:
            assert response.status == 503
            assert (await response.json())["error"]["code"] == "too_many_connections"
        await idle[0].close()
        await until(lambda: service.gateway is not None and service.gateway.budget.open == 2, what="a slot freed")
        await client.connect(service.url, transports=["websocket"], wait_timeout=5)
        assert client.connected
        await client.disconnect()
        for ws in idle[1:]:
            await ws.close()


# -- work per connection is bounded -----------------------------------------------------------
@pytest_asyncio.fixture
async def stocked() -> AsyncIterator[Service]:
    """An open service whose snapshot of every order is far more than a stalled socket holds."""
    settings = settings_for("memory://", max_subscriptions=3, socket_send_buffer=4096)
    async with running_service(settings) as service:
        assert service.source is not None
        for n in range(3000):
            await service.source.store.create(OrderCreate(customer_name=f"Customer {n}", product_name="Lamp"))
        assert service.hub is not None
        hub = service.hub
        await until(lambda: len(hub.index) == 3000, what="the orders in the index")
        yield service


def rooms_of(service: Service, sid: str) -> int:
    """Subscriptions of the client ``sid`` that the hub holds (live, or being snapshotted)."""
    assert service.hub is not None
    return sum(1 for s in service.hub.rooms if getattr(getattr(s.sink, "connection", None), "sid", None) == sid)


async def stalled_client(service: Service) -> tuple[LeanSocketIO, str]:
    """A client that reads nothing (a tiny receive buffer), and its Socket.IO sid."""
    assert service.gateway is not None
    known = set(service.gateway.connection_per_sid)
    client = LeanSocketIO(service.url, receive_buffer=2048)
    await client.connect()
    (sid,) = set(service.gateway.connection_per_sid) - known
    return client, sid


async def test_one_snapshot_at_a_time_and_subscribes_in_flight_count_against_the_cap(stocked: Service) -> None:
    gateway = stocked.gateway
    assert gateway is not None
    client, sid = await stalled_client(stocked)
    connection = gateway.connection_per_sid[sid]
    for status in (None, "pending", "shipped", "delivered", "cancelled", "returned"):
        client.emit("subscribe", {"status": status} if status else {})
    await until(lambda: len(connection.in_flight) == 3, what="three subscribes in flight")
    await until(lambda: connection.queue.replies_waiting >= 3, what="the refusals past the cap queued")
    assert rooms_of(stocked, sid) == 1  # the first one's snapshot; the others wait their turn
    assert len(connection.in_flight) == 3 and connection.subscriptions == {}
    await client.close()
    await until(lambda: len(gateway.subscribes_in_flight) == 0, what="the subscribes in flight cancelled")
    assert rooms_of(stocked, sid) == 0


async def test_a_disconnect_cancels_the_subscribes_being_answered_at_once(stocked: Service) -> None:
    gateway = stocked.gateway
    assert gateway is not None
    client, sid = await stalled_client(stocked)
    client.emit("subscribe", {})
    client.emit("subscribe", {"status": "pending"})
    await until(lambda: len(gateway.subscribes_in_flight) == 2, what="two subscribes in flight")
    await until(lambda: rooms_of(stocked, sid) == 1, what="the first snapshot under way")
    await client.close()
    await until(lambda: len(gateway.subscribes_in_flight) == 0, within=1.5, what="both cancelled")
    assert rooms_of(stocked, sid) == 0


async def test_an_unsubscribe_cancels_its_subscribe_still_in_flight(stocked: Service) -> None:
    gateway = stocked.gateway
    assert gateway is not None
    client, sid = await stalled_client(stocked)
    connection = gateway.connection_per_sid[sid]
    client.emit("subscribe", {})
    client.emit("subscribe", {"status": "pending"})
    await until(lambda: len(connection.in_flight) == 2, what="two subscribes in flight")
    client.emit("unsubscribe", {})
    await until(lambda: len(connection.in_flight) == 1, what="the first one cancelled")
    await until(lambda: rooms_of(stocked, sid) == 1, what="the second one's snapshot under way")
    assert connection.subscriptions == {}
    await client.close()


async def test_a_client_that_asks_and_never_reads_the_answers_is_disconnected(stocked: Service) -> None:
    gateway = stocked.gateway
    assert gateway is not None
    client, sid = await stalled_client(stocked)
    client.emit("subscribe", {})  # its pages fill the socket: nothing after them is written
    await until(lambda: rooms_of(stocked, sid) == 1, what="the snapshot under way")
    for _ in range(UNREAD_ANSWERS + 1):
        client.emit("unsubscribe", {"status": "returned"})
    await until(lambda: sid not in gateway.connection_per_sid, what="the client disconnected")
    refused = stocked.registry.get_sample_value("orders_live_refused_packets_total", {"reason": "answers unread"})
    assert refused == 1
    await until(lambda: len(gateway.subscribes_in_flight) == 0, what="its subscribe cancelled and ended")
    await client.close()


async def test_guessed_tokens_throttle_their_own_address_only() -> None:
    """Another address, or another client forwarded by a trusted proxy, is not held back by one
    address's guesses (before, every client was ``127.0.0.1`` to the throttle: Engine.IO's
    aiohttp driver fixes ``REMOTE_ADDR``, so one guesser throttled everyone)."""
    async with (
        running_service(settings_for("memory://", read_token=READ)) as service,
        aiohttp.ClientSession() as http,
    ):
        guesses = range(refusal_throttle.FREE_REFUSALS + 20)
        answers = await asyncio.gather(*(connect_error(http, service, f"guess-{n}") for n in guesses))
        assert "rate_limited" in [answer["data"]["code"] for answer in answers]
        other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=other) as elsewhere:
            assert (await connect_error(elsewhere, service, "a-wrong-token"))["data"]["code"] == "forbidden"
        forwarded = {"X-Forwarded-For": "203.0.113.7"}
        async with aiohttp.ClientSession(headers=forwarded) as behind_nginx:
            assert (await connect_error(behind_nginx, service, "a-wrong-token"))["data"]["code"] == "forbidden"
        assert (await connect_error(http, service, "guess-again"))["data"]["code"] == "rate_limited"
