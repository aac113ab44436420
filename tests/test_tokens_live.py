"""Fast tier: tokens on live connections, against a service on the in-memory database in JWT
mode. A token is refreshed in-band without touching the subscriptions; one that expires ends
its Socket.IO connection (``token_expired``, within the grace) and its event streams (at
``exp``); a revoked one ends them within a second and is refused afterwards; stream tickets
are single-use; a client with a token provider stays live across expiries and rejoins after
one with every subscription live; connections and writes count per identity."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from conftest import running_service, settings_for, sse_events, until
from orders_live.client.live_orders import LiveOrders
from orders_live.domain.order import OrderCreate
from orders_live.identity.minting import mint_token
from orders_live.service import Service

pytestmark = [pytest.mark.fast, pytest.mark.slow]  # tokens live a few seconds here: time is what is tested

SECRET = "a-test-secret-of-at-least-32-characters"


def token(role: Any = "viewer", sub: str = "viewer:1", customer: str | None = None, ttl: float = 600) -> str:
    return mint_token(role, sub=sub, customer=customer, ttl=ttl, secret=SECRET)


def expired(sub: str = "viewer:1") -> str:
    return mint_token("viewer", sub=sub, secret=SECRET, extra={"exp": int(time.time()) - 10})


def staff() -> dict[str, str]:
    """A staff bearer minted now: a token minted when the module is collected would run out
    before these tests run at the end of a long suite."""
    return {"Authorization": f"Bearer {token('staff', 'staff:1')}"}


@pytest.fixture
def revoked(tmp_path: Path) -> Path:
    path = tmp_path / "revoked.txt"
    path.write_text("# nobody yet\n")
    return path


@pytest.fixture
async def jwt_service(revoked: Path) -> AsyncIterator[Service]:
    settings = settings_for(
        "memory://",
        jwt_secret=SECRET,
        token_grace=0.5,
        revoked=revoked,
        max_connections_per_identity=3,
        write_rate=5.0,
    )
    async with running_service(settings) as running:
        yield running


class Client:
    """A python-socketio client that records events, and when it was disconnected."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[str, Any]] = []
        self.disconnected_at: float | None = None
        self.sio = socketio.AsyncClient(reconnection=False)
        for name in ("order_change", "order_changes", "token_expired", "token_revoked", "snapshot"):
            self.sio.on(name, self._recorder(name))
        self.sio.on("disconnect", self._gone)

    def _recorder(self, name: str) -> Callable[[Any], Any]:
        async def record(payload: Any = None) -> None:
            self.events.append((name, payload))

        return record

    async def _gone(self, *_: Any) -> None:
        self.disconnected_at = time.time()

    def names(self) -> list[str]:
        return [name for name, _ in self.events if name != "snapshot"]

    async def refusal(self, bearer: str) -> dict[str, Any]:
        """The server's connect_error for ``bearer``: {"message", "data": {"code"}}."""
        answers: list[Any] = []
        self.sio.on("connect_error", lambda data=None: answers.append(data))
        with pytest.raises(socketio.exceptions.ConnectionError):
            await self.sio.connect(self.url, transports=["websocket"], auth={"token": bearer})
        assert len(answers) == 1 and isinstance(answers[0], dict)
        return dict(answers[0])

    async def connect(self, bearer: str) -> Client:
        await self.sio.connect(self.url, transports=["websocket"], auth={"token": bearer})
        return self


async def create(service: Service, customer: str = "Ada") -> dict[str, Any]:
    async with aiohttp.ClientSession(headers=staff()) as session:
        body = {"customer_name": customer, "product_name": "Lamp"}
        async with session.post(f"{service.url}/api/orders", json=body) as response:
            assert response.status == 201, await response.text()
            order: dict[str, Any] = await response.json()
            return order


async def test_a_refresh_moves_the_expiry_and_keeps_the_subscriptions(jwt_service: Service) -> None:
    client = await Client(jwt_service.url).connect(token(ttl=2))
    try:
        assert (await client.sio.call("subscribe", {}, timeout=5))["ok"]
        fresh = token(ttl=600)
        ack = await client.sio.call("refresh_token", {"token": fresh}, timeout=5)
        assert ack["ok"] is True and ack["exp"] > time.time() + 500
        await past(time.time() + 2 + 0.5 + 0.5)  # the old token's exp and its grace
        order = await create(jwt_service)
        await until(lambda: any(p["id"] == order["id"] for n, p in client.events if n == "order_change"), within=3)
        assert client.disconnected_at is None and "token_expired" not in client.names()
    finally:
        await client.sio.disconnect()


