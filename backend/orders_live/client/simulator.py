"""``orders-live simulate``: a believable stream of orders moving through their life."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque

from orders_live.client.rest import ApiRefused, OrdersClient

log = logging.getLogger(__name__)

CUSTOMERS = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Katherine Johnson",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Ken Thompson",
    "Radia Perlman",
]
PRODUCTS = [
    "Mechanical keyboard",
    "USB-C dock",
    '27" monitor',
    "Noise-cancelling headphones",
    "Standing desk",
    "Ergonomic chair",
    "Webcam",
    "Laptop stand",
    "Desk lamp",
    "NVMe SSD",
]
KEEP_DELIVERED = 25  # older delivered orders are archived (deleted) to keep the demo table short


class Simulator:
    def __init__(self, client: OrdersClient, rate: float, seed: int | None = None) -> None:
        self.client, self.rate = client, rate
        self.rng = random.Random(seed)
        self.pending: deque[int] = deque()
        self.shipped: deque[int] = deque()
        self.delivered: deque[int] = deque()
        self.writes = 0

    async def run(self, count: int | None = None) -> None:
        while count is None or self.writes < count:
            try:
                await self.step()
            except ApiRefused as exc:
                log.info("simulator: %s", exc)  # someone else changed that order: fine
            await asyncio.sleep(self.rng.expovariate(self.rate))

    async def step(self) -> None:
        rng = self.rng
        self.writes += 1
        if len(self.delivered) > KEEP_DELIVERED:
            await self.client.delete(self.delivered.popleft())
        elif len(self.pending) < 3 or rng.random() < 0.35:
            order = await self.client.create(rng.choice(CUSTOMERS), rng.choice(PRODUCTS))
            self.pending.append(order["id"])
        elif self.shipped and rng.random() < 0.5:
            order_id = self.shipped.popleft()
            await self.client.update(order_id, status="delivered")
            self.delivered.append(order_id)
        elif rng.random() < 0.08:
            await self.client.delete(self.pending.popleft())  # cancelled before shipping
        else:
            order_id = self.pending.popleft()
            await self.client.update(order_id, status="shipped")
            self.shipped.append(order_id)
