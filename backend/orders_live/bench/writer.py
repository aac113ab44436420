"""The bench's writer and the orders it writes: it updates them in turn at a fixed rate, each
write stamped with its start time (``clients.STAMP``), through the REST API or, with
``--external-writer``, straight to the database from another process
(``orders_live.bench.direct_writer``, which also inserts).

The orders: the first ``ORDERS`` of the table (created when missing) or, with customers, as
many per customer, the k-th owned by customer k mod N (``scopes.owners``), so that writing them
in turn writes to the customers in turn. ``listing`` reads the whole table back (each order's
version and customer), before and after a case.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp

from orders_live.bench.accounting import Listing
from orders_live.bench.clients import STAMP
from orders_live.bench.pacing import paced
from orders_live.bench.scopes import order_count, orders_by_customer, owners

LISTING_WAIT = 60.0  # seconds a refused listing is asked again
RETRIED = (429, 503)  # a listing refused for now
ORDERS = 50  # the writer cycles through this many orders (with customers: at least this many)


async def listing(url: str, headers: dict[str, str], within: float = LISTING_WAIT) -> Listing:
    """Every order's version and customer now (the external writer inserts too): the REST list,
    page by page. A page refused for now (429, 503: a service busy with thousands of clients
    leaving) is asked again after its ``Retry-After``, for ``within`` seconds; what the service
    answered is printed."""
    found: Listing = {}
    before: str | None = None
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            query = f"limit=1000&before={before}" if before else "limit=1000"
            try:
                async with session.get(f"{url}/api/orders?{query}") as response:
                    status, text, retry = response.status, await response.text(), response.headers.get("Retry-After")
            except aiohttp.ClientConnectionError as exc:  # a kept-alive connection the busy service closed
                if time.monotonic() >= deadline:
                    raise
                print(f"the listing's connection failed: {exc}; again")
                await asyncio.sleep(1.0)
                continue
            if status in RETRIED and time.monotonic() < deadline:
                print(f"the service refused the listing for now: {status} {text[:300]} (Retry-After {retry})")
                await asyncio.sleep(float(retry) if retry and retry.isdigit() else 1.0)
                continue
            if status != 200:
                raise RuntimeError(f"the service refused the listing: {status} {text[:500]}")
            page = json.loads(text)
            found.update((o["id"], (o["version"], o["customer_name"])) for o in page["orders"])
            before = page["next_before"]
            if before is None:
                return found


async def writer_orders(url: str, headers: dict[str, str], customers: int | None) -> list[int]:
    """The ids the writer cycles through, in its order; the orders missing are created."""
    if customers is None:
        async with aiohttp.ClientSession() as session:
            existing = (await (await session.get(f"{url}/api/orders?limit=1000")).json())["orders"]
            for n in range(len(existing), ORDERS):
                await session.post(f"{url}/api/orders", json={"customer_name": f"Bench {n}", "product_name": "-"})
            orders = (await (await session.get(f"{url}/api/orders?limit=1000")).json())["orders"]
        return sorted(o["id"] for o in orders)[:ORDERS]
    wanted = owners(customers, order_count(customers, ORDERS))
    held = orders_by_customer({k: owner for k, (_, owner) in (await listing(url, headers)).items()})
    async with aiohttp.ClientSession(headers=headers) as session:
        for customer in sorted(set(wanted)):
            for _ in range(wanted.count(customer) - len(held.get(customer, []))):
                body = {"customer_name": customer, "product_name": "-"}
                async with session.post(f"{url}/api/orders", json=body) as response:
                    if response.status != 201:
                        raise RuntimeError(f"creating an order failed: {response.status} {await response.text()}")
    held = orders_by_customer({k: owner for k, (_, owner) in (await listing(url, headers)).items()})
    return [held[customer][k // customers] for k, customer in enumerate(wanted)]


async def write_rest(url: str, headers: dict[str, str], ids: list[int], rate: float, duration: float) -> int:
    """Updates at ``rate`` per second (scheduled, not waited for), each stamped with its start
    time; how many were acknowledged."""
    done = 0
    failed: list[str] = []
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(n: int) -> None:
            nonlocal done
            body = {"product_name": f"{STAMP}{time.time():.6f}"}
            try:
                async with session.patch(f"{url}/api/orders/{ids[n % len(ids)]}", json=body) as response:
                    if response.status == 200:
                        done += 1
            except aiohttp.ClientConnectionError as exc:  # not acknowledged; the listings tell whether it was applied
                failed.append(str(exc))

        await paced(rate, duration, one)
    if failed:
        print(f"{len(failed)} writes not acknowledged, the connection failed: {failed[0]}")
    return done


async def write_externally(database_url: str, ids: list[int], rate: float, duration: float) -> int:
    """Updates and inserts, sent straight to the database by ``orders_live.bench.direct_writer``."""
    config = {"url": database_url, "ids": ids, "rate": rate, "duration": duration}
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orders_live.bench.direct_writer",
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await writer.communicate()
    if writer.returncode != 0:
        raise RuntimeError(f"the external writer failed ({writer.returncode})")
    return int(json.loads(out.decode().strip().splitlines()[-1])["writes"])
