"""How long the process stops answering: the event loop's lag, and the garbage collector's pauses.

``LoopLag.run`` (a supervised task) asks the loop to wake it every ``PERIOD`` and records how
much later than asked it woke: whatever held the loop (a long callback, a collection, a big
write) shows as lag. ``GcPauses`` times each collection through ``gc.callbacks``, by
generation, so that a lag can be told apart from a collection. Both are Prometheus histograms;
the bench reads them before and after a case.

A lag past ``LOUD`` is logged with the collection time that overlapped it, at most once per
``LOG_EVERY`` seconds (the rest are counted in the histogram).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

import prometheus_client

log = logging.getLogger(__name__)

PERIOD = 0.05  # seconds between two probes
LOUD = 0.25  # a lag worth a log line
LOG_EVERY = 60.0
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class GcPauses:
    """Each collection's duration, by generation, from ``gc.callbacks`` (installed by ``install``
    and removed by ``remove``: one per process)."""

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        self.seconds = prometheus_client.Histogram(
            "orders_live_gc_pause_seconds",
            "How long each garbage collection held the process, by generation",
            ["generation"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.total = 0.0  # seconds spent collecting since start (read by LoopLag)
        self._started = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._callback)

    def remove(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.total += took
        self.seconds.labels(str(info["generation"])).observe(took)


class LoopLag:
    def __init__(self, registry: prometheus_client.CollectorRegistry, gc_pauses: GcPauses | None = None) -> None:
        self.lag = prometheus_client.Histogram(
            "orders_live_event_loop_lag_seconds",
            f"How much later than asked the event loop ran a timer (probed every {PERIOD} s)",
            buckets=BUCKETS,
            registry=registry,
        )
        self.gc_pauses = gc_pauses
        self.worst = 0.0  # the largest lag seen since start

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        logged_at = -LOG_EVERY
        while True:
            collected = self.gc_pauses.total if self.gc_pauses is not None else 0.0
            asked = loop.time()
            await asyncio.sleep(PERIOD)
            lag = max(0.0, loop.time() - asked - PERIOD)
            self.lag.observe(lag)
            self.worst = max(self.worst, lag)
            if lag >= LOUD and loop.time() - logged_at >= LOG_EVERY:
                logged_at = loop.time()
                in_gc = (self.gc_pauses.total if self.gc_pauses is not None else 0.0) - collected
                log.warning(
                    "the event loop was held for %.0f ms (%.0f ms of it collecting garbage); "
                    "see orders_live_event_loop_lag_seconds",
                    lag * 1000,
                    in_gc * 1000,
                )
