"""``/healthz`` (the process is up), ``/readyz`` (database answering, change feed live, every
background task running) and ``/metrics`` (the service's Prometheus registry).

``/readyz`` tells the public only ``{"ready": true|false}`` (200 or 503); its details (the
position, or the problems) go to a request that carries the metrics token
(``Authorization: Bearer``), or, when no metrics token is set, to loopback peers. ``/metrics``
needs the metrics token when one is set. A wrong token gets 401 on both. The database is
pinged at most once a second however often ``/readyz`` is asked (``DatabasePing``).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orders_live.domain.source import Connection
from orders_live.hub import Hub
from orders_live.transports.access import is_loopback
from orders_live.transports.http.access import bearer_token
from orders_live.transports.http.errors import ApiError
from orders_live.transports.http.readiness import DatabasePing

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
        metrics_token: str | None = None,
        worker: int | None = None,
    ) -> None:
        """``worker``: this process's number under ``serve --workers``: ``/metrics`` shows it as
        ``orders_live_worker_info{worker, pid}`` and ``/readyz``'s details as ``worker``."""
        self.hub, self.registry = hub, registry
        self.worker = worker
        self.database = DatabasePing(connection)
        self.more_problems = more_problems  # the service's other parts (the identity files)
        self.metrics_token = metrics_token
        registry.register(StateCollector(hub, connections))
        if worker is not None:
            info = Info(
                "orders_live_worker", "The worker of serve --workers that answered, and its pid.", registry=registry
            )
            info.info({"worker": str(worker), "pid": str(os.getpid())})

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/healthz", self.healthz), web.get("/readyz", self.readyz), web.get("/metrics", self.metrics)]

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "up"})

    async def readyz(self, request: web.Request) -> web.Response:
        details = self._details_allowed(request)
        database = await self.database.problem_now()
        problems = [database] if database else []
        problems.extend(self.hub.problems)
        problems.extend(self.more_problems())
        status = 503 if problems else 200
        if not details:
            return web.json_response({"ready": not problems}, status=status)
        worker = {} if self.worker is None else {"worker": self.worker}
        if problems:
            body = {"ready": False, "status": "not ready", "problems": problems, **worker}
            return web.json_response(body, status=status)
        return web.json_response({"ready": True, "status": "ready", "position": self.hub.position, **worker})

    async def metrics(self, request: web.Request) -> web.Response:
        if self.metrics_token is not None and not self._token_given(request):
            raise _unauthorized("the metrics token is required (Authorization: Bearer)")
        return web.Response(
            body=generate_latest(self.registry),
            headers={"Content-Type": CONTENT_TYPE, "X-Content-Type-Options": "nosniff"},
        )

    def _details_allowed(self, request: web.Request) -> bool:
        """With a metrics token set: the request carries it (a wrong one: 401). Without one:
        the peer is loopback (behind a proxy on the same machine, every client is)."""
        if self.metrics_token is None:
            return is_loopback(request.remote)
        if bearer_token(request) is None:
            return False
        if self._token_given(request):
            return True
        raise _unauthorized("this is not the metrics token")

    def _token_given(self, request: web.Request) -> bool:
        token, expected = bearer_token(request), self.metrics_token
        return token is not None and expected is not None and hmac.compare_digest(token.encode(), expected.encode())


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
