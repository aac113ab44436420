"""``/healthz`` (the process is up), ``/readyz`` (database reachable, change stream running)
and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from orders_live.domain.source import ChangeSource
from orders_live.hub.hub import Hub
from orders_live.hub.stats import FANOUT_BUCKETS
from orders_live.transports.client_queue import ClientQueue


class Observability:
    def __init__(self, hub: Hub, source: ChangeSource, connections: Callable[[], dict[str, int]]) -> None:
        self.hub, self.source, self.connections = hub, source, connections

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/healthz", self.healthz), web.get("/readyz", self.readyz), web.get("/metrics", self.metrics)]

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "up"})

    async def readyz(self, _: web.Request) -> web.Response:
        problems = []
        try:
            await self.source.ping()
        except Exception as exc:
            problems.append(f"database: {type(exc).__name__}")
        if not self.hub.ready:
            problems.append("change feed: not live yet")
        elif not self.hub.stream_up:
            problems.append("change feed: the change stream is not answering")
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready", "position": self.hub.position})

    async def metrics(self, _: web.Request) -> web.Response:
        hub, stats = self.hub, self.hub.stats
        lines: list[str] = []

        def metric(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP orders_live_{name} {text}")
            lines.append(f"# TYPE orders_live_{name} {kind}")
            lines.extend(f"orders_live_{name}{labels} {value:g}" for labels, value in samples)

        metric(
            "connected_clients",
            "gauge",
            "Clients connected, by transport.",
            [(f'{{transport="{k}"}}', v) for k, v in sorted(self.connections().items())],
        )
        kinds = {"all": 0, "status": 0, "id": 0}
        for room, subscribers in hub.rooms.items():
            kinds["all" if room == "all" else room.split(":", 1)[0]] += len(subscribers)
        metric(
            "subscriptions",
            "gauge",
            "Subscriptions, by filter kind.",
            [(f'{{kind="{k}"}}', v) for k, v in kinds.items()],
        )
        metric("changes_in_total", "counter", "Changes read from the change stream.", [("", hub.changes_in)])
        metric(
            "changes_out_total",
            "counter",
            "Changes handed to subscribers (one per subscription).",
            [("", hub.deliveries)],
        )
        cumulative, buckets = 0, []
        for bound, count in zip((*FANOUT_BUCKETS, float("inf")), stats.fanout_counts, strict=True):
            cumulative += count
            buckets.append((f'_bucket{{le="{"+Inf" if bound == float("inf") else f"{bound:g}"}"}}', cumulative))
        metric(
            "fanout_seconds",
            "histogram",
            "Time to hand one change to every subscriber.",
            [*buckets, ("_sum", stats.fanout_sum), ("_count", cumulative)],
        )
        metric(
            "change_stream_lag_seconds",
            "gauge",
            "From the last change's wall time to its fan-out (on nx-27017, from when it was read).",
            [("", stats.stream_lag)],
        )
        age = time.time() - stats.checkpoint_saved_at if stats.checkpoint_saved_at else -1
        metric(
            "resume_position_age_seconds",
            "gauge",
            "Seconds since the resume position was saved (-1: never).",
            [("", age)],
        )
        metric(
            "resyncs_total",
            "counter",
            "Resyncs sent, by reason.",
            [(f'{{reason="{k}"}}', v) for k, v in sorted(stats.resyncs.items())],
        )
        metric(
            "slow_clients_total",
            "counter",
            "Clients that fell behind: merged (conflated) or resynced.",
            [(f'{{outcome="{k}"}}', ClientQueue.slow_clients[k]) for k in ("conflated", "resynced")],
        )
        metric("ready", "gauge", "1 when the change feed is live.", [("", float(hub.ready and hub.stream_up))])
        return web.Response(
            text="\n".join(lines) + "\n",
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )
