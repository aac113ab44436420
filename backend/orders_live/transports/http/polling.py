"""The polling baseline: ``GET /api/changes?since=&status=|id=`` answers at once with the
changes after ``since`` (empty when nothing happened). It exists to measure what polling costs.
When ``since`` cannot be honoured it answers ``resync`` with the newest page of orders
(``limit``, default 100) and ``next_before`` to page the rest through ``GET /api/orders``."""

from __future__ import annotations

from aiohttp import web

from orders_live.domain.page import Cursor
from orders_live.hub import Hub
from orders_live.transports.http.access import identity_of
from orders_live.transports.http.errors import ApiError
from orders_live.transports.http.feed_params import catch_up_refusals, client_of, page_limit, position, query_filter
from orders_live.transports.http.readiness import DatabaseGuard, feed_ready


class PollingApi:
    def __init__(self, hub: Hub, database: DatabaseGuard) -> None:
        self.hub, self.database = hub, database

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/changes", self.poll)]

    async def poll(self, request: web.Request) -> web.Response:
        wanted = query_filter(request.query, {"since", "token", "limit"}).within(identity_of(request).scope)
        since = position(request.query.get("since"), "since")
        fields: dict[str, str] = {}
        limit = page_limit(request.query.get("limit"), fields)
        if fields:
            raise ApiError(422, "validation_failed", "the query has invalid parameters", fields)
        if since is None:
            raise ApiError(
                422,
                "validation_failed",
                "give the position to read from",
                {"since": "required: a position from GET /api/orders or an earlier poll"},
            )
        await feed_ready(self.hub)
        with catch_up_refusals():
            view = await self.hub.changes_since(wanted, since, client_of(request))
        if view.replayed is not None:
            changes = [change.wire() for change in view.replayed]
            return web.json_response({"changes": changes, "position": view.position, "counts": view.counts})
        async with self.database.bounded():
            orders, at, counts = await self.hub.page(wanted, None, limit)
        next_before = Cursor.after(orders[-1]).wire() if len(orders) == limit else None
        return web.json_response(
            {
                "changes": [],
                "resync": view.resync_reason,
                "orders": orders,
                "position": at,
                "counts": counts,
                "next_before": next_before,
            }
        )
