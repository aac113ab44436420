"""Orders read and written in the ``orders`` collection; ids from an atomic counter."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from orders_live.domain import order_numbers
from orders_live.domain.order import Order, OrderCreate, OrderJson, OrderPatch, Status, utc_now
from orders_live.domain.page import Cursor, IndexRow, newest_first
from orders_live.domain.write_refusal import refusal
from orders_live.sources.mongo.connection import MongoConnection
from orders_live.sources.mongo.documents import order_from_document, parse_id, status_of, touching

INDEX_BATCH = 10_000
NEWEST_SLACK = 64  # extra rows read past a cursor's instant, for the orders that share it

log = logging.getLogger(__name__)


class MongoOrderStore:
    def __init__(self, connection: MongoConnection) -> None:
        self.connection = connection

    @property
    def orders(self) -> AsyncCollection[dict[str, Any]]:
        return self.connection.orders  # the client is built by open()

    async def index_rows(self) -> AsyncIterator[list[IndexRow]]:
        chunk: list[IndexRow] = []
        async with self.connection.answering():
            projection = {"status": 1, "version": 1, "customer_name": 1}
            cursor = self.orders.find({}, projection).batch_size(INDEX_BATCH)
            async for doc in cursor:
                status = status_of(doc)
                try:
                    order_id = parse_id(doc.get("_id"))
                except ValueError:
                    status = None
                customer = doc.get("customer_name")
                if status is None or not isinstance(doc.get("version", 1), int) or not isinstance(customer, str):
                    log.warning("skipping a document that is not an order (_id=%r)", doc.get("_id"))
                    continue
                chunk.append((order_id, status, int(doc.get("version", 1)), customer))
                if len(chunk) >= INDEX_BATCH:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    async def fetch(self, ids: Sequence[int]) -> list[OrderJson]:
        async with self.connection.answering():
            docs = await self.orders.find({"_id": {"$in": list(ids)}}).to_list()
        return self._orders_of(docs)

    async def newest(
        self, status: Status | None, before: Cursor | None, limit: int, customer: str | None = None
    ) -> list[OrderJson]:
        """Newest first. Past a cursor this reads ``updated_at <= instant`` (a range the
        ``updated_at`` index serves, on nx-27017 too: its ``$or`` form scans) and drops the
        orders at the cursor's instant that are not older than it, reading more if a run of
        equal instants filled the batch. ``status`` and ``customer`` are compared as strings."""
        selector: dict[str, Any] = {} if status is None else {"status": str(status)}
        if customer is not None:
            selector["customer_name"] = str(customer)
        if before is not None:
            selector["updated_at"] = {"$lte": before.updated_at}
        wanted = limit if before is None else limit + NEWEST_SLACK
        while True:
            async with self.connection.answering():
                docs = await self.orders.find(selector).sort([("updated_at", -1), ("_id", -1)]).limit(wanted).to_list()
            orders = self._orders_of(docs)
            if before is not None:
                orders = [o for o in orders if newest_first(o) < before.key]
            if len(orders) >= limit or len(docs) < wanted:
                return orders[:limit]
            wanted *= 4

    @staticmethod
    def _orders_of(docs: list[dict[str, Any]]) -> list[OrderJson]:
        orders = []
        for doc in docs:
            try:
                orders.append(order_from_document(doc).to_json())
            except (KeyError, ValueError) as exc:
                log.warning("skipping a document that is not an order (_id=%r): %s", doc.get("_id"), exc)
        return orders

    async def get(self, order_id: int) -> Order | None:
        async with self.connection.answering():
            doc = await self.orders.find_one({"_id": order_id})
        return order_from_document(doc) if doc else None

    async def create(self, data: OrderCreate) -> Order:
        async with self.connection.answering():
            counter = await self.connection.counters.find_one_and_update(
                order_numbers.counter(), order_numbers.take(), upsert=True, return_document=ReturnDocument.AFTER
            )
            assert counter is not None
            order = Order(id=order_numbers.taken(counter)[0], updated_at=utc_now(), version=1, **data.model_dump())
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
        self.connection.pacer.wake()
        return order

    async def update(
        self, order_id: int, patch: OrderPatch, expected_version: int | None, owner: str | None = None
    ) -> Order:
        selector: dict[str, Any] = {"_id": order_id}
        if expected_version is not None:
            selector["version"] = expected_version
        if owner is not None:
            selector["customer_name"] = str(owner)
        async with self.connection.answering():
            doc = await self.orders.find_one_and_update(
                selector,
                touching({"$set": patch.changes(), "$inc": {"version": 1}}, bool(self.connection.nx)),
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            raise refusal(order_id, await self.get(order_id), owner)
        self.connection.pacer.wake()
        return order_from_document(doc)

    async def delete(self, order_id: int, expected_version: int | None) -> None:
        selector: dict[str, Any] = {"_id": order_id}
        if expected_version is not None:
            selector["version"] = expected_version
        async with self.connection.answering():
            result = await self.orders.delete_one(selector)
        if result.deleted_count == 0:
            raise refusal(order_id, await self.get(order_id))
        self.connection.pacer.wake()
