"""HTTP change feeds: Server-Sent Events (push) and the polling baseline (for comparison).

``GET /api/changes/stream?status=|id=`` (``text/event-stream``). Without a position the
first event is ``snapshot``; with ``Last-Event-ID`` (sent by a reconnecting
EventSource) or ``?since=`` the missed changes are replayed, then ``caught_up``;
when the position cannot be honoured, ``resync`` with a fresh snapshot. Every event
carries ``id: <position>``. Idle streams get a comment every ``keepalive`` seconds.

``GET /api/changes?since=&status=|id=`` answers at once with the changes after
``since`` (empty when nothing happened). It exists to measure what polling costs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from orders_live.domain.order import OrderJson
from orders_live.domain.subscription import FilterError, SubscriptionFilter, parse_filter
from orders_live.hub.hub import Delivery, Hub, View
from orders_live.transports.access import ConnectionBudget
from orders_live.transports.client_queue import ClientQueue
from orders_live.transports.http.errors import ApiError
from orders_live.transports.http.rest import feed_ready
from orders_live.transports.socketio.gateway import bound_send_buffer

log = logging.getLogger(__name__)

MAX_POSITION_LENGTH = 4096


def sse_event(event: str, position: str | None, payload: Any) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    event_id = f"id: {position}\n" if position is not None else ""
    return f"event: {event}\n{event_id}data: {data}\n\n".encode()


def encode_change(delivery: Delivery, conflated: bool) -> bytes:
    """One SSE ``order_change`` event, encoded once per change for every stream.

    A merged (conflated) change carries no ``id``: merged changes go out in the order of
    each order's latest change, so a client that dropped halfway through them must not
    resume from the middle. It resumes from the last position before them instead, and
    the changes it then gets again are older than what it holds (ignored by version)."""
    position = None if conflated else delivery.change.position
    return bytes(delivery.encoded("sse", conflated, lambda payload: sse_event("order_change", position, payload)))


class _SseSink:
    def __init__(self, queue: ClientQueue[bytes], wanted: SubscriptionFilter) -> None:
        self.queue, self.wanted = queue, wanted

    def deliver(self, delivery: Delivery) -> None:
        self.queue.put_change(self.wanted.room, delivery)

    def resync(self, reason: str, orders: list[OrderJson], position: str) -> None:
        payload = {"reason": reason, "filter": self.wanted.wire(), "orders": orders, "position": position}
        self.queue.put_resync(self.wanted.room, sse_event("resync", position, payload))


def _query_filter(query: Mapping[str, str], allowed: set[str]) -> SubscriptionFilter:
    unknown = sorted(set(query) - allowed - {"status", "id"})
    if unknown:
        raise ApiError(
            422,
            "validation_failed",
            "the query has invalid parameters",
            {name: "unknown query parameter" for name in unknown},
        )
    payload: dict[str, Any] = {}
    if query.get("status"):
        payload["status"] = query["status"]
    if query.get("id"):
        payload["id"] = int(query["id"]) if query["id"].isdigit() else query["id"]
    try:
        return parse_filter(payload)
    except FilterError as exc:
        raise ApiError(422, "validation_failed", str(exc), exc.fields) from None


def _position(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_POSITION_LENGTH:
        raise ApiError(422, "validation_failed", f"{name} is too long", {name: "not a position"})
    return value


class ChangeFeedApi:
    def __init__(
        self,
        hub: Hub,
        queue_capacity: int = 1_000,
        keepalive: float = 15.0,
        socket_send_buffer: int = 0,
        budget: ConnectionBudget | None = None,
    ) -> None:
        self.budget = budget or ConnectionBudget(10_000)
        self.streams = 0
        self.hub, self.queue_capacity, self.keepalive = hub, queue_capacity, keepalive
        self.socket_send_buffer = socket_send_buffer

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/changes/stream", self.stream), web.get("/api/changes", self.poll)]

    async def poll(self, request: web.Request) -> web.Response:
        wanted = _query_filter(request.query, {"since", "token"})
        since = _position(request.query.get("since"), "since")
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

    async def stream(self, request: web.Request) -> web.StreamResponse:
        wanted = _query_filter(request.query, {"since", "token"})
        since = _position(request.headers.get("Last-Event-ID") or request.query.get("since"), "since")
        await feed_ready(self.hub)
        if not self.budget.take():
            raise ApiError(503, "too_many_connections", "the server is full")
        try:
            return await self._stream(request, wanted, since)
        finally:
            self.budget.give_back()

    async def _stream(self, request: web.Request, wanted: SubscriptionFilter, since: str | None) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        queue: ClientQueue[bytes] = ClientQueue(
            f"sse-{id(request):x}", encode_change, lambda: self._resync(view), capacity=self.queue_capacity
        )
        bound_send_buffer(request.transport, self.socket_send_buffer)
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        view = await self.hub.open_view(wanted, _SseSink(queue, wanted), since)
        self.streams += 1
        try:
            self._first_events(queue, view, wanted)
            await self._pump(queue, response)
        except ConnectionError:
            log.debug("an event stream client went away")
        finally:
            self.streams -= 1
            if view.subscription is not None:
                self.hub.close_view(view.subscription)
        return response

    def _resync(self, view: View) -> None:
        if view.subscription is not None:
            self.hub.resync(view.subscription, "slow_client")

    @staticmethod
    def _first_events(queue: ClientQueue[bytes], view: View, wanted: SubscriptionFilter) -> None:
        if view.replayed is not None:
            for change in view.replayed:
                queue.put_control(sse_event("order_change", change.position, change.wire()))
            caught_up = {"filter": wanted.wire(), "replayed": len(view.replayed), "position": view.position}
            queue.put_control(sse_event("caught_up", view.position, caught_up))
            return
        payload = {"filter": wanted.wire(), "orders": view.orders, "position": view.position}
        if view.resync_reason is not None:
            queue.put_control(sse_event("resync", view.position, {"reason": view.resync_reason, **payload}))
        else:
            queue.put_control(sse_event("snapshot", view.position, payload))

    async def _pump(self, queue: ClientQueue[bytes], response: web.StreamResponse) -> None:
        while True:
            try:
                async with asyncio.timeout(self.keepalive):
                    await queue.wait()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            packets = queue.take()
            if packets:
                await response.write(b"".join(packets))  # waits while the client reads slowly
