"""The sources the contract suite holds to ``domain/source.py``: one ``Subject`` per kind.

A new source is one more entry in ``KINDS`` and one more branch in ``subject``: a way to open
it on a fresh database, a second client of that same database, and a way to make its change
log forget what it holds (retention, an oplog rolling over).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from conftest import opened
from orders_live.domain.order import OrderCreate
from orders_live.domain.source import Source
from orders_live.sources.memory import MemoryDatabase
from orders_live.sources.postgres.embedded import create_database

# Every source the service has, each in its tier: the database ones run on real servers.
KINDS = [
    pytest.param("memory", marks=pytest.mark.fast),
    pytest.param("nx", marks=pytest.mark.database),
    pytest.param("pg", marks=pytest.mark.database),
]


@dataclass
class Subject:
    """An opened source on a fresh database, and what a test needs around it."""

    kind: str
    source: Source
    another: Callable[[], contextlib.AbstractAsyncContextManager[Source]]  # a second client, same data
    forget: Callable[[], Awaitable[None]]  # the log no longer holds what was committed so far

    async def write(self, n: int = 1) -> list[int]:
        """``n`` new orders; their ids."""
        return [
            (await self.source.store.create(OrderCreate(customer_name="Ada", product_name=f"P{i}"))).id
            for i in range(n)
        ]


async def _forget_postgres(url: str) -> None:
    """What retention does, at once and up to the newest commit."""
    db = await asyncpg.connect(url)
    try:
        async with db.transaction():
            head = await db.fetchval("SELECT COALESCE(max(commit_seq), 0) FROM orders_live_commits")
            await db.execute("UPDATE orders_live_log SET horizon = $1 WHERE horizon < $1", head)
            await db.execute(
                "DELETE FROM orders_live_changes WHERE xid IN"
                " (SELECT xid FROM orders_live_commits WHERE commit_seq <= $1)",
                head,
            )
            await db.execute("DELETE FROM orders_live_commits WHERE commit_seq <= $1", head)
    finally:
        await db.close()


async def _forget_nx(url: str) -> None:
    """nx-27017 prunes its change log ~1,000 rows behind its slowest open stream."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    orders = client.get_default_database()["orders"]
    try:
        await orders.insert_one({"_id": 10**9, "customer_name": "Ada", "product_name": "P", "status": "pending"})
        async with await orders.watch() as stream:
            for n in range(1_100):
                await orders.update_one({"_id": 10**9}, {"$set": {"product_name": f"P{n}"}})
            while await stream.try_next() is not None:
                pass
    finally:
        await client.close()


@pytest_asyncio.fixture(params=KINDS)
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    kind = request.param
    if kind == "memory":
        database = MemoryDatabase()

        @contextlib.asynccontextmanager
        async def same() -> AsyncIterator[Source]:
            yield database.source()

        async def forget_memory() -> None:
            database.forget_history(0)

        yield Subject(kind, database.source(), same, forget_memory)
        return
    if kind == "nx":
        url = str(request.getfixturevalue("mongo_url"))
    else:  # postgres_url makes its database with asyncio.run: not from inside a loop
        server = request.getfixturevalue("pg")
        name = f"t_{uuid.uuid4().hex[:12]}"
        await create_database(server.url("postgres"), name)
        url = server.url(name)
    forget = _forget_nx if kind == "nx" else _forget_postgres
    # PostgreSQL re-reads its log this often without a NOTIFY: long enough that no test passes
    # by a poll where the contract promises more (a prompt second mark, a wake-up per write).
    request.getfixturevalue("monkeypatch").setenv("ORDERS_LIVE_PG_POLL_INTERVAL", "30")
    async with opened(url) as source, running(source):
        yield Subject(kind, source, lambda: opened(url), lambda: forget(url))


@contextlib.asynccontextmanager
async def running(source: Source) -> AsyncIterator[None]:
    """The source's own long-running work (``Source.jobs``), as the service runs it."""
    tasks = [asyncio.create_task(job(), name=name) for name, job in source.jobs.items()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
