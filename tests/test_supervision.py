"""Fast tier: retry delays, and background tasks whose death is noticed (hub tasks, client writers)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from conftest import running_service, settings_for, until
from orders_live.client.live_orders import LiveOrders
from orders_live.domain.change import CaughtUp, Change
from orders_live.domain.order import OrderCreate, OrderPatch
from orders_live.hub import Hub
from orders_live.runtime.backoff import Backoff
from orders_live.runtime.supervisor import Supervisor
from orders_live.sources.memory import MemoryDatabase

pytestmark = pytest.mark.fast

log = logging.getLogger("test")


def test_the_delay_grows_to_its_cap_and_never_overflows() -> None:
    backoff = Backoff("x", log, first=0.1, cap=10.0, rng=lambda: 0.0)
    delays = []
    for failures in (1, 2, 3, 8, 1_025, 1_100, 10**6):
        backoff.failures = failures
        delays.append(backoff.next_delay())  # before the fix: OverflowError from 2**1024 onwards
    assert delays[:3] == [0.1, 0.2, 0.4]
    assert delays[3:] == [10.0] * 4


def test_delays_are_jittered_below_their_ceiling() -> None:
    draws = iter([0.0, 0.5, 0.999])
    backoff = Backoff("x", log, first=1.0, cap=8.0, rng=lambda: next(draws))
    backoff.failures = 4  # ceiling 8
    assert [backoff.next_delay() for _ in range(3)] == [8.0, 6.0, pytest.approx(4.004)]


async def test_a_dead_task_is_logged_reported_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0
    deaths: list[str] = []
    running = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("a bug")
        running.set()
        await asyncio.Event().wait()

    supervisor = Supervisor(on_death=deaths.append, restart_first=0.2)
    with caplog.at_level(logging.WARNING):
        supervisor.start("test.flaky", flaky)
        await until(lambda: bool(supervisor.problems), what="the death to be reported")
        assert supervisor.problems == ["task test.flaky died (RuntimeError: a bug); restarting"]
        assert deaths == ["test.flaky"]
        await asyncio.wait_for(running.wait(), 5)
    assert supervisor.problems == []
    assert "task test.flaky died (RuntimeError: a bug)" in caplog.text
    assert "task test.flaky restarted" in caplog.text
    await supervisor.stop()
    assert runs == 2


class FailingFeed:
    """A change feed that fails every time until ``heal``."""

    def __init__(self, database: MemoryDatabase) -> None:
        self.database, self.healed = database, False

    def watch(self, resume_after: str | None) -> AsyncGenerator[Change | CaughtUp, None]:
        if not self.healed:
            raise ConnectionError("the database is away")
        return self.database.watch(resume_after)

    def position_key(self, position: str) -> tuple[int, str] | None:
        return self.database.position_key(position)


async def test_the_hub_follower_survives_a_bug_in_its_retry_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: an exception raised while waiting to retry (as Backoff's OverflowError after
    ~1,025 failures) ended the follow task for good, and nothing noticed."""
    database = MemoryDatabase()
    feed = FailingFeed(database)
    source = database.source()
    hub = Hub(dataclasses.replace(source, feed=feed), instance="t")
    monkeypatch.setattr(hub.tasks, "restart_first", 0.05)

    async def broken_wait(error: BaseException) -> None:
        raise OverflowError("(34, 'Numerical result out of range')")

    monkeypatch.setattr(hub.follower.backoff, "wait", broken_wait)
    await hub.start()
    try:
        await until(lambda: any("hub.follow died" in p for p in hub.problems), what="the death to be reported")
        assert hub.registry.get_sample_value("orders_live_task_deaths_total", {"task": "hub.follow"}) >= 1
        feed.healed = True
        await hub.wait_ready(5)
        assert not any("died" in p for p in hub.problems)
    finally:
        await hub.stop()


async def test_a_connection_lost_while_a_subscribe_waits_is_retried_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the client waited out the ack's 30 s bound for an ack that could never come."""
    async with running_service(settings_for("memory://")) as service:
        assert service.gateway is not None and service.hub is not None
        hub = service.hub
        original = hub.open_view
        stuck = asyncio.Event()

        async def first_one_hangs(*args: Any, **kwargs: Any) -> Any:
            if not stuck.is_set():
                stuck.set()
                await asyncio.Event().wait()  # the instance dies before it answers
            return await original(*args, **kwargs)

        monkeypatch.setattr(hub, "open_view", first_one_hangs)
        async with LiveOrders(service.url, reconnect_first=0.05) as live:
            await asyncio.wait_for(stuck.wait(), 5)
            (connection,) = service.gateway.connection_per_sid.values()
            connection.channel.drop()  # as a killed instance would: no disconnect packet
            await live.wait_live(within=10)


async def test_a_client_whose_writer_breaks_is_dropped_and_catches_up(caplog: pytest.LogCaptureFixture) -> None:
    """Before: a writer error other than ConnectionError ended the writer task and left the
    client connected and stalled, receiving nothing ever again."""
    async with running_service(settings_for("memory://")) as service:
        assert service.gateway is not None and service.source is not None and service.hub is not None
        store = service.source.store
        order = await store.create(OrderCreate(customer_name="Ada", product_name="Lamp"))
        async with LiveOrders(service.url, reconnect_first=0.05) as live:
            await live.wait_live()
            (connection,) = service.gateway.connection_per_sid.values()

            def broken(*_: Any) -> None:
                raise RuntimeError("a bug in the writer")

            if connection.direct is not None:
                connection.direct.write = broken  # type: ignore[method-assign]
            else:
                connection.channel.send = broken  # type: ignore[assignment,method-assign]
            (subscription,) = connection.subscriptions.values()
            with caplog.at_level(logging.WARNING):
                service.hub.resync(subscription, "test")  # something for the writer to write
                for n in range(5):
                    await store.update(order.id, OrderPatch(product_name=f"Lamp {n}"), None)
                await until(lambda: live.orders.get(order.id, {}).get("version") == 6, what="the client to catch up")
            assert connection.broken
            assert service.gateway.connection_per_sid and connection.sid not in service.gateway.connection_per_sid
            assert "writer failed (RuntimeError: a bug in the writer); dropping the connection" in caplog.text
            samples = service.registry.get_sample_value("orders_live_broken_writers_total", {"transport": "socketio"})
            assert samples == 1


async def test_a_stop_step_that_hangs_is_cut_off_and_the_stop_ends(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A shutdown step that never ends (a library waiting on a socket, say) is logged by name,
    and the steps after it still run: the database client is closed, the stop returns."""
    import orders_live.service as service_module
    from orders_live.service import Service

    monkeypatch.setattr(service_module, "STOP_STEP", 0.2)
    running = Service(settings_for("memory://"))
    await running.start()
    assert running.streams is not None and running.source is not None
    never = asyncio.Event()

    async def hang() -> None:
        await never.wait()

    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    monkeypatch.setattr(running.streams, "close", hang)
    monkeypatch.setattr(running.source.connection, "close", close)
    with caplog.at_level(logging.WARNING, logger="orders_live.service"):
        await asyncio.wait_for(running.stop(), 10)
    assert "stopping: end the event streams took over 0 s" in caplog.text
    assert closed == [True]
