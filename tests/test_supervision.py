"""Fast tier: retry delays, and background tasks whose death is noticed (hub tasks, client writers)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
import pytest

from conftest import running_service, settings_for, until, until_async
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


class BrokenWriter:
    """One client's direct writer, whose writes raise (a DirectWriter has slots: no attribute
    of it can be replaced)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, data: bytes) -> None:
        raise RuntimeError("a bug in the writer")


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
                connection.direct = BrokenWriter(connection.direct)  # type: ignore[assignment]
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


async def test_cancelling_the_caller_of_stop_propagates() -> None:
    """Before: ``Supervisor.stop`` swallowed its caller's own cancellation while it waited for
    a task to end, and the cancelled caller went on as if nothing had happened."""
    started, ending, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_to_end() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ending.set()
            await release.wait()  # its clean-up takes a while

    supervisor = Supervisor()
    supervisor.start("test.slow", slow_to_end)
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.create_task(supervisor.stop())
    await asyncio.wait_for(ending.wait(), 5)
    stopping.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert stopping.cancelled()


async def test_a_stop_step_that_raises_does_not_skip_the_steps_after_it(caplog: pytest.LogCaptureFixture) -> None:
    """Before: an exception in ``gateway.close()`` left ``Service.stop`` at once: no position
    saved, the database client and the embedded database left open."""
    from orders_live.service import Service

    running = Service(settings_for("memory://"))
    await running.start()
    assert running.gateway is not None and running.source is not None and running.hub is not None
    await running.hub.wait_ready(10)
    order = await running.source.store.create(OrderCreate(customer_name="Ada", product_name="Lamp"))
    await until(lambda: running.hub is not None and running.hub.index.version_of(order.id) == 1, what="the change")

    async def broken_close() -> None:
        raise RuntimeError("a bug in the gateway's close")

    closed: list[bool] = []
    close = running.source.connection.close

    async def close_and_note() -> None:
        closed.append(True)
        await close()

    running.gateway.close = broken_close  # type: ignore[method-assign]
    running.source.connection.close = close_and_note  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="orders_live.service"):
        await asyncio.wait_for(running.stop(), 30)
    assert closed == [True]
    assert await running.source.checkpoints.load_checkpoint(running.hub.instance) == running.hub.position
    assert "stopping: close the Socket.IO clients failed (RuntimeError: a bug in the gateway's close)" in caplog.text
    assert "Traceback" not in caplog.text
    assert running.tasks.problems == [] and not any(not task.done() for task in running.tasks.running)


async def test_every_background_task_of_the_service_runs_under_its_one_supervisor() -> None:
    """Before: the action tail (and a database's own work) ran under supervisors of their own."""
    async with running_service(settings_for("memory://")) as service:
        names = set(service.tasks.names)
        assert {
            "hub.follow",
            "hub.checkpoints",
            "agent_actions.tail",
            "agent_actions.retention",
            "agent_actions.sweep",
            "sse.sweep",
            "identity.files",
            "loop.lag",
        } <= names
        assert service.hub is not None and service.hub.tasks is service.tasks


async def test_a_dead_action_tail_is_restarted_counted_and_shown_on_readyz(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the tail had a supervisor of its own, so its death reached neither ``/readyz``
    nor ``orders_live_task_deaths_total``."""
    from orders_live.domain.agent_action import EVERY_ACTION
    from orders_live.domain.source import DatabaseUnavailable
    from orders_live.service import Service

    token = "a-metrics-token-for-tests"
    running = Service(settings_for("memory://", metrics_token=token))
    running.tasks.restart_first, running.tasks.restart_cap = 0.05, 0.2
    await running.start()
    try:
        assert running.action_tail is not None and running.source is not None
        tail = running.action_tail
        broken = True
        after = running.source.actions.after

        async def failing_after(*args: Any, **kwargs: Any) -> Any:
            if broken:
                raise DatabaseUnavailable("the database is away")
            return await after(*args, **kwargs)

        async def broken_wait(error: BaseException) -> None:
            raise OverflowError("(34, 'Numerical result out of range')")  # a bug in the retry path

        monkeypatch.setattr(running.source.actions, "after", failing_after)
        monkeypatch.setattr(tail._backoff, "wait", broken_wait)
        stream = await tail.join(EVERY_ACTION)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:

            async def readyz() -> tuple[int, dict[str, Any]]:
                async with session.get(f"{running.url}/readyz") as response:
                    return response.status, await response.json()

            async def tail_shown_dead() -> bool:
                status, body = await readyz()
                return status == 503 and any("task agent_actions.tail died" in p for p in body.get("problems", []))

            await until_async(tail_shown_dead, within=20, what="/readyz to show the dead tail")
            deaths = running.registry.get_sample_value("orders_live_task_deaths_total", {"task": "agent_actions.tail"})
            assert deaths is not None and deaths >= 1
            broken = False

            async def ready() -> bool:
                return (await readyz())[0] == 200

            await until_async(ready, within=20, what="/readyz to answer 200 once the tail runs again")
            tail.leave(stream)
    finally:
        await running.stop()


async def test_a_task_that_keeps_dying_logs_one_traceback_then_one_line_a_death(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: each death of a task that kept dying (a watchdog whose server cannot start, say)
    logged its whole traceback again."""
    deaths: list[str] = []

    async def broken() -> None:
        raise RuntimeError("still broken")

    supervisor = Supervisor(on_death=deaths.append, restart_first=0.01, restart_cap=0.02)
    with caplog.at_level(logging.ERROR, logger="orders_live.runtime.supervisor"):
        supervisor.start("test.broken", broken)
        await until(lambda: len(deaths) >= 4, what="four deaths")
        await supervisor.stop()
    records = [r for r in caplog.records if "task test.broken died" in r.getMessage()]
    assert len(records) >= 4
    assert [r.exc_info is not None for r in records[:4]] == [True, False, False, False]
