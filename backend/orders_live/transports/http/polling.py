"""The polling baseline: ``GET /api/changes?since=&status=|id=`` answers at once with the
changes after ``since`` (empty when nothing happened). It exists to measure what polling costs."""

from __future__ import annotations

from aiohttp import web

from orders_live.hub import Hub
from orders_live.transports.http.errors import ApiError
from orders_live.transports.http.feed_params import position, query_filter
from orders_live.transports.http.readiness import feed_ready


class PollingApi:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/changes", self.poll)]

    async def poll(self, request: web.Request) -> web.Response:
        wanted = query_filter(request.query, {"since", "token"})
        since = position(request.query.get("since"), "since")
        if since is None:
            raise ApiError(
                422,
                "validation_failed",
                "give the position to read from",
                {"since": "required: a position from GET /api/orders or an earlier poll"},
            )
        await feed_ready(self.hub)
        view = await self.hub.changes_since(wanted, since)
        if view.replayed is not None:
            changes = [change.wire() for change in view.replayed]
            return web.json_response({"changes": changes, "position": view.position})
        return web.json_response(
            {"changes": [], "resync": view.resync_reason, "orders": view.orders, "position": view.position}
        )
