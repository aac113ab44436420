"""The MongoDB client, the collections, and what tells MongoDB and nx-27017 apart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure, PyMongoError

from orders_live.domain import order_numbers
from orders_live.domain.source import DatabaseUnavailable
from orders_live.sources.mongo.pacer import IdlePacer
from orders_live.sources.options import MongoOptions

log = logging.getLogger(__name__)

DEFAULT_DATABASE = order_numbers.DATABASE


class MongoConnection:
    def __init__(self, url: str, options: MongoOptions) -> None:
        self.url = url
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=5000, tz_aware=True, appname="orders-live"
        )
        self.db = self.client.get_default_database(default=DEFAULT_DATABASE)
        self.orders: AsyncCollection[dict[str, Any]] = self.db["orders"]
        self.counters: AsyncCollection[dict[str, Any]] = self.db[order_numbers.COUNTERS]
        self.state: AsyncCollection[dict[str, Any]] = self.db["orders_live_state"]
        self.agent_actions: AsyncCollection[dict[str, Any]] = self.db["agent_actions"]
        self.pacer = IdlePacer(cap=options.idle_poll_cap)
        self.watch_options: dict[str, Any] = {"full_document": "updateLookup"}
        self.nx: bool | None = None  # known after open(): nx-27017 ("nx:<row>") or MongoDB positions

    @property
    def description(self) -> str:
        return f"MongoDB database {self.db.name!r}"

    async def open(self) -> None:
        await self.client.admin.command("ping")
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
        await self.client.close()

    async def ping(self) -> None:
        async with asyncio.timeout(1.0):
            await self.client.admin.command("ping")

    @contextlib.asynccontextmanager
    async def answering(self) -> AsyncIterator[None]:
        """Driver errors leave this source as DatabaseUnavailable."""
        try:
            yield
        except PyMongoError as exc:
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
