"""What forged catch-up positions cost others: ``python -m orders_live.bench.catch_up_cost``.

The service runs as its own process on the database at ``--database-url`` (PostgreSQL or
MongoDB / nx-27017), which this script fills with a change log of ``--changes`` changes
(``--inserts`` orders in one statement, then updates of ``--batch`` orders per statement).
Halfway through, a reconnecting client takes its position from ``GET /api/orders``. Then, all at
once: ``--forged`` polls for an order that does not exist from the oldest position (``since``
of the log's first commit), and the reconnecting client's SSE catch-up (``status=shipped``)
from its position. Each one's time to answer is printed, as JSON. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from orders_live.bench.balancer import free_port

NO_SUCH_ORDER = 2**63 - 1


async def seed(url: str, inserts: int, updates: int, batch: int) -> None:
    """``inserts`` orders in one statement, then ``updates`` changes, ``batch`` per statement."""
    if url.startswith(("postgresql://", "postgres://")):
        import asyncpg

        db = await asyncpg.connect(url)
        try:
            if inserts:
                await db.execute(
                    "INSERT INTO orders (customer_name, product_name, status)"
                    " SELECT 'Customer ' || n, 'Product ' || n, 'pending' FROM generate_series(1, $1) AS n",
                    inserts,
                )
            first, total = await db.fetchrow("SELECT min(id), count(*) FROM orders")
            for done in range(0, updates, batch):
                low = first + done % total
                await db.execute(
                    "UPDATE orders SET status = CASE status WHEN 'pending' THEN 'shipped' ELSE 'pending' END"
                    " WHERE id >= $1 AND id < $2",
                    low,
                    low + min(batch, updates - done),
                )
        finally:
            await db.close()
        return
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        orders = client.get_default_database("orders_live")["orders"]
        if inserts:
            base = 10_000_000
            await orders.insert_many(
                [
                    {
                        "_id": base + n,
                        "customer_name": f"Customer {n}",
                        "product_name": f"Product {n}",
                        "status": "pending",
                        "updated_at": time.time(),
                        "version": 1,
                    }
                    for n in range(inserts)
                ]
            )
        ids = sorted([doc["_id"] async for doc in orders.find({}, {"_id": 1})])
        for done in range(0, updates, batch):
            chunk = ids[done % len(ids) :][: min(batch, updates - done)]
            await orders.update_many({"_id": {"$in": chunk}}, {"$inc": {"version": 1}})
    finally:
        await client.close()


async def timed(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    started = time.monotonic()
    async with session.get(url) as response:
        if response.content_type == "text/event-stream":
            outcome = "no end"
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("event: ") and line[7:] in ("caught_up", "resync", "error"):
                    outcome = line[7:]
                    break
        else:
            body = await response.json()
            outcome = f"{response.status} {body.get('resync') or body.get('code') or 'replayed'}"
    return {"seconds": round(time.monotonic() - started, 3), "outcome": outcome}


async def run(url: str, changes: int, inserts: int, batch: int, forged: int, folder: Path) -> dict[str, Any]:
    port = free_port()
    environment = {**os.environ, "ORDERS_LIVE_LOG_LEVEL": "WARNING"}
    log = (folder / "serve.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "orders_live", "serve", "--port", str(port), "--database-url", url),
        *("--data-dir", str(folder)),
        stdout=log,
        stderr=log,
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await _until_ready(session, base)
            started = time.monotonic()
            updates = changes - inserts
            await seed(url, inserts, updates // 2, batch)
            async with session.get(f"{base}/api/orders?limit=1") as response:
                reconnecting_at = (await response.json())["position"]
            first = await _first_position(session, base)
            await seed(url, 0, updates - updates // 2, batch)
            await _until_settled(session, base)
            seeded = time.monotonic() - started
            polls = [timed(session, f"{base}/api/changes?id={NO_SUCH_ORDER}&since={first}") for _ in range(forged)]
            # The reconnecting client comes from another address than the forger (all of 127/8 is local).
            other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(connector=other) as elsewhere:
                stream = f"{base}/api/changes/stream?status=shipped&since={reconnecting_at}"
                results = await asyncio.gather(*polls, timed(elsewhere, stream))
    finally:
        await stop_process_async(process)
        log.close()
    return {
        "database": url.split("://", 1)[0],
        "changes": changes,
        "seeded_s": round(seeded, 1),
        "forged_since": first,
        "forged_polls": results[:-1],
        "reconnecting_since": reconnecting_at,
        "reconnecting_sse_catch_up": results[-1],
    }


async def _until_ready(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the service did not become ready")


async def _first_position(session: aiohttp.ClientSession, base: str) -> str:
    """The log's oldest position of its kind: what a forger would try first."""
    async with session.get(f"{base}/api/orders?limit=1") as response:
        position = str((await response.json())["position"])
    return "pg:1" if position.startswith("pg:") else "nx:1" if position.startswith("nx:") else position


async def _until_settled(session: aiohttp.ClientSession, base: str) -> None:
    """Until the service's position stops moving (it has applied the whole seed)."""
    last = None
    while True:
        async with session.get(f"{base}/api/orders?limit=1") as response:
            position = (await response.json())["position"]
        if position == last:
            return
        last = position
        await asyncio.sleep(1.0)


async def stop_process_async(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orders_live.bench.catch_up_cost", description=__doc__)
    parser.add_argument("--database-url", required=True, help="an empty PostgreSQL or MongoDB database")
    parser.add_argument("--changes", type=int, default=50_000)
    parser.add_argument("--inserts", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--forged", type=int, default=4)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="catch-up-cost-") as folder:
        result = asyncio.run(
            run(options.database_url, options.changes, options.inserts, options.batch, options.forged, Path(folder))
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
