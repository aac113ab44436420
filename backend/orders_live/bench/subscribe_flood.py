"""``orders-live bench --attack subscribe-flood``: one Socket.IO connection that never reads
asks for snapshot after snapshot, while another client reads the REST API.

The table holds ``ORDERS`` orders. The flooding connection (the lean client, with a 4 KiB
receive buffer) connects, then sends ``subscribe`` every ``INTERVAL`` seconds for
``DURATION`` seconds, each time a filter other than the one before ({} and the three statuses
in turn: snapshots of 6,667 to 20,000 orders), and never reads a byte: every snapshot it asks
for stalls on its full socket. Meanwhile a second client calls ``GET /api/orders?limit=100``
every ``PROBE_EVERY`` seconds, from before the flood until ``AFTER`` seconds after the flooding
socket closed. Reported: the service's RSS at the start, its peak during, and ``AFTER`` seconds
after the close; the REST latency throughout. Done when: growth <= 20 MB, REST <= 100 ms.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import aiohttp

from orders_live.bench.attack_target import PeakSampler, Scratch, attacked
from orders_live.bench.stats import summary
from orders_live.client.lean_socketio import LeanSocketIO

ORDERS = 20_000
DURATION = 20.0
INTERVAL = 0.2
AFTER = 3.0
PROBE_EVERY = 0.1
STOP_GRACE = 2.0  # seconds a REST call in flight when the probe stops may still take
RECEIVE_BUFFER = 4096
FILTERS: tuple[dict[str, Any], ...] = ({}, {"status": "pending"}, {"status": "shipped"}, {"status": "delivered"})
MAX_GROWTH_MB = 20.0
MAX_REST_MS = 100.0


class RestProbe:
    """``GET /api/orders?limit=100`` every ``PROBE_EVERY`` s while running: each one's latency (ms)
    and any answer other than 200. A call in flight when the probe stops gets ``STOP_GRACE``
    seconds more; one still unanswered then counts with the time it has waited (a lower bound),
    and as a failure ``unanswered``."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url, self.headers = url, headers or {}
        self.latencies_ms: list[float] = []
        self.started_at: list[float] = []  # each call's start (time.monotonic())
        self._waiting_since: float | None = None  # the unanswered call's start (time.perf_counter())
        self.failures: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def _probe(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(headers=self.headers, timeout=timeout) as session:
            while True:
                self.started_at.append(time.monotonic())
                started = self._waiting_since = time.perf_counter()
                try:
                    async with session.get(f"{self.url}/api/orders?limit=100") as response:
                        await response.read()
                        if response.status != 200:
                            self.failures.append(str(response.status))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.failures.append(type(exc).__name__)
                elapsed = time.perf_counter() - started
                self._waiting_since = None
                self.latencies_ms.append(elapsed * 1000)
                if self._stopping:
                    return
                await asyncio.sleep(max(0.0, PROBE_EVERY - elapsed))  # the next call's tick

    def between(self, start: float, end: float) -> list[float]:
        """The latencies of the calls that started between ``start`` and ``end``."""
        return [ms for at, ms in zip(self.started_at, self.latencies_ms, strict=False) if start <= at < end]

    async def __aenter__(self) -> RestProbe:
        self._task = asyncio.create_task(self._probe(), name="bench-attack-rest-probe")
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._stopping = True
        if self._waiting_since is not None:  # a call in flight: its answer, or the grace's end
            await asyncio.wait({self._task}, timeout=STOP_GRACE)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._waiting_since is not None:
            self.latencies_ms.append((time.perf_counter() - self._waiting_since) * 1000)
            self.failures.append("unanswered")


async def flood(url: str, duration: float, interval: float) -> int:
    """Subscribe calls sent by a connection that never reads, until ``duration``; then it closes."""
    client = LeanSocketIO(url, receive_buffer=RECEIVE_BUFFER)
    await client.connect()
    sent = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < duration:
            client.emit("subscribe", FILTERS[sent % len(FILTERS)])
            sent += 1
            await asyncio.sleep(max(0.0, started + sent * interval - time.monotonic()))  # the next tick
    finally:
        await client.close()
    return sent


async def subscribe_flood(scratch: Scratch, folder: Path) -> dict[str, Any]:
    database = await scratch.fresh("subscribe_flood")
    await scratch.insert(database, ORDERS)
    async with attacked(folder, database) as service:
        await asyncio.sleep(1.0)  # start-up garbage goes, as in --orders
        start = service.resident_mb()
        async with RestProbe(service.url) as probe:
            async with PeakSampler(service.resident_mb) as peak:
                await asyncio.sleep(1.0)  # REST latency before the flood
                flooding = time.monotonic()
                sent = await flood(service.url, DURATION, INTERVAL)
                closed = time.monotonic()
            await asyncio.sleep(AFTER)  # the measure: what is left after it
            after = service.resident_mb()
        latency = summary(probe.latencies_ms)
        phases = {"before": (0.0, flooding), "during": (flooding, closed), "after": (closed, math.inf)}
        by_phase = {name: _rounded(summary(probe.between(*span))) for name, span in phases.items()}
    growth = max(peak.peak, after) - start
    return {
        "scenario": "subscribe-flood",
        "database": scratch.kind,
        "orders": ORDERS,
        "subscribes_sent": sent,
        "rss_start_mb": round(start, 1),
        "rss_peak_mb": round(peak.peak, 1),
        "rss_after_close_mb": round(after, 1),
        "rss_growth_mb": round(growth, 1),
        "rest_calls": len(probe.latencies_ms),
        "rest_failures": probe.failures,
        "rest_latency_ms": _rounded(latency),
        "rest_latency_ms_by_phase": by_phase,
        "done_when": {
            f"RSS growth <= {MAX_GROWTH_MB:g} MB": growth <= MAX_GROWTH_MB,
            f"REST <= {MAX_REST_MS:g} ms throughout": latency["max"] <= MAX_REST_MS and not probe.failures,
        },
    }


def _rounded(latency: dict[str, float]) -> dict[str, float | None]:
    """Rounded to 0.1 ms; None where there was no call (no NaN in the JSON)."""
    return {key: None if math.isnan(value) else round(value, 1) for key, value in latency.items()}
