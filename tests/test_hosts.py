"""Fast tier: the Host a request names must be one this service answers for (421 otherwise,
before any handler: a page that rebinds its DNS name to this machine gets nothing), and with no
tokens configured, only this machine may write."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
import pytest_asyncio

from conftest import running_service, settings_for
from orders_live.service import Service
from orders_live.transports.access import is_loopback
from orders_live.transports.http.host_guard import AllowedHosts

pytestmark = pytest.mark.fast

ORDER = {"customer_name": "Ada", "product_name": "Lamp"}
UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}
UPGRADE["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="


def machine_address() -> str | None:
    """An IPv4 address of this machine other than loopback (a peer that is not loopback)."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


@pytest.fixture
def frontend(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>orders</title>")
    (tmp_path / "assets" / "app.js").write_text("console.log('orders')")
    return tmp_path


@pytest_asyncio.fixture
async def local(frontend: Path) -> AsyncIterator[Service]:
    async with running_service(settings_for("memory://", frontend_dir=frontend)) as service:
        yield service


async def orders_held(service: Service) -> int:
    assert service.source is not None
    return len([row async for chunk in service.source.store.index_rows() for row in chunk])


async def call(
    url: str, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, str, dict[str, Any] | None]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{url}{path}", headers=headers, json=body) as response,
    ):
        text = await response.text()
        is_json = response.content_type == "application/json"
        return response.status, text, (await response.json()) if is_json else None


@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        ("POST", "/api/orders", {}),  # the reproduction: 201 before
        ("GET", "/api/orders", {}),
        ("GET", "/api/changes/stream", {"Accept": "text/event-stream"}),  # SSE
        ("GET", "/api/changes?since=memory:0", {}),  # polling
        ("GET", "/socket.io/?EIO=4&transport=websocket", UPGRADE),  # the Socket.IO upgrade
        ("GET", "/socket.io/?EIO=4&transport=polling", {}),
        ("GET", "/", {}),  # the dashboard
        ("GET", "/assets/app.js", {}),  # static files
        ("GET", "/healthz", {}),
        ("GET", "/no/such/path", {}),  # before routing: not a 404
    ],
)
async def test_a_request_naming_another_host_is_refused_with_421(
    local: Service, method: str, path: str, extra: dict[str, str]
) -> None:
    evil = f"evil.test:{local.port}"
    headers = {"Host": evil, "Origin": f"http://{evil}", **extra}
    status, _, body = await call(local.url, method, path, headers, ORDER if method == "POST" else None)
    assert status == 421
    assert body is not None and body["error"]["code"] == "host_not_allowed"
    assert await orders_held(local) == 0


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "localhost", "[::1]:{port}", "localhost:5173"]
)
async def test_the_bind_address_and_localhost_names_are_accepted_by_default(local: Service, host: str) -> None:
    """Any port: a local front (nginx, Vite's dev proxy) passes its own port along."""
    named = host.format(port=local.port)
    headers = {"Host": named, "Origin": f"http://{named}"}
    status, text, _ = await call(local.url, "POST", "/api/orders", headers, ORDER)
    assert status == 201, text
    status, text, _ = await call(local.url, "GET", "/assets/app.js", {"Host": named})
    assert status == 200 and "orders" in text


async def test_a_star_accepts_any_host() -> None:
    async with running_service(settings_for("memory://", allowed_hosts=["*"])) as service:
        evil = f"evil.test:{service.port}"
        status, _, _ = await call(service.url, "POST", "/api/orders", {"Host": evil, "Origin": f"http://{evil}"}, ORDER)
        assert status == 201


async def test_listed_hosts_replace_the_bind_address_and_keep_the_localhost_names() -> None:
    settings = settings_for("memory://", allowed_hosts=["Orders.Example", "ops.example:8443"])
    async with running_service(settings) as service:
        for host, status in [
            ("orders.example", 200),
            ("orders.example:8080", 200),
            ("ops.example:8443", 200),
            ("ops.example:8444", 421),
            ("ops.example", 421),
            ("evil.test", 421),
            (f"localhost:{service.port}", 200),  # local health checks keep working
        ]:
            assert (await call(service.url, "GET", "/api/orders", {"Host": host}))[0] == status, host


def test_host_values_are_parsed_as_a_name_and_a_port() -> None:
    allowed = AllowedHosts([], "127.0.0.1")
    assert allowed.allows("127.0.0.1:8080") and allowed.allows("localhost.:8080") and allowed.allows("[::1]")
    assert allowed.allows(None)  # no Host header: not a browser (every browser sends one)
    for refused in ["127.0.0.1.evil.test", "localhost:80:80", "localhost:x", "[::1", "", "evil.test:8080", "::1"]:
        assert not allowed.allows(refused), refused
    wildcard = AllowedHosts([], "0.0.0.0", machine_name="box")
    for accepted in ["box:8080", "192.0.2.7:8080", "[2001:db8::1]:8080", "localhost"]:
        assert wildcard.allows(accepted), accepted
    assert not wildcard.allows("evil.test:8080")
    assert AllowedHosts([], "::").allows("10.1.2.3")
    assert AllowedHosts([], "10.0.0.5").allows("10.0.0.5:8080") and not AllowedHosts([], "10.0.0.5").allows("10.0.0.6")


def test_loopback_peers() -> None:
    for address in ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"]:
        assert is_loopback(address), address
    for address in ["192.0.2.2", "::ffff:192.0.2.2", "2001:db8::1", "", None, "not an address"]:
        assert not is_loopback(address), address


@pytest.fixture
def address() -> str:
    found = machine_address()
    if found is None:
        pytest.skip("this machine has no address but loopback")
    return found


async def test_with_no_tokens_a_peer_that_is_not_loopback_may_read_but_not_write(address: str) -> None:
    async with running_service(settings_for("memory://", host="0.0.0.0")) as service:
        remote = f"http://{address}:{service.port}"
        status, _, body = await call(remote, "POST", "/api/orders", {}, ORDER)
        assert status == 403
        assert body is not None and body["error"]["code"] == "remote_writes_off"
        action = {"kind": "no_action", "trigger": "order_created", "order_id": 1, "reason": "nothing to do"}
        status, _, body = await call(remote, "POST", "/api/agent/actions", {}, action)
        assert status == 403 and body is not None and body["error"]["code"] == "remote_writes_off"
        status, _, body = await call(remote, "PATCH", "/api/orders/1", {}, {"status": "shipped"})
        assert status == 403 and body is not None and body["error"]["code"] == "remote_writes_off"
        assert await orders_held(service) == 0
        assert (await call(remote, "GET", "/api/orders", {}))[0] == 200  # reads stay open
        assert (await call(f"http://127.0.0.1:{service.port}", "POST", "/api/orders", {}, ORDER))[0] == 201


async def test_remote_writes_or_a_write_token_let_a_remote_peer_write(address: str) -> None:
    async with running_service(settings_for("memory://", host="0.0.0.0", remote_writes=True)) as service:
        assert (await call(f"http://{address}:{service.port}", "POST", "/api/orders", {}, ORDER))[0] == 201
    async with running_service(settings_for("memory://", host="0.0.0.0", write_token="w" * 16)) as service:
        remote = f"http://{address}:{service.port}"
        assert (await call(remote, "POST", "/api/orders", {}, ORDER))[0] == 401
        bearer = {"Authorization": f"Bearer {'w' * 16}"}
        assert (await call(remote, "POST", "/api/orders", bearer, ORDER))[0] == 201