@pytest.mark.parametrize(
    ("fresh", "code", "message"),
    [
        (
            lambda: token(sub="someone-else"),
            "forbidden",
            "a refreshed token must carry the same sub, role and customer",
        ),
        (lambda: token("staff", sub="viewer:1"), "forbidden", "a refreshed token must carry the same"),
        (lambda: "not a token", "unauthorized", "the token is not a JWT"),
        (lambda: expired(), "unauthorized", "the token has expired"),
    ],
    ids=["another-sub", "another-role", "garbage", "expired"],
)
async def test_a_refused_refresh_leaves_the_old_token_in_force(
    jwt_service: Service, fresh: Callable[[], str], code: str, message: str
) -> None:
    client = await Client(jwt_service.url).connect(token(ttl=600))
    try:
        assert (await client.sio.call("subscribe", {}, timeout=5))["ok"]
        ack = await client.sio.call("refresh_token", {"token": fresh()}, timeout=5)
        assert ack["ok"] is False and ack["error"]["code"] == code and message in ack["error"]["message"]
        order = await create(jwt_service)
        await until(lambda: any(p["id"] == order["id"] for n, p in client.events if n == "order_change"), within=3)
    finally:
        await client.sio.disconnect()


async def test_an_expired_token_ends_the_connection_within_the_grace(jwt_service: Service) -> None:
    expiring = token(ttl=2)
    exp = float(mint_exp(expiring))
    client = await Client(jwt_service.url).connect(expiring)
    assert (await client.sio.call("subscribe", {}, timeout=5))["ok"]
    await until(lambda: client.disconnected_at is not None, within=10, what="the server to end the connection")
    assert client.disconnected_at is not None
    assert [payload for name, payload in client.events if name == "token_expired"] == [
        {"exp": exp, "message": "the token expired"}
    ]
    assert exp <= client.disconnected_at <= exp + 5  # the bound; the grace here is 0.5 s
    assert await Client(jwt_service.url).refusal(expiring) == {
        "message": "the token has expired",
        "data": {"code": "unauthorized"},
    }


async def past(moment: float) -> None:
    """Until the clock passes ``moment``: what these tests check is what a token's lifetime
    running out does (or, after a refresh, does not do), so the wait is for time itself."""
    await asyncio.sleep(max(0.0, moment - time.time()))


def mint_exp(bearer: str) -> float:
    from orders_live.client.tokens import Tokens

    exp = Tokens.expiry(bearer)
    assert exp is not None
    return exp


async def test_an_event_stream_ends_at_exp_and_a_new_ticket_resumes_it_without_a_gap(jwt_service: Service) -> None:
    short = token("customer", "customer:Ada", customer="Ada", ttl=2)
    mine = await create(jwt_service, "Ada")
    async with aiohttp.ClientSession() as session:
        ticket = await stream_ticket(session, jwt_service, short)
        events: list[tuple[str, str | None, Any]] = []
        async with session.get(f"{jwt_service.url}/api/changes/stream?ticket={ticket}") as response:
            assert response.status == 200
            async for event in sse_events(response):
                events.append(event)
                if event[0] == "caught_up":
                    await create(jwt_service, "Bo")  # not Ada's: never on this stream
                    await create(jwt_service, "Ada")
        names = [name for name, _, _ in events if name != "comment"]
        assert names[-1] == "token_expired"
        last = [event_id for name, event_id, _ in events if event_id is not None][-1]
        during_the_gap = await create(jwt_service, "Ada")
        longer = token("customer", "customer:Ada", customer="Ada", ttl=600)
        ticket = await stream_ticket(session, jwt_service, longer)
        url = f"{jwt_service.url}/api/changes/stream?ticket={ticket}&since={last}"
        async with session.get(url) as response:
            replay = []
            async for name, _, data in sse_events(response):
                if name == "caught_up":
                    break
                if name == "order_change":
                    replay.append(data)
    assert [c["id"] for c in replay] == [during_the_gap["id"]]
    seen = [data["order"]["customer_name"] for name, _, data in events if name == "order_change"]
    assert seen == ["Ada"] and mine["customer_name"] == "Ada"


async def stream_ticket(session: aiohttp.ClientSession, service: Service, bearer: str) -> str:
    headers = {"Authorization": f"Bearer {bearer}"}
    async with session.post(f"{service.url}/api/stream-tickets", headers=headers) as response:
        assert response.status == 201, await response.text()
        body = await response.json()
        assert body["expires_in"] == 30
        return str(body["ticket"])


