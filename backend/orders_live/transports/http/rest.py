"""REST API over the orders: pages read through the hub (each exact at the position it
returns), single orders and writes from the store (each bounded in time by the
``DatabaseGuard``); writes are answered once their change is in the feed.

Every read is confined to the caller's scope (a customer sees its own orders; another's is 404,
as if it did not exist), and every write is one the caller's role allows (``Identity.may_*``);
a customer's update names it as the owner, so the store refuses it in the same statement if
the order is not, or is no longer, its own."""

from __future__ import annotations

import re

from aiohttp import web

from orders_live.domain.order import OrderCreate, OrderJson, OrderPatch, positive_int
from orders_live.domain.page import Cursor
from orders_live.domain.source import OrderNotFound, OrderStore, VersionConflict
from orders_live.domain.subscription import FilterError, SubscriptionFilter, parse_status
from orders_live.hub import Hub
from orders_live.transports.http.access import identity_of
from orders_live.transports.http.errors import ApiError
from orders_live.transports.http.feed_params import page_cursor, page_limit
from orders_live.transports.http.readiness import DatabaseGuard, feed_ready
from orders_live.transports.http.request_body import json_object

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
        unknown = sorted(set(query) - {"status", "limit", "before", "token"})
        fields = {name: "unknown query parameter" for name in unknown}
        wanted = SubscriptionFilter("all")
        if query.get("status"):
            try:
                wanted = SubscriptionFilter("status", status=parse_status(query["status"]))
            except FilterError as exc:
                fields.update(exc.fields)
        wanted = wanted.within(identity_of(request).scope)
        limit = page_limit(query.get("limit"), fields)
        before = page_cursor(query.get("before"), fields)
        if fields:
            raise ApiError(422, "validation_failed", "the query has invalid parameters", fields)
        await feed_ready(self.hub)
        async with self.database.bounded():
            orders, position, counts = await self.hub.page(wanted, before, limit)
        next_before = Cursor.after(orders[-1]).wire() if len(orders) == limit else None
        return web.json_response({"orders": orders, "position": position, "counts": counts, "next_before": next_before})

    async def get_order(self, request: web.Request) -> web.Response:
        order_id = _order_id(request)
        await feed_ready(self.hub)
        async with self.database.bounded():
            found = await self.store.get(order_id)
        scope = identity_of(request).scope
        if found is None or (scope is not None and found.customer_name != scope):
            raise _not_found(order_id)
        return _order_response(found.to_json())

    async def create_order(self, request: web.Request) -> web.Response:
        data = OrderCreate.model_validate(await json_object(request))
        identity_of(request).may_create(data)
        async with self.database.bounded():
            order = await self.store.create(data)
        await self.hub.applied(order.id, order.version, WRITE_VISIBLE_WAIT)
        return _order_response(order.to_json(), status=201)

    async def update_order(self, request: web.Request) -> web.Response:
        order_id = _order_id(request)
        body = await json_object(request)
        patch = OrderPatch.model_validate(body)
        if not patch.changes():
            raise ApiError(
                422,
                "validation_failed",
                "nothing to change",
                {"body": "give at least one of customer_name, product_name, status"},
            )
        expected = _if_match(request)
        identity = identity_of(request)
        identity.may_update(patch)
        try:
            async with self.database.bounded():
                order = await self.store.update(order_id, patch, expected, owner=identity.scope)
        except OrderNotFound:
            raise _not_found(order_id) from None
        except VersionConflict as exc:
            raise _conflict(exc) from None
        await self.hub.applied(order.id, order.version, WRITE_VISIBLE_WAIT)
        return _order_response(order.to_json())

    async def delete_order(self, request: web.Request) -> web.Response:
        order_id = _order_id(request)
        expected = _if_match(request)
        identity_of(request).may_delete()
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


def _order_response(order: OrderJson, status: int = 200) -> web.Response:
    return web.json_response(order, status=status, headers={"ETag": f'"{order["version"]}"'})
