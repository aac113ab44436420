"""``orders-live bench --write-cost --database-url postgresql://…``: what the change log's
triggers cost each write.

Single-row UPDATEs through asyncpg, one connection and then several at once, with the
orders-live triggers on and then off (``ALTER TABLE … DISABLE TRIGGER USER``), in a scratch
schema that holds its own copy of the whole schema (``orders`` and its log), so the service's
tables are never touched. The deferred trigger that numbers commits holds a lock until each
commit is visible, so commits are serialised: the concurrent case shows what that costs.
(The lock is the one the real tables use: measure on a database no one is writing to.)
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import asyncpg

from orders_live.bench.schema import schema_sql

SCHEMA = "orders_live_bench"
SCRATCH = "orders"  # in SCHEMA
ROWS = 50
SETTINGS = {"search_path": SCHEMA}


async def _prepare(url: str) -> None:
    db = await asyncpg.connect(url)
    try:
        await db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await db.execute(f"CREATE SCHEMA {SCHEMA}")
    finally:
        await db.close()
    db = await asyncpg.connect(url, server_settings=SETTINGS)
    try:
        await db.execute(schema_sql())
        await db.execute(
            f"INSERT INTO {SCRATCH} (customer_name, product_name) SELECT 'Bench', 'P' FROM generate_series(1, $1)",
            ROWS,
        )
    finally:
        await db.close()


async def _writes(url: str, connections: int, seconds: float, triggers: bool) -> dict[str, Any]:
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections, server_settings=SETTINGS)
    assert pool is not None
    try:
        async with pool.acquire() as db:
            await db.execute(f"ALTER TABLE {SCRATCH} {'ENABLE' if triggers else 'DISABLE'} TRIGGER USER")
        latencies: list[float] = []
        stop = time.monotonic() + seconds

        async def writer(n: int) -> None:
            async with pool.acquire() as db:
                i = n
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    await db.execute(f"UPDATE {SCRATCH} SET product_name = $1 WHERE id = $2", f"P{i}", i % ROWS + 1)
                    latencies.append(time.perf_counter() - started)
                    i += connections

        started = time.monotonic()
        await asyncio.gather(*(writer(n) for n in range(connections)))
        window = time.monotonic() - started
    finally:
        await pool.close()
    latencies.sort()
    return {
        "connections": connections,
        "triggers": triggers,
        "writes_per_s": len(latencies) / window,
        "median_us": statistics.median(latencies) * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
    }


async def measure_write_cost(url: str, seconds: float = 5.0) -> list[dict[str, Any]]:
    await _prepare(url)
    results = []
    try:
        for connections in (1, 8):
            for triggers in (False, True):
                results.append(await _writes(url, connections, seconds, triggers))
    finally:
        db = await asyncpg.connect(url)
        try:
            await db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        finally:
            await db.close()
    return results


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| connections | orders-live triggers | writes/s | median µs | p99 µs |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['connections']} | {'on' if r['triggers'] else 'off'} | {r['writes_per_s']:.0f} | "
            f"{r['median_us']:.0f} | {r['p99_us']:.0f} |"
        )
    return "\n".join(lines) + "\n"
