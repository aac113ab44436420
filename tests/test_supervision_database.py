"""Database tier: the background work of a real database runs under the service's one
supervisor (named, restarted, counted, shown on ``/readyz``), and a stop runs every step."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from conftest import opened, settings_for, until, until_async
from orders_live.domain.order import OrderCreate
from orders_live.domain.source import Source
from orders_live.runtime.backoff import Backoff
from orders_live.service import Service
from orders_live.sources import source_from_url
from orders_live.sources.postgres import PostgresOptions, postgres_source

pytestmark = pytest.mark.database

TOKEN = "a-metrics-token-for-tests"


@asynccontextmanager
async def supervised(url: str, source: Source | None = None) -> AsyncIterator[Service]:
    """A service whose restarts come within 0.5-1 s (long enough for /readyz to be seen
    showing the death), its feed live; stopped on the way out."""
    running = Service(settings_for(url, metrics_token=TOKEN), source=source)
    running.tasks.restart_first, running.tasks.restart_cap = 1.0, 1.0
    await running.start()
    try:
        assert running.hub is not None
        await running.hub.wait_ready(20)
        yield running
    finally:
        await running.stop()


async def problems(service: Service) -> tuple[int, list[str]]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
        session.get(f"{service.url}/readyz") as response,
    ):
        body = await response.json()
        return response.status, list(body.get("problems", []))


async def shown_dead_then_back(service: Service, task: str) -> None:
    """``task`` died: ``/readyz`` says so, the death is counted; then it runs again and ``/readyz`` is 200."""

    async def shown() -> bool:
        status, found = await problems(service)
        return status == 503 and any(f"task {task} died" in p for p in found)

    await until_async(shown, within=30, what=f"/readyz to show {task} dead")
    deaths = service.registry.get_sample_value("orders_live_task_deaths_total", {"task": task})
    assert deaths is not None and deaths >= 1

    async def ready() -> bool:
        return (await problems(service))[0] == 200

    await until_async(ready, within=30, what=f"/readyz to answer 200 once {task} runs again")


async def test_a_dead_listen_loop_is_restarted_counted_and_shown_on_readyz(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the LISTEN loop ran under the connection's own supervisor; its death reached
    ``/readyz`` only as "database: DatabaseUnavailable", and was never counted."""
    import orders_live.sources.postgres.connection as connection_module

    class BrokenRetry(Backoff):
        async def wait(self, error: BaseException) -> None:
            raise OverflowError("(34, 'Numerical result out of range')")  # a bug in the retry path

    monkeypatch.setattr(connection_module, "Backoff", BrokenRetry)
    async with supervised(postgres_url) as service:
        assert service.source is not None
        connection: Any = service.source.connection
        await until(lambda: connection.listening, within=20, what="the LISTEN connection")
        admin = await asyncpg.connect(postgres_url)
        try:  # the server ends the listening connection, as a restart or a network fault would
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        finally:
            await admin.close()
        await shown_dead_then_back(service, "postgres.listen")
        await until(lambda: connection.listening, within=20, what="listening again")


