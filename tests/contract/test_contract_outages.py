"""A database that goes away, over every database source: whatever the driver raises, what
leaves the source is DatabaseUnavailable (each source on a server of its own, stopped in the
middle of the test). And the connection's life cycle: open() is idempotent."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
from contract_sources import Subject, running, subject

from conftest import NxServer, PgServer, opened
from orders_live.domain.agent_action import NewAgentAction
from orders_live.domain.change import CaughtUp, Change
from orders_live.domain.order import OrderCreate
from orders_live.domain.source import DatabaseUnavailable, Source
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.sources import source_from_url
from orders_live.sources.postgres.embedded import create_database

__all__ = ["subject"]

ANSWER = 30.0  # seconds a call may take to give up on a stopped server (server selection, pool)


@pytest.fixture(autouse=True)
def collected() -> Iterator[None]:
    """PyMongo's server monitor, cancelled (by the client's close) while it connects to a
    stopped server, leaves that socket to the garbage collector: collected here, at the end of
    the test that stopped the server, not in whichever test runs next; and ``DRIVER_LEAK``
    keeps that one warning from failing the tests that stop a server."""
    yield
    gc.collect()


DRIVER_LEAK = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)


class Stoppable:
    """A database server of its own, to stop in the middle of a test."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.server: NxServer | PgServer = NxServer(folder) if kind == "nx" else PgServer(folder)

    async def url(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        if isinstance(self.server, PgServer):
            await create_database(self.server.url("postgres"), name)
        return self.server.url(name)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(params=[pytest.param("nx", marks=pytest.mark.database), pytest.param("pg", marks=pytest.mark.database)])
def stoppable(request: pytest.FixtureRequest) -> Iterator[Stoppable]:
    folder = Path(tempfile.mkdtemp(prefix="orders-live-contract-"))
    server = Stoppable(request.param, folder)
    try:
        yield server
    finally:
        server.stop()  # again, if the test did not get that far: harmless
        shutil.rmtree(folder, ignore_errors=True)


async def _first_items(changes: AsyncIterator[Change | CaughtUp], n: int) -> list[Change | CaughtUp]:
    return [await anext(changes) for _ in range(n)]


async def _index(source: Source) -> list[Any]:
    return [row async for chunk in source.store.index_rows() for row in chunk]


async def _outcome(call: Awaitable[Any]) -> str:
    """``DatabaseUnavailable``, or what else came out of ``call``."""
    try:
        async with asyncio.timeout(ANSWER):
            result = await call
    except DatabaseUnavailable:
        return "DatabaseUnavailable"
    except Exception as exc:
        return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:300]
    return f"an answer: {result!r}"[:300]


@DRIVER_LEAK
async def test_every_call_on_a_stopped_database_raises_database_unavailable(stoppable: Stoppable) -> None:
    async with opened(await stoppable.url()) as source, running(source):
        order = await source.store.create(OrderCreate(customer_name="Ada", product_name="Pen"))
        async with contextlib.aclosing(source.feed.watch(None)) as live:
            mark = await anext(live)
            assert isinstance(mark, CaughtUp)
            await source.store.create(OrderCreate(customer_name="Ada", product_name="Ink"))
            first = await anext(live)
            assert isinstance(first, Change)
            stoppable.stop()
            # Opened already: a second open() (the service's, then the follower's) does nothing.
            again = await _outcome(source.connection.open())
            action = NewAgentAction(kind="no_action", trigger="question", reason="r")
            calls: dict[str, Awaitable[Any]] = {
                "ping": source.connection.ping(),
                "store.get": source.store.get(order.id),
                "store.fetch": source.store.fetch([order.id]),
                "store.newest": source.store.newest(None, None, 10),
                "store.index_rows": _index(source),
                "store.create": source.store.create(OrderCreate(customer_name="Ada", product_name="Cap")),
                "store.delete": source.store.delete(order.id, None),
                "feed.check_position": source.feed.check_position(first.position),
                "feed.changes_between": source.feed.changes_between(
                    mark.position, first.position, SubscriptionFilter("all"), 100
                ),
                "feed.watch (open)": _first_items(live, 5),
                "feed.watch (new)": _first_items(source.feed.watch(mark.position), 5),
                "checkpoints.load": source.checkpoints.load_checkpoint("a"),
                "checkpoints.save": source.checkpoints.save_checkpoint("a", first.position),
                "actions.append": source.actions.append(action),
                "actions.after": source.actions.after(0, 10),
                "actions.recent": source.actions.recent(10),
                "actions.trim": source.actions.trim(1, 1.0),
            }
            outcomes = dict(zip(calls, await asyncio.gather(*map(_outcome, calls.values())), strict=True))
    wrong = {name: outcome for name, outcome in outcomes.items() if outcome != "DatabaseUnavailable"}
    assert not wrong, wrong
    assert again == "an answer: None"


@DRIVER_LEAK
async def test_opening_a_database_that_is_not_there_raises_database_unavailable(stoppable: Stoppable) -> None:
    url = await stoppable.url()
    stoppable.stop()
    source = source_from_url(url)
    try:
        assert await _outcome(source.connection.open()) == "DatabaseUnavailable"
        assert await _outcome(source.store.get(1)) == "DatabaseUnavailable"
    finally:
        await source.connection.close()


def ours(tasks: set[asyncio.Task[Any]]) -> set[str]:
    """The tasks the service's code runs (a driver's own monitors are the driver's business)."""
    found = set()
    for task in tasks:
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and "orders_live" in code.co_filename:
            found.add(task.get_name())
    return found


async def test_open_is_idempotent_and_starts_no_background_work(subject: Subject) -> None:
    before = asyncio.all_tasks()
    async with subject.another() as another:  # a client of its own, opened here
        assert ours(asyncio.all_tasks() - before) == set(), "open() started background work"
        await another.connection.open()
        await another.connection.open()
        assert ours(asyncio.all_tasks() - before) == set()
        await another.connection.ping()
        created = await another.store.create(OrderCreate(customer_name="Ada", product_name="Pen"))
        assert await subject.source.store.get(created.id) == created
