"""Bulk inserts straight into a database, as a migration or one client's ``insert_many`` would:
the bench's preload and burst (``orders-live bench --orders N``). Not used by the service."""

from __future__ import annotations

from orders_live.domain.order import STATUSES, utc_now

BATCH = 10_000


async def insert_orders(url: str, count: int) -> None:
    """Insert ``count`` orders at ``url`` (PostgreSQL: one statement; MongoDB: ``insert_many``
    batches of 10,000, ids taken from the service's counter in one step)."""
    if url.startswith(("postgresql://", "postgres://")):
        import asyncpg

        from orders_live.sources.postgres.connection import schema_sql

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

    from orders_live.sources.mongo.connection import DEFAULT_DATABASE

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        database = client.get_default_database(DEFAULT_DATABASE)
        counter = await database["counters"].find_one_and_update(
            {"_id": "orders"}, {"$inc": {"seq": count}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        last = int(str(counter["seq"]))
        first = last - count + 1
        for start in range(first, last + 1, BATCH):
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
                    for n in range(start, min(start + BATCH, last + 1))
                ],
                ordered=False,
            )
    finally:
        await client.close()
