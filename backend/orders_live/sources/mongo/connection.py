"""The MongoDB client, the collections, and what tells MongoDB and nx-27017 apart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from orders_live.domain import order_numbers
from orders_live.domain.source import DatabaseUnavailable
from orders_live.sources.mongo.pacer import IdlePacer
from orders_live.sources.options import MongoOptions

log = logging.getLogger(__name__)

DEFAULT_DATABASE = order_numbers.DATABASE
PING_SECONDS = 1.0  # a ping that takes longer is an answer too late


class MongoConnection:
    """The client is built by ``open()``, which is idempotent: the service opens the source
    before it takes writes and the hub's follower opens it again, which then does nothing.
    Every driver call runs inside ``answering()``."""

    def __init__(self, url: str, options: MongoOptions) -> None:
        self.url = url
        self.client: AsyncMongoClient[dict[str, Any]] | None = None
        self.pacer = IdlePacer(cap=options.idle_poll_cap)
        self.watch_options: dict[str, Any] = {"full_document": "updateLookup"}
        self.nx: bool | None = None  # known after open(): nx-27017 ("nx:<row>") or MongoDB positions
        self._opened = False

    @property
    def database_name(self) -> str:
        """From the URL, as the client would take it, without building one."""
        path = self.url.split("://", 1)[-1].split("?", 1)[0]
        return path.split("/", 1)[1] if "/" in path and path.split("/", 1)[1] else DEFAULT_DATABASE

    @property
    def description(self) -> str:
        return f"MongoDB database {self.database_name!r}"

    @property
    def db(self) -> AsyncDatabase[dict[str, Any]]:
        if self.client is None:
            raise DatabaseUnavailable("the database has not been opened")
        return self.client.get_default_database(default=DEFAULT_DATABASE)

    @property
    def orders(self) -> AsyncCollection[dict[str, Any]]:
        return self.db["orders"]

    @property
    def counters(self) -> AsyncCollection[dict[str, Any]]:
        return self.db["counters"]

    @property
    def state(self) -> AsyncCollection[dict[str, Any]]:
        return self.db["orders_live_state"]

    @property
    def agent_actions(self) -> AsyncCollection[dict[str, Any]]:
        return self.db["agent_actions"]

    async def open(self) -> None:
        if self._opened:
            return
        async with self.answering():
            if self.client is None:
                self.client = AsyncMongoClient(
                    self.url, serverSelectionTimeoutMS=5000, tz_aware=True, appname="orders-live"
                )
            await self._prepare()
        self._opened = True

    async def _prepare(self) -> None:
        await self.db.client.admin.command("ping")  # within the client's server selection timeout
        await self.orders.create_index([("status", ASCENDING), ("updated_at", DESCENDING)])
        await self.orders.create_index([("updated_at", DESCENDING)])
        await self.orders.create_index([("customer_name", ASCENDING), ("updated_at", DESCENDING)])
        await self.orders.create_index(
            [("customer_name", ASCENDING), ("status", ASCENDING), ("updated_at", DESCENDING)]
        )
        await self.agent_actions.create_index([("seq", ASCENDING)], unique=True)  # not with _id: nx-27017
        await self.agent_actions.create_index([("customer_name", ASCENDING), ("seq", ASCENDING)])
        # nx-27017 records changes only from the first watch after it starts: open one
        # now, before this service takes any write, so that no write goes unrecorded.
        # Its token also tells which kind of positions this server hands out.
        async with await self.orders.watch() as probe:
            token = probe.resume_token
            self.nx = token is not None and str(token.get("_data", "")).startswith("nx:")
        try:
            await self.db.command({"collMod": "orders", "changeStreamPreAndPostImages": {"enabled": True}})
        except OperationFailure as exc:
            if exc.code == 26:  # NamespaceNotFound: create it, then ask again
                await self.db.create_collection("orders", changeStreamPreAndPostImages={"enabled": True})
            else:
                log.info("pre/post images unavailable (%s); using updateLookup", exc.code)
                return
        self.watch_options = {
            "full_document": "whenAvailable",
            "full_document_before_change": "whenAvailable",
        }

    async def close(self) -> None:
        client, self.client, self._opened = self.client, None, False
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        async with self.answering(), asyncio.timeout(PING_SECONDS):
            await self.db.client.admin.command("ping")

    @contextlib.asynccontextmanager
    async def answering(self) -> AsyncIterator[MongoConnection]:
        """Driver errors (and a ping's timeout) leave this source as DatabaseUnavailable. It
        yields what statements run on, as PostgreSQL's yields a pooled connection: here that is
        this connection itself, since the client pools by itself and the collections are its."""
        try:
            yield self
        except (PyMongoError, TimeoutError) as exc:
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
