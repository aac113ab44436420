"""Access rules refuse what they should and allow what they should, over REST, Socket.IO and SSE."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import socketio

from conftest import running_service, settings_for
from orders_live.client.live_orders import LiveOrders
from orders_live.client.rest import OrdersClient
from orders_live.service import Service

pytestmark = [pytest.mark.database, pytest.mark.socketio]

READ, WRITE = "read-secret-1", "write-secret-2"


@pytest_asyncio.fixture
async def locked(database_url: str) -> AsyncIterator[Service]:
    settings = settings_for(
        database_url,
        read_token=READ,
        write_token=WRITE,
        allowed_origins=["https://ops.example"],
        max_connections=3,
        max_subscriptions=2,
        subscribe_rate=2.0,
    )
    async with running_service(settings) as service:
        yield service


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.mark.parametrize(
    ("method", "path", "token", "status"),
    [
        ("GET", "/api/orders", None, 401),
        ("GET", "/api/orders", "nope", 403),
        ("GET", "/api/orders", READ, 200),
        ("GET", "/api/orders", WRITE, 200),  # the write token reads too
        ("GET", "/api/changes?since=nx:0", READ, 200),
        ("POST", "/api/orders", None, 401),
        ("POST", "/api/orders", READ, 403),
        ("POST", "/api/orders", WRITE, 201),
        ("GET", "/healthz", None, 200),
        ("GET", "/metrics", None, 200),
    ],
)
async def test_rest_tokens(locked: Service, method: str, path: str, token: str | None, status: int) -> None:
    body = {"customer_name": "Ada", "product_name": "Lamp"} if method == "POST" else None
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, locked.url + path, json=body, headers=bearer(token)) as response,
    ):
        assert response.status == status
        if status >= 400:
            assert (await response.json())["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]


async def test_refusals_are_logged_without_the_token(locked: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{locked.url}/api/orders?token=leaked-wrong-token") as response,
    ):
        assert response.status == 403
    assert "refused read" in caplog.text
    assert "leaked-wrong-token" not in caplog.text


async def test_sse_takes_the_token_in_the_query(locked: Service) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{locked.url}/api/changes/stream") as response:
            assert response.status == 401
        async with session.get(f"{locked.url}/api/changes/stream?token={READ}") as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"


async def test_origins_outside_the_allow_list_are_refused(locked: Service) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {**bearer(READ), "Origin": "https://evil.example"}
        async with session.get(f"{locked.url}/api/orders", headers=headers) as response:
            assert response.status == 403
        headers["Origin"] = "https://ops.example"
        async with session.get(f"{locked.url}/api/orders", headers=headers) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "https://ops.example"


async def connect(service: Service, token: str | None, **options: Any) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        service.url, transports=["websocket"], auth={"token": token} if token else None, wait_timeout=5, **options
    )
    return client


async def test_socketio_needs_the_read_token(locked: Service) -> None:
    for token in (None, "nope"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(locked, token)
    client = await connect(locked, READ)
    try:
        assert (await client.call("subscribe", {}, timeout=5))["ok"] is True
    finally:
        await client.disconnect()


async def test_socketio_limits_subscriptions_rate_and_connections(locked: Service) -> None:
    clients = [await connect(locked, READ) for _ in range(3)]
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(locked, READ)  # the fourth is over the cap
        first = clients[0]
        answers = [
            await first.call("subscribe", payload, timeout=5)
            for payload in ({"status": "pending"}, {"status": "shipped"}, {"status": "delivered"})
        ]
        assert [a["ok"] for a in answers[:2]] == [True, True]
        assert answers[2]["error"]["code"] in ("too_many_subscriptions", "rate_limited")
        codes = {(await clients[1].call("subscribe", {}, timeout=5)).get("error", {}).get("code") for _ in range(15)}
        assert "rate_limited" in codes
    finally:
        for client in clients:
            await client.disconnect()
    async with aiohttp.ClientSession() as session, session.get(f"{locked.url}/metrics") as response:
        assert 'orders_live_connected_clients{transport="socketio"} 0' in await response.text()


async def test_cors_headers_reach_errors_and_event_streams_for_allowed_origins(locked: Service) -> None:
    headers = {"Origin": "https://ops.example"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{locked.url}/api/orders", headers=headers) as response:
            assert response.status == 401
            assert response.headers["Access-Control-Allow-Origin"] == "https://ops.example"
        async with session.get(f"{locked.url}/api/changes/stream?token={READ}", headers=headers) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "https://ops.example"


async def test_a_refused_connection_says_why(locked: Service) -> None:
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    client.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(locked.url, transports=["websocket"], auth={"token": "nope"}, wait_timeout=5)
    assert refusals == [{"message": "this token does not allow reads", "data": {"code": "forbidden"}}]


async def test_with_only_a_read_token_writes_need_it_too(database_url: str) -> None:
    body = {"customer_name": "Ada", "product_name": "Lamp"}
    async with (
        running_service(settings_for(database_url, read_token=READ)) as service,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{service.url}/api/orders", json=body) as response:
            assert response.status == 401
        async with session.post(f"{service.url}/api/orders", json=body, headers=bearer(READ)) as response:
            assert response.status == 201


async def test_the_cli_and_the_client_library_send_their_token(locked: Service) -> None:
    async with aiohttp.ClientSession() as session:
        created = await OrdersClient(locked.url, session, WRITE).create("Ada", "Lamp")
    async with LiveOrders(locked.url, token=READ) as live:
        await live.wait_live()
        assert list(live.orders) == [created["id"]]
