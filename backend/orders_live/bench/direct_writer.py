"""The bench's external writer: updates and inserts straight to the database, from a process of
its own, as another service or mongosh would (``orders-live bench --external-writer``). Every
``INSERT_EVERY``-th write inserts a new order; the others update the given orders in turn.

    python -m orders_live.bench.direct_writer '{"url": ..., "ids": [...], "rate": 50, "duration": 10}'

Each write stamps ``product_name`` with the time it was sent (``bench <unix time>``), so the
bench's clients measure commit-to-client latency on the machine's one clock. It prints one
JSON line at the end: ``{"writes": <succeeded>, "inserts": <of them>, "late": <writes sent
behind schedule>}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from orders_live.bench.clients import STAMP  # the bench's clients read it back
from orders_live.bench.pacing import paced

CONCURRENCY = 16
INSERT_EVERY = 10

Update = Callable[[int, str], Awaitable[bool]]
Insert = Callable[[str], Awaitable[bool]]
Writer = tuple[Update, Insert, Callable[[], Awaitable[None]]]


async def _mongo(url: str) -> Writer:
    from pymongo import AsyncMongoClient, ReturnDocument

    from orders_live.domain import order_numbers
    from orders_live.domain.order import utc_now

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    database = client.get_default_database(order_numbers.DATABASE)
    orders = database["orders"]

    async def update(order_id: int, stamp: str) -> bool:
        result = await orders.update_one(
            {"_id": order_id},
            {"$set": {"product_name": stamp}, "$currentDate": {"updated_at": True}, "$inc": {"version": 1}},
        )
        return result.modified_count == 1

    async def insert(stamp: str) -> bool:
        # The id from the service's own counter, as the service takes it (ids never collide).
        counter = await database[order_numbers.COUNTERS].find_one_and_update(
            order_numbers.counter(), order_numbers.take(), upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        order = {"customer_name": "Bench insert", "product_name": stamp, "status": "pending", "version": 1}
        await orders.insert_one({"_id": order_numbers.taken(counter)[0], **order, "updated_at": utc_now()})
        return True

    return update, insert, client.close


async def _postgres(url: str) -> Writer:
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=2, max_size=CONCURRENCY)

    async def update(order_id: int, stamp: str) -> bool:
        status = await pool.execute("UPDATE orders SET product_name = $2 WHERE id = $1", order_id, stamp)
        return bool(status == "UPDATE 1")

    async def insert(stamp: str) -> bool:
        status = await pool.execute(
            "INSERT INTO orders (customer_name, product_name) VALUES ('Bench insert', $1)", stamp
        )
        return bool(status == "INSERT 0 1")

    return update, insert, pool.close


async def write(url: str, ids: list[int], rate: float, duration: float) -> dict[str, int]:
    update, insert, close = await (_postgres(url) if url.startswith("postgres") else _mongo(url))
    done = inserted = 0
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(n: int) -> None:
        nonlocal done, inserted
        async with slots:
            stamp = f"{STAMP}{time.time():.6f}"
            if n % INSERT_EVERY == INSERT_EVERY - 1:
                if await insert(stamp):
                    done, inserted = done + 1, inserted + 1
            elif await update(ids[n % len(ids)], stamp):
                done += 1

    try:
        late = await paced(rate, duration, one)
    finally:
        await close()
    return {"writes": done, "inserts": inserted, "late": late}


def main() -> None:
    config = json.loads(sys.argv[1])
    result = asyncio.run(write(config["url"], config["ids"], float(config["rate"]), float(config["duration"])))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