async def test_a_ticket_opens_one_stream_and_a_token_in_the_url_opens_none(jwt_service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        ticket = await stream_ticket(session, jwt_service, token())
        async with session.get(f"{jwt_service.url}/api/changes/stream?ticket={ticket}") as first:
            assert first.status == 200
            async with session.get(f"{jwt_service.url}/api/changes/stream?ticket={ticket}") as second:
                assert second.status == 401
                assert (await second.json())["error"]["message"].startswith("the stream ticket was already used")
        async with session.get(f"{jwt_service.url}/api/changes/stream?token={token()}") as response:
            assert response.status == 401
            assert (await response.json())["error"] == {
                "code": "unauthorized",
                "message": "a token is required",
                "fields": {},
            }
        async with session.get(f"{jwt_service.url}/api/changes/stream?ticket=forged.ticket") as response:
            assert response.status == 401


async def test_a_revoked_token_ends_its_connections_and_streams_within_a_second(
    jwt_service: Service, revoked: Path
) -> None:
    doomed = token("customer", "customer:Ada", customer="Ada")
    client = await Client(jwt_service.url).connect(doomed)
    other = await Client(jwt_service.url).connect(token())
    async with aiohttp.ClientSession() as session:
        ticket = await stream_ticket(session, jwt_service, doomed)
        async with session.get(f"{jwt_service.url}/api/changes/stream?ticket={ticket}") as response:
            names: list[str] = []
            async for name, _, _ in sse_events(response):
                names.append(name)
                if name == "caught_up":
                    await asyncio.to_thread(revoked.write_text, "customer:Ada\n")
                    started = time.time()
            ended = time.time()
        assert names[-1] == "token_revoked"
        assert ended - started < 1.0
        await until(lambda: client.disconnected_at is not None, within=2, what="the Socket.IO connection to end")
        assert client.disconnected_at is not None and client.disconnected_at - started < 1.0
        assert "token_revoked" in client.names()
        assert other.disconnected_at is None  # another identity is untouched
        assert (await Client(jwt_service.url).refusal(doomed))["message"] == "the token was revoked"
        async with session.get(f"{jwt_service.url}/api/orders", headers={"Authorization": f"Bearer {doomed}"}) as r:
            assert r.status == 401 and (await r.json())["error"]["message"] == "the token was revoked"
    await other.sio.disconnect()


async def test_a_client_with_a_provider_refreshes_in_band_and_stays_live(jwt_service: Service) -> None:
    minted: list[str] = []

    def provider() -> str:
        minted.append(token("customer", "customer:Ada", customer="Ada", ttl=2))
        return minted[-1]

    seen: list[Any] = []
    async with LiveOrders(jwt_service.url, token=provider, on_event=seen.append) as live:
        await live.wait_live(5)
        await past(time.time() + 4.5)  # two of the tokens' lifetimes
        assert len(minted) >= 3  # the first token and at least two refreshes
        order = await create(jwt_service, "Ada")
        await create(jwt_service, "Bo")
        await until(lambda: order["id"] in live.orders, within=3, what="the change after the refreshes")
        assert live.state == "live"
        assert [e.kind for e in seen] == ["snapshot", "change"]  # never a reconnect, never a resync
        assert [o["customer_name"] for o in live.orders.values()] == ["Ada"]


async def test_a_client_whose_token_ran_out_rejoins_with_a_fresh_one_and_every_subscription_is_live(
    jwt_service: Service,
) -> None:
    """The failure Supabase's users report most: after a rejoin with an expired token, nothing
    arrives. Here the provider has nothing newer until the token has run out."""
    first = token("customer", "customer:Ada", customer="Ada", ttl=2)
    tokens = [first]

    def provider() -> str:
        return tokens[-1]

    async with (
        LiveOrders(jwt_service.url, token=provider) as live,
        LiveOrders(jwt_service.url, token=provider, status="pending") as pending,
    ):
        await live.wait_live(5)
        await pending.wait_live(5)
        await until(lambda: live.state != "live" and pending.state != "live", within=10, what="the expiry")
        missed = await create(jwt_service, "Ada")  # while both are away
        tokens.append(token("customer", "customer:Ada", customer="Ada", ttl=600))
        await live.wait_live(10)
        await pending.wait_live(10)
        after = await create(jwt_service, "Ada")
        await until(lambda: {missed["id"], after["id"]} <= set(live.orders), within=3, what="both subscriptions")
        await until(lambda: {missed["id"], after["id"]} <= set(pending.orders), within=3)


async def test_connections_count_per_identity_before_the_shared_budget(jwt_service: Service) -> None:
    ada = token("customer", "customer:Ada", customer="Ada")
    held = [await Client(jwt_service.url).connect(ada) for _ in range(3)]
    try:
        assert await Client(jwt_service.url).refusal(ada) == {
            "message": "this identity has 3 connections open already",
            "data": {"code": "too_many_connections"},
        }
        async with aiohttp.ClientSession() as session:
            ticket = await stream_ticket(session, jwt_service, ada)
            async with session.get(f"{jwt_service.url}/api/changes/stream?ticket={ticket}") as response:
                assert response.status == 429
                assert (await response.json())["error"]["code"] == "too_many_connections"
        someone_else = await Client(jwt_service.url).connect(token())
        await someone_else.sio.disconnect()
        await held.pop().sio.disconnect()
        await until(lambda: jwt_service.authenticator is not None and len(jwt_service.gateway.connection_per_sid) == 2)
        held.append(await Client(jwt_service.url).connect(ada))  # a slot came back
    finally:
        for client in held:
            await client.sio.disconnect()


async def test_writes_count_per_identity(jwt_service: Service) -> None:
    async with aiohttp.ClientSession(headers=staff()) as session:
        statuses = []
        for _ in range(15):  # the burst is 10 (write_rate 5)
            body = {"customer_name": "Ada", "product_name": "Lamp"}
            async with session.post(f"{jwt_service.url}/api/orders", json=body) as response:
                statuses.append(response.status)
        assert statuses[0] == 201 and statuses[-1] == 429
        other = {"Authorization": f"Bearer {token('staff', 'staff:2')}"}
        async with session.post(f"{jwt_service.url}/api/orders", json=body, headers=other) as response:
            assert response.status == 201  # another identity has its own budget


@pytest.mark.parametrize(("role", "status"), [("agent", 201), ("staff", 403), ("customer", 403), ("viewer", 403)])
async def test_only_the_agent_appends_to_the_action_log(jwt_service: Service, role: Any, status: int) -> None:
    order = await create(jwt_service, "Ada")
    bearer = token(role, f"{role}:1", customer="Ada" if role == "customer" else None)
    record = {"kind": "no_action", "trigger": "shipped", "order_id": order["id"], "reason": "nothing to do"}
    headers = {"Authorization": f"Bearer {bearer}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(f"{jwt_service.url}/api/agent/actions", json=record) as response,
    ):
        assert response.status == status, await response.text()
        body = await response.json()
    if status == 201:
        assert body["customer_name"] == "Ada"  # set by the service, from the feed
    else:
        assert body["error"]["code"] == "forbidden"


async def test_a_revoked_stream_that_stopped_reading_is_closed_within_a_second(
    jwt_service: Service, revoked: Path
) -> None:
    """The stream cannot write its last event to a client that reads nothing: its socket is
    closed anyway."""
    doomed = token("viewer", "viewer:stalled")
    async with aiohttp.ClientSession() as session:
        ticket = await stream_ticket(session, jwt_service, doomed)
    host, port = jwt_service.settings.host, jwt_service.port
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        request = f"GET /api/changes/stream?ticket={ticket} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
        await loop.sock_sendall(sock, request.encode())
        streams = jwt_service.streams
        assert streams is not None and jwt_service.source is not None
        await until(lambda: streams.streams == 1, within=5, what="the stream to open")
        for n in range(8_000):  # far more than the socket buffers hold: the stream's writes stall
            await jwt_service.source.store.create(OrderCreate(customer_name=f"C{n}", product_name="x" * 100))
            if n % 20 == 0:
                await asyncio.sleep(0)  # let the feed fan out as it goes, not in one batch of all of them
        conflating = {"outcome": "conflated"}  # the stream's queue is full: it is stalled
        await until(
            lambda: (jwt_service.registry.get_sample_value("orders_live_slow_clients_total", conflating) or 0) > 0,
            within=10,
            what="the stream to stall",
        )
        await asyncio.to_thread(revoked.write_text, "viewer:stalled\n")
        started = time.monotonic()
        await until(lambda: streams.streams == 0, within=3, what="the revoked stream to be closed")
        assert time.monotonic() - started < 1.5  # the file is looked at every 0.25 s, then 1 s at most


async def test_a_stream_whose_client_left_gives_its_slots_back_within_a_second_or_two(jwt_service: Service) -> None:
    """A quiet stream is not written to for up to a keep-alive (15 s): it must not hold its
    identity's connection slots that long after its client left (EventSource reconnects)."""
    ada = token("customer", "customer:Ada", customer="Ada")
    streams = jwt_service.streams
    assert streams is not None
    async with aiohttp.ClientSession() as session:
        for _ in range(5):  # more than the identity's 3 slots, one after the other
            ticket = await stream_ticket(session, jwt_service, ada)
            async with session.get(f"{jwt_service.url}/api/changes/stream?ticket={ticket}") as response:
                assert response.status == 200
                async for name, _, _ in sse_events(response):
                    if name == "caught_up":
                        break
            await until(lambda: streams.streams == 0, within=3, what="the left stream to end")
