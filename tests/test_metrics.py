"""Fast tier: metrics live in each service's own registry, under the names dashboards know,
and /readyz fails while a background task is dead."""

from __future__ import annotations

import re

import aiohttp
import pytest

from conftest import running_service, settings_for, until
from orders_live.client.live_orders import LiveOrders
from orders_live.domain.order import OrderCreate
from orders_live.service import Service

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
