"""MongoDB (and nx-27017) as the ChangeSource, through PyMongo's async API."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncGenerator
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from orders_live.domain.change import CaughtUp, Change, HistoryLost, StreamInvalidated
from orders_live.domain.order import Order, OrderCreate, OrderPatch, utc_now
from orders_live.domain.source import ChangeSource, OrderNotFound, VersionConflict
from orders_live.sources.mongo.documents import INVALIDATING_OPS, change_from_event, order_from_document

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "orders_live"
_MONGO_TOKEN = re.compile(r"[0-9A-Fa-f]{2,4096}")
_NX_TOKEN = re.compile(r"nx:(\d{1,18})")
# Error codes after which a resume token can never be used again.
_HISTORY_LOST_CODES = frozenset({286, 280, 136})
AWAIT_MS = 1000


class IdlePacer:
    """Paces getMore against a server that answers an empty one at once (nx-27017).

    MongoDB holds an empty getMore open for ``maxAwaitTimeMS``; nx-27017 returns
    at once, so a naive watcher spins a CPU. After a fast empty batch the watcher
    sleeps until a local write wakes it, or for a delay that doubles up to ``cap``.
    """

    def __init__(self, first: float = 0.002, cap: float = 0.2) -> None:
        self.first, self.cap = first, cap
        self._delay = first
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    def reset(self) -> None:
        self._delay = self.first

    async def pause(self) -> None:
        try:
            async with asyncio.timeout(self._delay):  # no inner task: safe inside a generator
                await self._woken.wait()
        except TimeoutError:
            self._delay = min(self.cap, self._delay * 2)
        else:
            self._delay = self.first
        self._woken.clear()


class MongoSource(ChangeSource):
    def __init__(self, url: str, idle_poll_cap: float = 0.2) -> None:
        self.url = url
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=5000, tz_aware=True, appname="orders-live"
        )
        self.db = self.client.get_default_database(default=DEFAULT_DATABASE)
        self.orders: AsyncCollection[dict[str, Any]] = self.db["orders"]
        self.counters: AsyncCollection[dict[str, Any]] = self.db["counters"]
        self.state: AsyncCollection[dict[str, Any]] = self.db["orders_live_state"]
        self.pacer = IdlePacer(cap=idle_poll_cap)
        self._watch_options: dict[str, Any] = {"full_document": "updateLookup"}
        self._nx: bool | None = None  # known after open(): nx-27017 ("nx:<row>") or MongoDB positions
        self.description = f"MongoDB database {self.db.name!r}"

    async def open(self) -> None:
        await self.client.admin.command("ping")
        await self.orders.create_index([("status", ASCENDING), ("updated_at", DESCENDING)])
        await self.orders.create_index([("updated_at", DESCENDING)])
        # nx-27017 records changes only from the first watch after it starts: open one
        # now, before this service takes any write, so that no write goes unrecorded.
        # Its token also tells which kind of positions this server hands out.
        async with await self.orders.watch() as probe:
            token = probe.resume_token
            self._nx = token is not None and str(token.get("_data", "")).startswith("nx:")
        try:
            await self.db.command({"collMod": "orders", "changeStreamPreAndPostImages": {"enabled": True}})
        except OperationFailure as exc:
            if exc.code == 26:  # NamespaceNotFound: create it, then ask again
                await self.db.create_collection("orders", changeStreamPreAndPostImages={"enabled": True})
            else:
                log.info("pre/post images unavailable (%s); using updateLookup", exc.code)
                return
        self._watch_options = {
            "full_document": "whenAvailable",
            "full_document_before_change": "whenAvailable",
        }

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        async with asyncio.timeout(1.0):
            await self.client.admin.command("ping")

    # -- reads and writes ------------------------------------------------------
    async def load_orders(self) -> list[Order]:
        orders = []
        async for doc in self.orders.find({}):
            try:
                orders.append(order_from_document(doc))
            except (KeyError, ValueError) as exc:
                log.warning("skipping a document that is not an order (_id=%r): %s", doc.get("_id"), exc)
        return orders

    async def get(self, order_id: int) -> Order | None:
        doc = await self.orders.find_one({"_id": order_id})
        return order_from_document(doc) if doc else None

    async def create(self, data: OrderCreate) -> Order:
        counter = await self.counters.find_one_and_update(
            {"_id": "orders"}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        order = Order(id=int(counter["seq"]), updated_at=utc_now(), version=1, **data.model_dump())
        await self.orders.insert_one(
            {
                "_id": order.id,
                "customer_name": order.customer_name,
                "product_name": order.product_name,
                "status": order.status,
                "updated_at": order.updated_at,
                "version": order.version,
            }
        )
        self.pacer.wake()
        return order

    async def update(self, order_id: int, patch: OrderPatch, expected_version: int | None) -> Order:
        selector: dict[str, Any] = {"_id": order_id}
        if expected_version is not None:
            selector["version"] = expected_version
        doc = await self.orders.find_one_and_update(
            selector,
            {"$set": {**patch.changes(), "updated_at": utc_now()}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise await self._refusal(order_id)
        self.pacer.wake()
        return order_from_document(doc)

    async def delete(self, order_id: int, expected_version: int | None) -> None:
        selector: dict[str, Any] = {"_id": order_id}
        if expected_version is not None:
            selector["version"] = expected_version
        result = await self.orders.delete_one(selector)
        if result.deleted_count == 0:
            raise await self._refusal(order_id)
        self.pacer.wake()

    async def _refusal(self, order_id: int) -> Exception:
        current = await self.get(order_id)
        return OrderNotFound(order_id) if current is None else VersionConflict(current)

    # -- change feed -------------------------------------------------------------
    async def watch(self, resume_after: str | None) -> AsyncGenerator[Change | CaughtUp, None]:
        token, must_see_first = self._resume_point(resume_after)
        try:
            async with await self.orders.watch(
                resume_after=token, max_await_time_ms=AWAIT_MS, **self._watch_options
            ) as stream:
                if must_see_first is not None:
                    first = await stream.try_next()
                    if first is None or first["_id"].get("_data") != must_see_first:
                        raise HistoryLost(f"the change log no longer holds {must_see_first!r}")
                while True:
                    started = time.monotonic()
                    event = await stream.try_next()
                    if event is None:
                        mark = stream.resume_token
                        if mark is not None:
                            yield CaughtUp(str(mark["_data"]))
                        if time.monotonic() - started < AWAIT_MS / 2000:
                            await self.pacer.pause()
                        continue
                    self.pacer.reset()
                    change = await self._change(event)
                    if change is not None:
                        yield change
        except OperationFailure as exc:
            if exc.code in _HISTORY_LOST_CODES:
                raise HistoryLost(str(exc)) from exc
            raise

    def _resume_point(self, resume_after: str | None) -> tuple[dict[str, str] | None, str | None]:
        """The token to resume after, and the event that must come first to prove continuity.

        nx-27017 silently accepts a token it no longer holds, so we resume one row
        earlier and insist on seeing the row itself again: if it was pruned, history
        was lost. MongoDB raises ChangeStreamHistoryLost by itself.
        """
        if resume_after is None:
            return None, None
        if self.position_key(resume_after) is None:
            raise HistoryLost(f"not a position of this database: {resume_after!r}")
        nx = _NX_TOKEN.fullmatch(resume_after)
        if nx is not None:
            row = int(nx.group(1))
            if row == 0:  # "before anything": nothing to see again, so nothing proves it
                raise HistoryLost("continuity from the start of nx-27017's change log cannot be proven")
            return {"_data": f"nx:{row - 1}"}, resume_after
        return {"_data": resume_after}, None

    async def _change(self, event: dict[str, Any]) -> Change | None:
        op = event.get("operationType", "")
        if op in INVALIDATING_OPS:
            raise StreamInvalidated(f"the orders collection saw {op!r}")
        position = str(event["_id"]["_data"])
        try:
            change = change_from_event(event, position)
            if change is None and op in ("update", "replace"):
                # The post-image is gone: fall back to the order as it is now.
                current = await self.get(int(event["documentKey"]["_id"]))
                if current is not None:
                    lookup = {**event, "fullDocument": {**current.to_json(), "_id": current.id}}
                    change = change_from_event(lookup, position)
            return change
        except (KeyError, ValueError, TypeError) as exc:
            log.error("skipping change %s: not an order (%s)", position, exc)
            return None

    def position_key(self, position: str) -> tuple[int, str] | None:
        """Positions of the kind this server hands out; a position of the other kind is
        not one (nx-27017 would take a MongoDB token silently and start from now)."""
        nx = _NX_TOKEN.fullmatch(position)
        if nx is not None and self._nx is not False:
            return (int(nx.group(1)), "")
        if nx is None and self._nx is not True and _MONGO_TOKEN.fullmatch(position):
            return (0, position.upper())
        return None

    # -- checkpoints -------------------------------------------------------------
    async def load_checkpoint(self, instance: str) -> str | None:
        doc = await self.state.find_one({"_id": f"checkpoint:{instance}"})
        return str(doc["position"]) if doc and isinstance(doc.get("position"), str) else None

    async def save_checkpoint(self, instance: str, position: str) -> None:
        await self.state.update_one(
            {"_id": f"checkpoint:{instance}"},
            {"$set": {"position": position, "saved_at": utc_now()}},
            upsert=True,
        )
