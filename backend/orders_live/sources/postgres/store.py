"""Orders read and written in the ``orders`` table; the table's triggers keep ``version`` and
``updated_at`` and log each change. Every statement is parameterised."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import asyncpg

from orders_live.domain.order import Order, OrderCreate, OrderJson, OrderPatch, Status, UnreadableName, known_status
from orders_live.domain.page import Cursor, IndexRow
from orders_live.domain.write_refusal import refusal
from orders_live.sources.postgres.connection import PostgresConnection
from orders_live.sources.postgres.documents import ORDER_COLUMNS, order_from_row

INDEX_BATCH = 10_000
# The table's constraints that names be readable (sql/schema.sql), by the field each checks.
_READABLE = {f"orders_{field}_readable": field for field in ("customer_name", "product_name")}


def _newest(customer: bool, status: bool, cursor: bool) -> str:
    """One of the eight forms of the newest-first page (with or without a customer, a status,
    a cursor): a fixed text, the values are parameters, in that order."""
    conditions, n = [], 0
    if customer:
        n += 1
        conditions.append(f"customer_name = ${n}")
    if status:
        n += 1
        conditions.append(f"status = ${n}")
    if cursor:
        conditions.append(f"(updated_at, id) < (${n + 1}, ${n + 2})")
        n += 2
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT {ORDER_COLUMNS} FROM orders{where} ORDER BY updated_at DESC, id DESC LIMIT ${n + 1}"


_NEWEST = {(c, s, k): _newest(c, s, k) for c in (False, True) for s in (False, True) for k in (False, True)}

_UPDATE = f"""
UPDATE orders SET
    customer_name = COALESCE($2, customer_name),
    product_name = COALESCE($3, product_name),
    status = COALESCE($4, status)
WHERE id = $1 AND ($5::bigint IS NULL OR version = $5) AND ($6::text IS NULL OR customer_name = $6)
RETURNING {ORDER_COLUMNS}
"""


class PostgresOrderStore:
    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection

    async def index_rows(self) -> AsyncIterator[list[IndexRow]]:
        """In chunks by id (each one index range), so that no chunk holds the table."""
        after = 0
        while True:
            async with self.connection.answering() as db:
                rows = await db.fetch(
                    "SELECT id, status, version, customer_name FROM orders WHERE id > $1 ORDER BY id LIMIT $2",
                    after,
                    INDEX_BATCH,
                )
            chunk: list[IndexRow] = []
            for order_id, status, version, customer in rows:
                known = known_status(status)
                if known is not None:  # the table's CHECK makes this always so
                    chunk.append((order_id, known, version, customer))
            if chunk:
                yield chunk
            if len(rows) < INDEX_BATCH:
                return
            after = rows[-1][0]

    async def fetch(self, ids: Sequence[int]) -> list[OrderJson]:
        async with self.connection.answering() as db:
            rows = await db.fetch(f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = ANY($1::bigint[])", list(ids))
        return [order_from_row(row).to_json() for row in rows]

    async def newest(
        self, status: Status | None, before: Cursor | None, limit: int, customer: str | None = None
    ) -> list[OrderJson]:
        args: list[object] = [value for value in (customer, status) if value is not None]
        if before is not None:
            args += [before.updated_at, before.id]
        statement = _NEWEST[(customer is not None, status is not None, before is not None)]
        async with self.connection.answering() as db:
            rows = await db.fetch(statement, *args, limit)
        return [order_from_row(row).to_json() for row in rows]

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

    async def update(
        self, order_id: int, patch: OrderPatch, expected_version: int | None, owner: str | None = None
    ) -> Order:
        try:
            async with self.connection.answering() as db:
                row = await db.fetchrow(
                    _UPDATE, order_id, patch.customer_name, patch.product_name, patch.status, expected_version, owner
                )
        except asyncpg.CheckViolationError as exc:
            field = _READABLE.get(exc.constraint_name or "")
            if field is None:
                raise
            raise UnreadableName(field) from None  # a row stored before the rule keeps its name
        if row is None:
            raise refusal(order_id, await self.get(order_id), owner)
        return order_from_row(row)

    async def delete(self, order_id: int, expected_version: int | None) -> None:
        async with self.connection.answering() as db:
            deleted = await db.fetchval(
                "DELETE FROM orders WHERE id = $1 AND ($2::bigint IS NULL OR version = $2) RETURNING id",
                order_id,
                expected_version,
            )
        if deleted is None:
            raise refusal(order_id, await self.get(order_id))
