"""REST API over the orders: reads from the hub's mirror, writes to the store (each bounded in
time by the ``DatabaseGuard``), answered once their change is in the feed."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from orders_live.domain.order import OrderCreate, OrderJson, OrderPatch, positive_int
from orders_live.domain.source import OrderNotFound, OrderStore, VersionConflict
from orders_live.domain.subscription import FilterError, SubscriptionFilter, parse_status
from orders_live.hub import Hub
from orders_live.transports.http.errors import ApiError
from orders_live.transports.http.readiness import DatabaseGuard, feed_ready

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# A write is answered once its change is in the feed (read-your-writes), or after this long.
WRITE_VISIBLE_WAIT = 2.0
_IF_MATCH = re.compile(r'\s*(?:(\d{1,18})|"(\d{1,18})")\s*')


class OrdersApi:
    def __init__(self, hub: Hub, store: OrderStore, database: DatabaseGuard) -> None:
        self.hub, self.store, self.database = hub, store, database

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/orders", self.list_orders),
            web.post("/api/orders", self.create_order),
            web.get(r"/api/orders/{id:[0-9]+}", self.get_order),
            web.patch(r"/api/orders/{id:[0-9]+}", self.update_order),
            web.delete(r"/api/orders/{id:[0-9]+}", self.delete_order),
        ]

    async def list_orders(self, request: web.Request) -> web.Response:
        query = request.query
        unknown = sorted(set(query) - {"status", "limit", "token"})
        fields = {name: "unknown query parameter" for name in unknown}
        wanted = SubscriptionFilter("all")
        if query.get("status"):
            try:
                wanted = SubscriptionFilter("status", status=parse_status(query["status"]))
            except FilterError as exc:
                fields.update(exc.fields)
        limit = DEFAULT_LIMIT
        if "limit" in query:
            wanted_limit = positive_int(query["limit"], MAX_LIMIT)
            if wanted_limit is None:
                fields["limit"] = f"must be an integer from 1 to {MAX_LIMIT}"
            else:
                limit = wanted_limit
        if fields:
            raise ApiError(422, "validation_failed", "the query has invalid parameters", fields)
        await feed_ready(self.hub)
        orders, position = self.hub.select(wanted, limit)
        return web.json_response({"orders": orders, "position": position})

    async def get_order(self, request: web.Request) -> web.Response:
        order_id = _order_id(request)
        await feed_ready(self.hub)
        found, _ = self.hub.select(SubscriptionFilter("id", id=order_id))
        if not found:
            raise _not_found(order_id)
        return _order_response(found[0])

    async def create_order(self, request: web.Request) -> web.Response:
        data = OrderCreate.model_validate(await _json_object(request))
        async with self.database.bounded():
            order = await self.store.create(data)
        await self.hub.applied(order.id, order.version, WRITE_VISIBLE_WAIT)
        return _order_response(order.to_json(), status=201)

    async def update_order(self, request: web.Request) -> web.Response:
        order_id = _order_id(request)
        body = await _json_object(request)
        patch = OrderPatch.model_validate(body)
        if not patch.changes():
            raise ApiError(
                422,
                "validation_failed",
                "nothing to change",
                {"body": "give at least one of customer_name, product_name, status"},
            )
        expected = _if_match(request)
        try:
            async with self.database.bounded():
                order = await self.store.update(order_id, patch, expected)
        except OrderNotFound:
            raise _not_found(order_id) from None
        except VersionConflict as exc:
            raise _conflict(exc) from None
        await self.hub.applied(order.id, order.version, WRITE_VISIBLE_WAIT)
        return _order_response(order.to_json())

    async def delete_order(self, request: web.Request) -> web.Response:
        order_id = _order_id(request)
        expected = _if_match(request)
        try:
            async with self.database.bounded():
                await self.store.delete(order_id, expected)
        except OrderNotFound:
            raise _not_found(order_id) from None
        except VersionConflict as exc:
            raise _conflict(exc) from None
        await self.hub.applied(order_id, None, WRITE_VISIBLE_WAIT)
        return web.Response(status=204)


def _order_id(request: web.Request) -> int:
    """The id in the path; one outside 1…2**63-1 names no order."""
    order_id = positive_int(request.match_info["id"])
    if order_id is None:
        raise ApiError(404, "not_found", "no order has this id")
    return order_id


def _not_found(order_id: int) -> ApiError:
    return ApiError(404, "not_found", f"order {order_id} does not exist")


def _conflict(exc: VersionConflict) -> ApiError:
    return ApiError(
        409,
        "version_conflict",
        f"order {exc.current.id} is at version {exc.current.version}",
        extra={"order": exc.current.to_json()},
        headers={"ETag": f'"{exc.current.version}"'},
    )


def _if_match(request: web.Request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None:
        return None
    match = _IF_MATCH.fullmatch(header)
    if match is None:
        raise ApiError(
            400, "invalid_header", 'If-Match must be a version, as 3 or "3"', {"If-Match": "must be a version number"}
        )
    return int(match.group(1) or match.group(2))


async def _json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(400, "unsupported_content_type", "send the body as application/json")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "validation_failed", "the body must be a JSON object", {"body": "must be an object"})
    return body


def _order_response(order: OrderJson, status: int = 200) -> web.Response:
    return web.json_response(order, status=status, headers={"ETag": f'"{order["version"]}"'})
