"""Orders read and written in the ``orders`` collection; ids from an atomic counter."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ReturnDocument

from orders_live.domain.order import Order, OrderCreate, OrderPatch, utc_now
from orders_live.domain.source import OrderNotFound, VersionConflict
from orders_live.sources.mongo.connection import MongoConnection
from orders_live.sources.mongo.documents import order_from_document

log = logging.getLogger(__name__)


class MongoOrderStore:
    def __init__(self, connection: MongoConnection) -> None:
        self.connection = connection
        self.orders = connection.orders

    async def load_orders(self) -> list[Order]:
        orders = []
        async with self.connection.answering():
            async for doc in self.orders.find({}):
                try:
                    orders.append(order_from_document(doc))
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
        self.connection.pacer.wake()
        return order

    async def update(self, order_id: int, patch: OrderPatch, expected_version: int | None) -> Order:
        selector: dict[str, Any] = {"_id": order_id}
        if expected_version is not None:
            selector["version"] = expected_version
        async with self.connection.answering():
            doc = await self.orders.find_one_and_update(
                selector,
                {"$set": {**patch.changes(), "updated_at": utc_now()}, "$inc": {"version": 1}},
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            raise await self._refusal(order_id)
        self.connection.pacer.wake()
        return order_from_document(doc)

    async def delete(self, order_id: int, expected_version: int | None) -> None:
        selector: dict[str, Any] = {"_id": order_id}
        if expected_version is not None:
            selector["version"] = expected_version
        async with self.connection.answering():
            result = await self.orders.delete_one(selector)
        if result.deleted_count == 0:
            raise await self._refusal(order_id)
        self.connection.pacer.wake()

    async def _refusal(self, order_id: int) -> Exception:
        current = await self.get(order_id)
        return OrderNotFound(order_id) if current is None else VersionConflict(current)
