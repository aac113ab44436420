"""``orders-live bench --attack forged-polls``: catch-ups from forged positions, and what they
cost another client's.

The log holds ``CHANGES`` changes: ``INSERTS`` orders (one bulk insert, before the service
starts), then updates of ``BATCH`` orders per statement (PostgreSQL: each order's status flips
between pending and shipped; nx-27017 / MongoDB: its version goes up). Halfway through the
updates a reconnecting client takes its position from ``GET /api/orders``; after them it comes
back, from another address (127.0.0.2), with an SSE catch-up (``status=shipped``) from that
position, while ``FORGED`` polls ask at once for an order that does not exist from the log's
first position (``pg:1``, ``nx:1``). Then the same catch-up runs alone, for comparison.
Reported: each poll's time and answer, the contested catch-up's and the lone one's, with how
each ended (``caught_up``, or a ``resync`` and its reason: 20,000 changes back is more than
nx-27017's budget allows, so there the answer is a prompt ``too_far_behind``). Done when: each
forged poll <= 1 s, the contested catch-up answered <= 1.5 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from orders_live.bench.attack_target import Scratch, attacked, since

CHANGES = 50_000
INSERTS = 10_000
BATCH = 1_000
FORGED = 4
NO_SUCH_ORDER = 2**63 - 1
MAX_FORGED_S = 1.0
MAX_CATCH_UP_S = 1.5
ENDINGS = ("caught_up", "resync", "error")  # SSE events that end a catch-up


async def update(url: str, first: int, count: int) -> None:
    """``count`` updates, ``BATCH`` orders a statement, going round the orders from ``first``."""
    if url.startswith(("postgresql://", "postgres://")):
        import asyncpg

        db = await asyncpg.connect(url)
        try:
            low = await db.fetchval("SELECT min(id) FROM orders")
            for done in range(first, first + count, BATCH):
                start = low + done % INSERTS
                await db.execute(
                    "UPDATE orders SET status = CASE status WHEN 'pending' THEN 'shipped' ELSE 'pending' END"
                    " WHERE id >= $1 AND id < $2",
                    start,
                    start + min(BATCH, first + count - done),
                )
        finally:
            await db.close()
        return
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        orders = client.get_default_database("orders_live")["orders"]
        ids = sorted([doc["_id"] async for doc in orders.find({}, {"_id": 1})])
        for done in range(first, first + count, BATCH):
            chunk = ids[done % len(ids) :][: min(BATCH, first + count - done)]
            await orders.update_many({"_id": {"$in": chunk}}, {"$inc": {"version": 1}})
    finally:
        await client.close()


async def timed(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """One poll's or catch-up's seconds, status and outcome (a poll's answer, the stream's end)."""
    started = time.monotonic()
    outcome = "no end"
    try:
        async with session.get(url) as response:
            if response.content_type == "text/event-stream":
                async for raw in response.content:
                    line = raw.decode().strip()
                    if line.startswith("event: ") and line[7:] in ENDINGS:
                        outcome = line[7:]
                    elif line.startswith("data: ") and outcome in ENDINGS:
                        reason = json.loads(line[6:]).get("reason") if outcome != "caught_up" else None
                        outcome += f" {reason}" if reason else ""
                        break
            else:
                body = await response.json()
                outcome = str(body.get("resync") or body.get("code") or f"{len(body.get('changes', []))} changes")
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, outcome = 0, type(exc).__name__
    return {"seconds": since(started), "status": status, "outcome": outcome}


async def position(session: aiohttp.ClientSession, base: str) -> str:
    async with session.get(f"{base}/api/orders?limit=1") as response:
        return str((await response.json())["position"])


async def settled(session: aiohttp.ClientSession, base: str) -> str:
    """The service's position once it stops moving (it has read the whole log)."""
    last = None
    while True:
        now = await position(session, base)
        if now == last:
            return now
        last = now
        await asyncio.sleep(1.0)  # the next look


def first_position(example: str) -> str:
    """The oldest position of ``example``'s kind (``pg:1``, ``nx:1``): what a forger tries first."""
    kind, colon, _ = example.partition(":")
    return f"{kind}:1" if colon and kind in ("pg", "nx") else example


async def forged_polls(scratch: Scratch, folder: Path) -> dict[str, Any]:
    database = await scratch.fresh("forged_polls")
    await scratch.insert(database, INSERTS)
    timeout = aiohttp.ClientTimeout(total=120)
    async with attacked(folder, database) as service, aiohttp.ClientSession(timeout=timeout) as session:
        base, updates = service.url, CHANGES - INSERTS
        started = time.monotonic()
        await update(database, 0, updates // 2)
        reconnecting_at = await settled(session, base)
        await update(database, updates // 2, updates - updates // 2)
        head = await settled(session, base)
        seeded = since(started)
        forged = first_position(head)
        poll = f"{base}/api/changes?id={NO_SUCH_ORDER}&since={forged}"
        stream = f"{base}/api/changes/stream?status=shipped&since={reconnecting_at}"
        elsewhere = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))  # another client, another address
        async with aiohttp.ClientSession(connector=elsewhere, timeout=timeout) as other:
            *polls, contested = await asyncio.gather(
                *(timed(session, poll) for _ in range(FORGED)), timed(other, stream)
            )
            alone = await timed(other, stream)
    slowest = max(p["seconds"] for p in polls)
    return {
        "scenario": "forged-polls",
        "database": scratch.kind,
        "changes": CHANGES,
        "seeded_s": seeded,
        "forged_since": forged,
        "forged_polls": polls,
        "reconnecting_since": reconnecting_at,
        "head": head,
        "catch_up_contested": contested,
        "catch_up_alone": alone,
        "done_when": {
            f"each forged poll <= {MAX_FORGED_S:g} s": slowest <= MAX_FORGED_S,
            f"the other's catch-up answered <= {MAX_CATCH_UP_S:g} s": contested["seconds"] <= MAX_CATCH_UP_S,
        },
    }
