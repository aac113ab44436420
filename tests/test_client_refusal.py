"""A refusal that retrying cannot change ends the client and says why, instead of hanging:
a filter the server refuses, a token every instance refuses, an unexpected death of the
connection task. Transient refusals (a full server) are still retried. ``orders-live watch``
prints the refusal and exits with 1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from conftest import ORDERS_LIVE, Listener, free_port, running_service, settings_for, until
from orders_live.client.live_orders import LiveEvent, LiveOrders
from orders_live.client.refusals import AccessRefused, LiveOrdersDied, SubscribeRefused
from orders_live.service import Service

pytestmark = pytest.mark.fast

READ = "read-secret-1"
WITHIN = 20.0  # a refusal is answered in well under a second; the old client never ended


@pytest.fixture
async def open_service() -> AsyncIterator[Service]:
    async with running_service(settings_for("memory://")) as service:
        yield service


@pytest.fixture
async def locked_service() -> AsyncIterator[Service]:
    async with running_service(settings_for("memory://", read_token=READ)) as service:
        yield service


async def run_watch(*args: str) -> tuple[int, str, str]:
    """``orders-live watch`` as a child process: its exit code, stdout and stderr."""
    watch = await asyncio.create_subprocess_exec(
        *ORDERS_LIVE, "watch", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(watch.communicate(), WITHIN)
    except TimeoutError:
        raise AssertionError(f"`orders-live watch {' '.join(args)}` was still running after {WITHIN:g}s") from None
    finally:
        if watch.returncode is None:
            watch.kill()
            await watch.wait()
    assert watch.returncode is not None
    return watch.returncode, out.decode(), err.decode()


async def collect(live: LiveOrders, into: list[LiveEvent]) -> None:
    async with asyncio.timeout(WITHIN):
        async for event in live.events():
            into.append(event)


async def test_watch_with_a_refused_filter_exits_1_and_prints_the_refusal(open_service: Service) -> None:
    code, out, err = await run_watch("--id", "0", "--url", open_service.url)
    assert code == 1, err
    assert "refused: id: must be a positive integer" in err.splitlines()
    assert out == ""


@pytest.mark.parametrize(
    ("token", "refusal"),
    [(["--token", "nope"], "refused: this token does not allow reads"), ([], "refused: a read token is required")],
    ids=["wrong-token", "no-token"],
)
async def test_watch_with_a_token_the_service_refuses_exits_1_and_prints_the_refusal(
    locked_service: Service, monkeypatch: pytest.MonkeyPatch, token: list[str], refusal: str
) -> None:
    monkeypatch.delenv("ORDERS_LIVE_TOKEN", raising=False)
    code, out, err = await run_watch("--url", locked_service.url, *token)
    assert code == 1, err
    assert refusal in err.splitlines()
    assert out == ""


async def test_watch_with_the_right_token_keeps_running(locked_service: Service) -> None:
    """The control for the two tests above: the same command with the right token is not refused."""
    watch = await asyncio.create_subprocess_exec(
        *ORDERS_LIVE, "watch", "--url", locked_service.url, "--token", READ, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert watch.stdout is not None
        line = await asyncio.wait_for(watch.stdout.readline(), WITHIN)
        assert line.decode().startswith("-- snapshot: 0 orders")
        assert watch.returncode is None
    finally:
        watch.terminate()
        await watch.wait()


async def test_a_refused_filter_ends_events_and_wait_live_with_subscribe_refused(open_service: Service) -> None:
    live = LiveOrders(open_service.url, order_id=0)
    await live.start()
    try:
        with pytest.raises(SubscribeRefused) as refused:
            await live.wait_live(within=5)
        assert refused.value.code == "invalid_filter"
        assert refused.value.fields == {"id": "must be a positive integer"}
        assert str(refused.value) == "id: must be a positive integer"
        events: list[LiveEvent] = []
        with pytest.raises(SubscribeRefused):
            await collect(live, events)  # an iterator opened after the end raises too
        assert events == []
        assert live.state == "closed"
        assert live.failure is refused.value
    finally:
        await live.close()  # already raised to us: not raised again


async def test_events_yield_what_came_before_the_refusal_then_raise_it(open_service: Service) -> None:
    live = LiveOrders(open_service.url, status="pending", reconnect_first=0.05, reconnect_max=0.2)
    events: list[LiveEvent] = []
    async with live:
        reading = asyncio.create_task(collect(live, events), name="test-events-reader")
        try:
            await live.wait_live()
            await until(lambda: [e.kind for e in events] == ["snapshot"], what="the snapshot")
            live.view.wanted = {"id": 0}  # as if a server upgrade now refused the filter it took before
            assert live._sio is not None
            await live._sio.disconnect()  # it reconnects, subscribes again, and is refused
            with pytest.raises(SubscribeRefused):
                await reading
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
    assert [e.kind for e in events] == ["snapshot"]


async def test_close_raises_a_refusal_nobody_was_told_about(open_service: Service) -> None:
    live = LiveOrders(open_service.url, order_id=0)
    await live.start()
    await until(lambda: live.failure is not None, within=WITHIN, what="the refusal")
    with pytest.raises(SubscribeRefused):
        await live.close()
    await live.close()  # told once


async def test_a_token_every_instance_refuses_ends_the_client(locked_service: Service) -> None:
    async with running_service(settings_for("memory://", read_token=READ)) as other:
        live = LiveOrders([locked_service.url, other.url], token="nope", reconnect_first=0.05, reconnect_max=0.2)
        await live.start()
        try:
            with pytest.raises(AccessRefused) as refused:
                await live.wait_live(within=WITHIN)
            assert refused.value.code == "forbidden"
            assert str(refused.value) == "this token does not allow reads"
        finally:
            await live.close()


async def test_a_token_one_instance_refuses_fails_over_to_one_that_takes_it(
    locked_service: Service, open_service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "orders_live.client.live_orders")
    async with LiveOrders(
        [locked_service.url, open_service.url], token="nope", reconnect_first=0.05, reconnect_max=0.2
    ) as live:
        await live.wait_live(within=WITHIN)
        assert live.failure is None
    assert f"{locked_service.url} refused the token (forbidden)" in caplog.text


async def test_a_full_server_is_retried_until_a_connection_frees_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "orders_live.client.live_orders")
    async with running_service(settings_for("memory://", max_connections=1)) as service:
        holder = await Listener(service.url).connect()
        live = LiveOrders(service.url, reconnect_first=0.05, reconnect_max=0.2)
        await live.start()
        try:
            await until(lambda: caplog.text.count("the server is full") >= 3, within=WITHIN, what="3 refusals")
            assert live.failure is None
            assert live.state == "reconnecting"
            await holder.close()
            await live.wait_live(within=WITHIN)
        finally:
            await live.close()


async def test_an_unexpected_death_of_the_connection_task_is_surfaced(caplog: pytest.LogCaptureFixture) -> None:
    live = LiveOrders(f"http://127.0.0.1:{free_port()}")  # nobody listens: it fails, then waits to retry

    async def broken_wait(error: BaseException) -> None:
        raise RuntimeError("the backoff broke")

    live._backoff.wait = broken_wait  # type: ignore[method-assign]
    events: list[LiveEvent] = []
    await live.start()
    try:
        with pytest.raises(LiveOrdersDied) as died:
            await live.wait_live(within=WITHIN)
        assert isinstance(died.value.__cause__, RuntimeError)
        with pytest.raises(LiveOrdersDied):
            await collect(live, events)
        assert "the connection task live-orders-connection died (RuntimeError: the backoff broke)" in caplog.text
    finally:
        await live.close()


async def test_closing_ends_the_events_iterator(open_service: Service) -> None:
    live = LiveOrders(open_service.url)
    await live.start()
    events: list[LiveEvent] = []
    reading = asyncio.create_task(collect(live, events), name="test-events-reader")
    try:
        await live.wait_live()
        await until(lambda: len(events) == 1, what="the snapshot")
        await live.close()
        await reading  # ends, neither hanging nor raising
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    assert [e.kind for e in events] == ["snapshot"]
    assert live.failure is None
