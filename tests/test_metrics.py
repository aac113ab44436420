"""Fast tier: metrics live in each service's own registry, under the names dashboards know;
/readyz fails while a background task is dead; /readyz says only ready or not to the public,
without a database round trip per call; the metrics token guards /metrics and /readyz's details."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp
import pytest

from conftest import running_service, settings_for, until
from orders_live.client.live_orders import LiveOrders
from orders_live.domain.order import OrderCreate
from orders_live.service import Service
from test_hosts import machine_address

pytestmark = pytest.mark.fast

# The families /metrics had before it moved to prometheus_client (dashboards depend on them).
KNOWN = {
    "orders_live_connected_clients": "gauge",
    "orders_live_subscriptions": "gauge",
    "orders_live_changes_in_total": "counter",
    "orders_live_changes_out_total": "counter",
    "orders_live_fanout_seconds": "histogram",
    "orders_live_change_stream_lag_seconds": "gauge",
    "orders_live_resume_position_age_seconds": "gauge",
    "orders_live_resyncs_total": "counter",
    "orders_live_slow_clients_total": "counter",
    "orders_live_ready": "gauge",
}


async def scrape(service: Service) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{service.url}/metrics") as response:
        assert response.status == 200
        return await response.text()


def value(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{sample} is not in /metrics"
    return float(found.group(1))


async def test_each_service_counts_in_its_own_registry_under_the_old_names() -> None:
    async with (
        running_service(settings_for("memory://")) as first,
        running_service(settings_for("memory://")) as second,
    ):
        assert first.source is not None
        async with LiveOrders(first.url) as live:
            await live.wait_live()
            order = await first.source.store.create(OrderCreate(customer_name="Ada", product_name="Lamp"))
            await until(lambda: order.id in live.orders, what="the change to arrive")
            text, other = await scrape(first), await scrape(second)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    for name, kind in KNOWN.items():
        assert types.get(name) == kind, f"{name}: {types.get(name)}"
    assert value(text, "orders_live_changes_in_total") == 1
    assert value(text, "orders_live_changes_out_total") == 1
    assert value(text, 'orders_live_connected_clients{transport="socketio"}') == 1
    assert value(text, 'orders_live_subscriptions{kind="all"}') == 1
    assert value(text, "orders_live_fanout_seconds_count") == 1
    assert value(text, 'orders_live_slow_clients_total{outcome="conflated"}') == 0
    assert value(other, "orders_live_changes_in_total") == 0
    assert value(other, 'orders_live_connected_clients{transport="socketio"}') == 0
    assert "_created" not in text


async def test_readyz_fails_while_a_hub_task_is_dead(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_service(settings_for("memory://")) as service:
        assert service.hub is not None
        monkeypatch.setattr(service.hub.tasks, "restart_first", 30.0)  # stays dead for the test

        async def broken() -> None:
            raise RuntimeError("a bug")

        await service.hub.tasks.stop()
        service.hub.tasks.start("hub.checkpoints", broken)
        await until(lambda: bool(service.hub and service.hub.tasks.problems), what="the death")
        async with aiohttp.ClientSession() as session, session.get(f"{service.url}/readyz") as response:
            body = await response.json()
        assert response.status == 503
        assert "task hub.checkpoints died (RuntimeError: a bug); restarting" in body["problems"]


METRICS_TOKEN = "metrics-token-0123456789"


async def get(url: str, token: str | None = None) -> tuple[int, Any, aiohttp.ClientResponse]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        is_json = response.content_type == "application/json"
        return response.status, (await response.json()) if is_json else await response.text(), response


async def test_readyz_says_only_ready_to_the_public_and_details_to_the_metrics_token() -> None:
    async with running_service(settings_for("memory://", metrics_token=METRICS_TOKEN)) as service:
        status, body, _ = await get(f"{service.url}/readyz")
        assert (status, body) == (200, {"ready": True})  # even from loopback: a token is configured
        status, body, _ = await get(f"{service.url}/readyz", METRICS_TOKEN)
        assert status == 200 and body["ready"] is True and body["status"] == "ready"
        assert service.hub is not None and body["position"] == service.hub.position
        status, body, response = await get(f"{service.url}/readyz", "wrong-token-0123456789")
        assert status == 401 and body["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_without_a_metrics_token_readyz_details_are_for_loopback_peers_only() -> None:
    address = machine_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    async with running_service(settings_for("memory://", host="0.0.0.0")) as service:
        status, body, _ = await get(f"http://{address}:{service.port}/readyz")
        assert (status, body) == (200, {"ready": True})
        status, body, _ = await get(f"http://127.0.0.1:{service.port}/readyz")
        assert status == 200 and body["status"] == "ready" and "position" in body


async def test_readyz_asks_the_database_at_most_once_a_second() -> None:
    async with running_service(settings_for("memory://")) as service:
        assert service.source is not None
        connection = service.source.connection
        pings = 0
        ping = connection.ping

        async def counted() -> None:
            nonlocal pings
            pings += 1
            await asyncio.sleep(0.05)  # a database that takes a moment: concurrent calls overlap it
            await ping()

        connection.ping = counted  # type: ignore[method-assign]
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:

            async def ready() -> int:
                async with session.get(f"{service.url}/readyz") as response:
                    return response.status

            statuses = list(await asyncio.gather(*(ready() for _ in range(20))))
            statuses += [await ready() for _ in range(30)]
        elapsed = time.monotonic() - started
        assert statuses == [200] * 50
        assert 1 <= pings <= 1 + int(elapsed), f"{pings} pings in {elapsed:.2f}s"


async def test_metrics_need_the_metrics_token_when_one_is_set() -> None:
    async with running_service(settings_for("memory://", metrics_token=METRICS_TOKEN)) as service:
        for token in (None, "wrong-token-0123456789", f"{METRICS_TOKEN}x"):
            status, body, response = await get(f"{service.url}/metrics", token)
            assert status == 401, token
            assert body["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
        status, text, _ = await get(f"{service.url}/metrics", METRICS_TOKEN)
        assert status == 200 and value(text, "orders_live_ready") == 1
