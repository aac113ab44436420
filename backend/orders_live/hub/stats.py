"""What the hub measures as changes go by, as Prometheus metrics in the service's registry."""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from orders_live.domain.change import Change

FANOUT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)


class HubStats:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.changes_in = Counter("orders_live_changes_in", "Changes read from the change stream.", registry=registry)
        self.changes_out = Counter(
            "orders_live_changes_out", "Changes handed to subscribers (one per subscription).", registry=registry
        )
        self.fanout = Histogram(
            "orders_live_fanout_seconds",
            "Time to hand one change to every subscriber (a read's fan-out, shared by its changes).",
            buckets=FANOUT_BUCKETS,
            registry=registry,
        )
        self.read_batch = Histogram(
            "orders_live_fanout_batch_changes",
            "Changes fanned out together (read together, or applied since the last fan-out).",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=registry,
        )
        self.stream_lag = Gauge(
            "orders_live_change_stream_lag_seconds",
            "From the last change's wall time to its fan-out (on nx-27017, from when it was read).",
            registry=registry,
        )
        self.catch_up_changes_read = Counter(
            "orders_live_catch_up_changes_read",
            "Changes the database's log sent for catch-ups from positions older than memory (its filter applied).",
            registry=registry,
        )
        self.resyncs = Counter("orders_live_resyncs", "Resyncs sent, by reason.", ["reason"], registry=registry)
        self.task_deaths = Counter(
            "orders_live_task_deaths", "Background tasks that died and were restarted.", ["task"], registry=registry
        )

    def fanned_out_read(self, seconds: float, changes: list[Change], deliveries: int) -> None:
        """One fan-out of ``changes`` (read together): ``deliveries`` handed to subscribers."""
        self.changes_in.inc(len(changes))
        if deliveries:
            self.changes_out.inc(deliveries)
        share = seconds / len(changes)
        for _ in changes:
            self.fanout.observe(share)
        self.read_batch.observe(len(changes))
        committed = datetime.fromisoformat(changes[-1].committed_at.replace("Z", "+00:00")).timestamp()
        self.stream_lag.set(max(0.0, time.time() - committed))

    def resynced(self, reason: str) -> None:
        self.resyncs.labels(reason).inc()
