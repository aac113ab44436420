"""Bulk inserts straight into a database through its driver, as a migration or one client's
``insert_many`` would: the bench's preload and burst (``orders-live bench --orders N``)."""

from __future__ import annotations

from orders_live.bench.schema import schema_sql
from orders_live.domain import order_numbers
from orders_live.domain.order import STATUSES, utc_now

BATCH = 10_000


async def insert_orders(url: str, count: int) -> None:
    """Insert ``count`` orders at ``url`` (PostgreSQL: the schema, then one statement; MongoDB:
    ``insert_many`` batches of 10,000, ids taken from the service's counter in one step)."""
    if url.startswith(("postgresql://", "postgres://")):
        import asyncpg

        db = await asyncpg.connect(url)
        try:
            await db.execute(schema_sql())
            await db.execute(
                "INSERT INTO orders (customer_name, product_name, status)"
                " SELECT 'Customer ' || n, 'Product ' || (n % 97),"
                " (ARRAY['pending', 'shipped', 'delivered'])[1 + n % 3]"
                " FROM generate_series(1, $1) AS n",
                count,
            )
        finally:
            await db.close()
        return
    from pymongo import AsyncMongoClient, ReturnDocument

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        database = client.get_default_database(order_numbers.DATABASE)
        counter = await database[order_numbers.COUNTERS].find_one_and_update(
            order_numbers.counter(), order_numbers.take(count), upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        ids = order_numbers.taken(counter, count)
        for start in range(ids.start, ids.stop, BATCH):
            now = utc_now()
            await database["orders"].insert_many(
                [
                    {
                        "_id": n,
                        "customer_name": f"Customer {n}",
                        "product_name": f"Product {n % 97}",
                        "status": STATUSES[n % 3],
                        "updated_at": now,
                        "version": 1,
                    }
                    for n in range(start, min(start + BATCH, ids.stop))
                ],
                ordered=False,
            )
    finally:
        await client.close()
