"""``/healthz`` (the process is up), ``/readyz`` (database answering, change feed live, every
background task running) and ``/metrics`` (the service's Prometheus registry)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orders_live.domain.source import Connection
from orders_live.hub import Hub

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StateCollector(Collector):
    """Gauges read from the service's state at each scrape."""

    def __init__(self, hub: Hub, connections: Callable[[], dict[str, int]]) -> None:
        self.hub, self.connections = hub, connections

    def collect(self) -> Iterator[GaugeMetricFamily]:
        clients = GaugeMetricFamily(
            "orders_live_connected_clients", "Clients connected, by transport.", labels=["transport"]
        )
        for transport, count in sorted(self.connections().items()):
            clients.add_metric([transport], count)
        yield clients
        subscriptions = GaugeMetricFamily(
            "orders_live_subscriptions", "Subscriptions, by filter kind.", labels=["kind"]
        )
        for kind, count in self.hub.rooms.by_kind().items():
            subscriptions.add_metric([kind], count)
        yield subscriptions
        saved_at = self.hub.checkpoints.saved_at
        yield GaugeMetricFamily(
            "orders_live_resume_position_age_seconds",
            "Seconds since the resume position was saved (-1: never).",
            value=time.time() - saved_at if saved_at else -1,
        )
        yield GaugeMetricFamily(
            "orders_live_ready",
            "1 when the change feed is live.",
            value=float(self.hub.ready and self.hub.stream_up),
        )


class Observability:
    def __init__(
        self,
        hub: Hub,
        connection: Connection,
        registry: CollectorRegistry,
        connections: Callable[[], dict[str, int]],
        more_problems: Callable[[], list[str]] = list,
    ) -> None:
        self.hub, self.connection, self.registry = hub, connection, registry
        self.more_problems = more_problems  # the service's other parts (the identity files)
        registry.register(StateCollector(hub, connections))

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/healthz", self.healthz), web.get("/readyz", self.readyz), web.get("/metrics", self.metrics)]

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "up"})

    async def readyz(self, _: web.Request) -> web.Response:
        problems = []
        try:
            await self.connection.ping()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever the driver raises: the answer is "not answering"
            problems.append(f"database: {type(exc).__name__}")
        problems.extend(self.hub.problems)
        problems.extend(self.more_problems())
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready", "position": self.hub.position})

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry),
            headers={"Content-Type": CONTENT_TYPE, "X-Content-Type-Options": "nosniff"},
        )
