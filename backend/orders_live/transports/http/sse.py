"""Server-Sent Events: ``GET /api/changes/stream?status=|id=`` (``text/event-stream``).

Without a position the snapshot comes first, as ``snapshot`` pages (no ``id``: a stream cut
off mid-snapshot must start over), then ``caught_up``; with ``Last-Event-ID`` (sent by a
reconnecting EventSource) or ``?since=`` the missed changes are replayed, then
``caught_up``; when the position cannot be honoured, pages and ``resync``. ``caught_up``,
``resync`` and changes carry ``id: <position>`` (merged changes excepted). Idle streams get a
comment every ``keepalive`` seconds. Each stream has one ClientQueue and one pump task
(``sse_stream``, shared with the agent's action stream); a
change for a stream with nothing queued is written straight to its socket (``sse_direct``). On
shutdown every open stream is ended, so that EventSource clients reconnect elsewhere with
Last-Event-ID.

A stream carries its identity's scope (a customer's stream holds only its orders) and ends when
its token does: at ``exp`` with a ``token_expired`` event, or at once with ``token_revoked``;
the client reconnects with a fresh ticket and its position, and loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from orders_live.domain.order import OrderJson
from orders_live.domain.page import Counts
from orders_live.domain.source import DatabaseUnavailable
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.hub import Batch, CatchUpBusy, Delivery, Hub, NotReady, PositionRefused, SnapshotEnd, View
from orders_live.transports.access import ConnectionBudget
from orders_live.transports.client_queue import ClientQueue
from orders_live.transports.direct_write import DirectWriter
from orders_live.transports.http.access import identity_of
from orders_live.transports.http.feed_params import catch_up_refusals, client_of, position, query_filter, window
from orders_live.transports.http.open_streams import OpenStreams, StreamEnding
from orders_live.transports.http.readiness import feed_ready
from orders_live.transports.http.sse_direct import chunk, direct_stream
from orders_live.transports.http.sse_stream import EventStream, sse_event
from orders_live.transports.metrics import TransportMetrics
from orders_live.transports.send_buffer import bound_send_buffer
from orders_live.transports.sessions import Sessions, open_sessions
from orders_live.transports.snapshot_pages import snapshot_packets

log = logging.getLogger(__name__)


def encode_change(delivery: Delivery, conflated: bool) -> bytes:
    """One SSE ``order_change`` event, encoded once per change for every stream.

    A merged (conflated) change carries no ``id``: merged changes go out in the order of
    each order's latest change, so a client that dropped halfway through them must not
    resume from the middle. It resumes from the last position before them instead, and
    the changes it then gets again are older than what it holds (ignored by version)."""
    event_id = None if conflated else delivery.change.position
    return bytes(delivery.encoded("sse", conflated, lambda payload: sse_event("order_change", event_id, payload)))


class _SseSink:
    def __init__(self, queue: ClientQueue[bytes], wanted: SubscriptionFilter, page_bytes: int) -> None:
        self.queue, self.wanted, self.page_bytes = queue, wanted, page_bytes
        self.stream: EventStream | None = None
        self.direct: DirectWriter | None = None  # set once the stream's headers are out

    def _can_skip_the_queue(self) -> DirectWriter | None:
        """The socket, when nothing is queued or being written and the client keeps up."""
        direct = self.direct
        if direct is None or not self.queue.idle or self.stream is None or self.stream.writing:
            return None
        return direct if direct.writable else None

    def deliver(self, delivery: Delivery) -> None:
        direct = self._can_skip_the_queue()
        if direct is not None:
            direct.write(delivery.encoded("sse-chunk", False, lambda _: chunk(encode_change(delivery, False))))
            return
        self.queue.put_change(self.wanted.room, delivery)

    def deliver_batch(self, batch: Batch) -> None:
        direct = self._can_skip_the_queue()
        if direct is not None:
            direct.write(batch.encoded("sse-chunk", _batch_chunk))
            return
        for delivery in batch.deliveries:
            self.queue.put_change(self.wanted.room, delivery)

    def begin_resync(self) -> None:
        self.queue.drop_room(self.wanted.room)

    def page(self, orders: list[OrderJson], removed: list[int], first: bool) -> None:
        encode = lambda payload: sse_event("snapshot", None, payload)  # noqa: E731
        for packet in snapshot_packets(encode, self.page_bytes, self.wanted.wire(), orders, removed, first):
            self.queue.put_control(packet)

    async def drained(self) -> None:
        assert self.stream is not None
        await self.stream.drained()

    def end_resync(self, end: SnapshotEnd) -> None:
        payload = {"reason": end.reason, **_end_payload(self.wanted, end.position, end.counts), "snapshot": end.sent}
        self.queue.put_control(sse_event("resync", end.position, payload))


def _batch_chunk(deliveries: list[Delivery]) -> bytes:
    return chunk(b"".join(encode_change(delivery, False) for delivery in deliveries))


def _end_payload(wanted: SubscriptionFilter, position: str, counts: Counts) -> dict[str, Any]:
    return {"filter": wanted.wire(), "position": position, "counts": counts}


class EventStreams:
    def __init__(
        self,
        hub: Hub,
        metrics: TransportMetrics,
        queue_capacity: int = 1_000,
        keepalive: float = 15.0,
        socket_send_buffer: int = 0,
        budget: ConnectionBudget | None = None,
        page_bytes: int = 512 * 1024,
        sessions: Sessions | None = None,
    ) -> None:
        self.hub, self.metrics = hub, metrics
        self.page_bytes = page_bytes
        self.queue_capacity, self.keepalive = queue_capacity, keepalive
        self.socket_send_buffer = socket_send_buffer
        self.open = OpenStreams(
            budget or ConnectionBudget(10_000), sessions if sessions is not None else open_sessions()
        )
        self.direct = 0  # streams opened on the direct path (sse_direct), since the start

    @property
    def streams(self) -> int:
        return len(self.open)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/changes/stream", self.stream)]

    async def close(self) -> None:
        """End every open stream (their clients reconnect, elsewhere if need be)."""
        await self.open.close()

    async def stream(self, request: web.Request) -> web.StreamResponse:
        identity = identity_of(request)
        wanted = query_filter(request.query, {"since", "token", "ticket", "limit"}).within(identity.scope)
        since = position(request.headers.get("Last-Event-ID") or request.query.get("since"), "since")
        limit = window(request.query.get("limit"))
        await feed_ready(self.hub)
        client = client_of(request)
        with catch_up_refusals():
            await self.hub.check_position(since, client)  # before the stream's 200
        with self.open.holding(identity, request) as ending:
            return await self._stream(request, wanted, since, limit, ending, client)

    async def _stream(
        self,
        request: web.Request,
        wanted: SubscriptionFilter,
        since: str | None,
        limit: int | None,
        ending: StreamEnding,
        client: str,
    ) -> web.StreamResponse:
        view: View | None = None
        queue: ClientQueue[bytes] = ClientQueue(
            f"sse-{id(request):x}",
            encode_change,
            lambda: self._resync(view),
            capacity=self.queue_capacity,
            report_slow=self.metrics.slow_client,
        )
        bound_send_buffer(request.transport, self.socket_send_buffer)
        stream = EventStream(request, queue, self.keepalive, queue.name)
        await stream.start()
        sink = _SseSink(queue, wanted, self.page_bytes)
        sink.direct = direct_stream(request, stream.response)
        self.direct += sink.direct is not None
        sink.stream = stream
        ending.then(lambda event, payload: stream.finish(sse_event(event, None, payload)))
        try:
            try:
                view = await self.hub.open_view(wanted, sink, since, limit, client)
            except (NotReady, DatabaseUnavailable, CatchUpBusy, PositionRefused) as exc:
                code = {CatchUpBusy: "busy", PositionRefused: "validation_failed"}.get(type(exc), "unavailable")
                queue.put_control(sse_event("error", None, {"code": code, "message": str(exc)}))
                await sink.drained()
                return stream.response  # the client reconnects and starts over
            self._first_events(queue, view, wanted)
            await stream.done()
        except asyncio.CancelledError:
            stream.cancelled()  # shutting down: the client reconnects
            raise
        except ConnectionError:
            log.debug("an event stream client went away")
        except Exception as exc:
            self.metrics.broken_writers.labels("sse").inc()
            log.warning("an event stream failed (%s: %s); closing it", type(exc).__name__, exc)
        finally:
            await stream.stop()
            if view is not None and view.subscription is not None:
                self.hub.close_view(view.subscription)
        return stream.response

    def _resync(self, view: View | None) -> None:
        if view is not None and view.subscription is not None:
            self.hub.resync(view.subscription, "slow_client")

    @staticmethod
    def _first_events(queue: ClientQueue[bytes], view: View, wanted: SubscriptionFilter) -> None:
        end = _end_payload(wanted, view.position, view.counts)
        if view.replayed is not None:
            for change in view.replayed:
                queue.put_control(sse_event("order_change", change.position, change.wire()))
            queue.put_control(sse_event("caught_up", view.position, {**end, "replayed": len(view.replayed)}))
        elif view.resync_reason is not None:
            payload = {"reason": view.resync_reason, **end, "snapshot": view.sent}
            queue.put_control(sse_event("resync", view.position, payload))
        else:
            queue.put_control(sse_event("caught_up", view.position, {**end, "snapshot": view.sent}))
