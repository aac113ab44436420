"""Orders read and written in the ``orders`` table; the table's triggers keep ``version`` and
``updated_at`` and log each change. Every statement is parameterised."""

from __future__ import annotations

from orders_live.domain.order import Order, OrderCreate, OrderPatch
from orders_live.domain.source import OrderNotFound, VersionConflict
from orders_live.sources.postgres.connection import PostgresConnection
from orders_live.sources.postgres.documents import ORDER_COLUMNS, order_from_row

_UPDATE = f"""
UPDATE orders SET
    customer_name = COALESCE($2, customer_name),
    product_name = COALESCE($3, product_name),
    status = COALESCE($4, status)
WHERE id = $1 AND ($5::bigint IS NULL OR version = $5)
RETURNING {ORDER_COLUMNS}
"""


class PostgresOrderStore:
    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection

    async def load_orders(self) -> list[Order]:
        async with self.connection.answering() as db:
            rows = await db.fetch(f"SELECT {ORDER_COLUMNS} FROM orders")
        return [order_from_row(row) for row in rows]

    async def get(self, order_id: int) -> Order | None:
        async with self.connection.answering() as db:
            row = await db.fetchrow(f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1", order_id)
        return order_from_row(row) if row is not None else None

    async def create(self, data: OrderCreate) -> Order:
        async with self.connection.answering() as db:
            row = await db.fetchrow(
                f"INSERT INTO orders (customer_name, product_name, status) VALUES ($1, $2, $3)"
                f" RETURNING {ORDER_COLUMNS}",
                data.customer_name,
                data.product_name,
                data.status,
            )
        return order_from_row(row)

    async def update(self, order_id: int, patch: OrderPatch, expected_version: int | None) -> Order:
        async with self.connection.answering() as db:
            row = await db.fetchrow(
                _UPDATE, order_id, patch.customer_name, patch.product_name, patch.status, expected_version
            )
        if row is None:
            raise await self._refusal(order_id)
        return order_from_row(row)

    async def delete(self, order_id: int, expected_version: int | None) -> None:
        async with self.connection.answering() as db:
            deleted = await db.fetchval(
                "DELETE FROM orders WHERE id = $1 AND ($2::bigint IS NULL OR version = $2) RETURNING id",
                order_id,
                expected_version,
            )
        if deleted is None:
            raise await self._refusal(order_id)

    async def _refusal(self, order_id: int) -> Exception:
        current = await self.get(order_id)
        return OrderNotFound(order_id) if current is None else VersionConflict(current)