async def test_a_dead_retention_task_is_restarted_counted_and_shown_on_readyz(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a retention pass that failed for any reason was logged and retried by the task
    itself, under the connection's own supervisor: a broken retention was never counted nor shown."""
    import orders_live.sources.postgres.retention as retention_module

    failing = True

    async def broken_pass(self: Any) -> int:
        if failing:
            raise RuntimeError("a bug in the retention pass")
        return 0

    monkeypatch.setattr(retention_module.LogRetention, "pass_once", broken_pass)
    source = postgres_source(postgres_url, PostgresOptions(retention_interval=0.05))
    async with supervised(postgres_url, source) as service:

        async def shown() -> bool:
            status, found = await problems(service)
            return status == 503 and any("task postgres.retention died" in p for p in found)

        await until_async(shown, within=30, what="/readyz to show the retention dead")
        deaths = service.registry.get_sample_value("orders_live_task_deaths_total", {"task": "postgres.retention"})
        assert deaths is not None and deaths >= 1
        failing = False

        async def ready() -> bool:
            return (await problems(service))[0] == 200

        await until_async(ready, within=30, what="/readyz to answer 200 once retention runs again")


async def test_a_stop_step_that_raises_still_saves_the_position_and_closes_the_database(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: an exception in ``gateway.close()`` left ``Service.stop`` at once: the resume
    position was not saved and the database client was left open."""
    running = Service(settings_for(database_url))
    await running.start()
    try:
        assert running.gateway is not None and running.source is not None and running.hub is not None
        hub = running.hub
        await hub.wait_ready(20)
        order = await running.source.store.create(OrderCreate(customer_name="Ada", product_name="Lamp"))
        await until(lambda: hub.index.version_of(order.id) == 1, within=20, what="the change to be applied")

        async def broken_close() -> None:
            raise RuntimeError("a bug in the gateway's close")

        running.gateway.close = broken_close  # type: ignore[method-assign]
    finally:
        with caplog.at_level(logging.WARNING, logger="orders_live.service"):
            await asyncio.wait_for(running.stop(), 60)
    assert "stopping: close the Socket.IO clients failed (RuntimeError: a bug in the gateway's close)" in caplog.text
    assert "Traceback" not in caplog.text
    async with opened(database_url) as source:
        assert await source.checkpoints.load_checkpoint(hub.instance) == hub.position
    with pytest.raises(Exception):  # noqa: B017,PT011  closed: whichever error its driver gives
        await running.source.connection.ping()


@pytest.fixture(params=["nx-27017", "postgres"])
def embedded_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A data folder the embedded database's own user can reach (as root, PostgreSQL runs as
    ``postgres``, and pytest's folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="orders-live-watchdog-"))
    folder.chmod(0o755)
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


async def test_an_embedded_database_that_dies_is_shown_counted_and_started_again(
    embedded_kind: str, reachable_dir: Path
) -> None:
    """Before: nothing watched the embedded database; killed, it stayed dead and the service
    with it, and no task death said why."""
    settings = settings_for("", database_url=None, embedded_database=embedded_kind, data_dir=reachable_dir)
    running = Service(settings.model_copy(update={"metrics_token": TOKEN}))
    # A death shows on /readyz until the restart: 1.5-3 s here, while a ping of the dead
    # database may hold each /readyz for up to 1 s.
    running.tasks.restart_first, running.tasks.restart_cap = 3.0, 3.0
    await running.start()
    try:
        assert running.hub is not None and running.source is not None and running.embedded is not None
        hub, store = running.hub, running.source.store
        await hub.wait_ready(30)
        process = running.embedded.process
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        await shown_dead_then_back(running, "embedded.watchdog")
        assert running.embedded.process is not None and running.embedded.process.pid != process.pid
        order = await store.create(OrderCreate(customer_name="Ada", product_name="Lamp"))
        await until(lambda: hub.index.version_of(order.id) == 1, within=30, what="a change after the restart")
    finally:
        await running.stop()


async def test_opening_a_source_starts_nothing_in_the_background(database_url: str) -> None:
    """Before: PostgreSQL's ``open()`` started its LISTEN loop and retention under a supervisor
    of its own, out of the service's sight. (A driver's own tasks, PyMongo's monitors, are not
    the source's work.)"""
    before = asyncio.all_tasks()
    source = source_from_url(database_url)
    await source.connection.open()
    try:
        assert [task.get_name() for task in asyncio.all_tasks() - before if _ours(task)] == []
        if database_url.startswith("postgres"):
            # the WAL feed's reader and its slot's watch idle with the trigger feed
            assert sorted(source.jobs) == ["postgres.listen", "postgres.retention", "postgres.slot", "postgres.wal"]
    finally:
        await source.connection.close()


def _ours(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` runs this project's code (not a driver's)."""
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "orders_live" in code.co_filename
