"""Server-Sent Events: ``GET /api/changes/stream?status=|id=`` (``text/event-stream``).

Without a position the first event is ``snapshot``; with ``Last-Event-ID`` (sent by a
reconnecting EventSource) or ``?since=`` the missed changes are replayed, then
``caught_up``; when the position cannot be honoured, ``resync`` with a fresh snapshot.
Every event carries ``id: <position>`` (merged changes excepted). Idle streams get a comment
every ``keepalive`` seconds. Each stream has one ClientQueue and one pump; on shutdown every
open stream is ended, so that EventSource clients reconnect elsewhere with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from orders_live.domain.order import OrderJson
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.hub import Delivery, Hub, View
from orders_live.transports.access import ConnectionBudget
from orders_live.transports.client_queue import ClientQueue
from orders_live.transports.http.errors import ApiError
from orders_live.transports.http.feed_params import position, query_filter
from orders_live.transports.http.readiness import feed_ready
from orders_live.transports.metrics import TransportMetrics
from orders_live.transports.send_buffer import bound_send_buffer

log = logging.getLogger(__name__)

HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(event: str, event_id: str | None, payload: Any) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    id_line = f"id: {event_id}\n" if event_id is not None else ""
    return f"event: {event}\n{id_line}data: {data}\n\n".encode()


def encode_change(delivery: Delivery, conflated: bool) -> bytes:
    """One SSE ``order_change`` event, encoded once per change for every stream.

    A merged (conflated) change carries no ``id``: merged changes go out in the order of
    each order's latest change, so a client that dropped halfway through them must not
    resume from the middle. It resumes from the last position before them instead, and
    the changes it then gets again are older than what it holds (ignored by version)."""
    event_id = None if conflated else delivery.change.position
    return bytes(delivery.encoded("sse", conflated, lambda payload: sse_event("order_change", event_id, payload)))


class _SseSink:
    def __init__(self, queue: ClientQueue[bytes], wanted: SubscriptionFilter) -> None:
        self.queue, self.wanted = queue, wanted

    def deliver(self, delivery: Delivery) -> None:
        self.queue.put_change(self.wanted.room, delivery)

    def resync(self, reason: str, orders: list[OrderJson], position: str) -> None:
        payload = {"reason": reason, "filter": self.wanted.wire(), "orders": orders, "position": position}
        self.queue.put_resync(self.wanted.room, sse_event("resync", position, payload))


class EventStreams:
    def __init__(
        self,
        hub: Hub,
        metrics: TransportMetrics,
        queue_capacity: int = 1_000,
        keepalive: float = 15.0,
        socket_send_buffer: int = 0,
        budget: ConnectionBudget | None = None,
    ) -> None:
        self.hub, self.metrics = hub, metrics
        self.queue_capacity, self.keepalive = queue_capacity, keepalive
        self.socket_send_buffer = socket_send_buffer
        self.budget = budget or ConnectionBudget(10_000)
        self.open: set[asyncio.Task[Any]] = set()  # the handler task of each open stream

    @property
    def streams(self) -> int:
        return len(self.open)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/changes/stream", self.stream)]

    async def close(self) -> None:
        """End every open stream (their clients reconnect, elsewhere if need be)."""
        streams = list(self.open)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        wanted = query_filter(request.query, {"since", "token"})
        since = position(request.headers.get("Last-Event-ID") or request.query.get("since"), "since")
        await feed_ready(self.hub)
        if not self.budget.take():
            raise ApiError(503, "too_many_connections", "the server is full")
        task = asyncio.current_task()
        assert task is not None
        self.open.add(task)
        try:
            return await self._stream(request, wanted, since)
        finally:
            self.open.discard(task)
            self.budget.give_back()

    async def _stream(self, request: web.Request, wanted: SubscriptionFilter, since: str | None) -> web.StreamResponse:
        response = web.StreamResponse(headers=HEADERS)
        queue: ClientQueue[bytes] = ClientQueue(
            f"sse-{id(request):x}",
            encode_change,
            lambda: self._resync(view),
            capacity=self.queue_capacity,
            report_slow=self.metrics.slow_client,
        )
        bound_send_buffer(request.transport, self.socket_send_buffer)
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        view = await self.hub.open_view(wanted, _SseSink(queue, wanted), since)
        try:
            self._first_events(queue, view, wanted)
            await self._pump(queue, response)
        except asyncio.CancelledError:
            if request.transport is not None and not request.transport.is_closing():
                request.transport.close()  # shutting down: the client reconnects
            raise
        except ConnectionError:
            log.debug("an event stream client went away")
        except Exception as exc:
            self.metrics.broken_writers.labels("sse").inc()
            log.warning("an event stream failed (%s: %s); closing it", type(exc).__name__, exc)
        finally:
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
