"""Socket.IO transport: ``subscribe``/``unsubscribe``/``refresh_token`` in; ``snapshot`` pages,
acks, ``order_change``/``order_changes``, ``resync``, ``token_expired`` and ``token_revoked`` out.

Rooms (all orders, one status, one order, each within a customer's scope) are the hub's; this
module turns them into Socket.IO packets, encoded once per change whatever the number of
recipients, and keeps each client's packets in one ordered, bounded queue. Each connection has
the identity it connected with (``refresh_token`` may extend its ``exp``, never change who it
is) and a session that ends it when the token expires or is revoked. Everything that touches
the libraries' internals is in ``_engine``; bad packets are refused there and reported here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from orders_live.domain.page import MAX_WINDOW
from orders_live.domain.source import DatabaseUnavailable
from orders_live.domain.subscription import FilterError, SubscriptionFilter, parse_filter
from orders_live.hub import CatchUpBusy, Hub, NotReady, PositionRefused, catch_up_client
from orders_live.transports.access import AccessPolicy, ConnectionBudget
from orders_live.transports.metrics import TransportMetrics
from orders_live.transports.send_buffer import bound_send_buffer
from orders_live.transports.sessions import Sessions, open_sessions
from orders_live.transports.snapshot_pages import MIN_PAGE_BYTES
from orders_live.transports.socketio._engine import Engine
from orders_live.transports.socketio.admission import Admission
from orders_live.transports.socketio.admission import refusal as _error
from orders_live.transports.socketio.connection import ClientConnection, SocketSink
from orders_live.transports.socketio.library_errors import quiet_library_parse_errors

log = logging.getLogger(__name__)

READY_WAIT = 10.0
FLUSH_WITHIN = 2.0  # seconds a stopping server gives clients' queues to drain
REFUSED_CLOSE_WITHIN = 5.0  # a refused long-polling client is closed once it polls; past this, by ping timeout
ENDING_FLUSH = 0.5  # seconds an ended session's last event may take to leave before the disconnect
ENDING_DISCONNECT = 0.4  # and the disconnect packet, before the socket is simply closed (revocation: < 1 s)
MAX_POSITION_LENGTH = 4096


def _remote(environ: dict[str, Any]) -> str:
    request = environ.get("aiohttp.request")
    return str(environ.get("REMOTE_ADDR") or getattr(request, "remote", None) or "?")


class SocketGateway:
    def __init__(
        self,
        hub: Hub,
        metrics: TransportMetrics,
        queue_capacity: int = 1000,
        socket_send_buffer: int = 0,
        direct: bool = True,
        policy: AccessPolicy | None = None,
        budget: ConnectionBudget | None = None,
        max_subscriptions: int = 20,
        subscribe_rate: float = 5.0,
        page_bytes: int = 512 * 1024,
        sessions: Sessions | None = None,
        token_grace: float = 2.0,
        **server_options: Any,
    ) -> None:
        self.page_bytes = page_bytes
        self.policy = policy or AccessPolicy([])
        self.budget = budget or ConnectionBudget(10_000)
        sessions = sessions if sessions is not None else open_sessions()
        self.admission = Admission(sessions, self.budget, subscribe_rate, token_grace)
        self.max_subscriptions, self.subscribe_rate = max_subscriptions, subscribe_rate
        self.hub, self.metrics = hub, metrics
        self.queue_capacity = queue_capacity
        self.socket_send_buffer = socket_send_buffer
        self.engine = Engine(direct)
        self.sio = self.engine.server(
            {"subscribe": self._subscribe, "unsubscribe": self._unsubscribe, "refresh_token": self._refresh},
            self,
            self._refuse_packet,
            cors_allowed_origins=lambda origin, environ: self.policy.origin_allowed(origin, environ.get("HTTP_HOST")),
            **server_options,
        )
        self.connection_per_sid: dict[str, ClientConnection] = {}
        self.resyncs_for_slowness = 0
        self._closing_refused: set[asyncio.Task[None]] = set()  # disconnects of refused or ended clients
        self._stop_counting = quiet_library_parse_errors(
            lambda reason: self.metrics.refused_packets.labels(reason).inc()
        )
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)

    def attach(self, app: Any) -> None:
        self.sio.attach(app)

    # -- what the engine asks of the gateway (``_engine.Replies``) -------------------
    def reply(self, sid: str, packet: str) -> None:
        connection = self.connection_per_sid.get(sid)
        if connection is not None:
            connection.queue.put_control(packet)

    async def hold_for_reply(self, sid: str) -> None:
        connection = self.connection_per_sid.get(sid)
        task = asyncio.current_task()
        if connection is None or task is None:
            return
        barrier = await connection.hold()
        task.add_done_callback(barrier.release)

    async def _refuse_packet(self, eio_sid: str | None, environ: dict[str, Any], reason: str) -> None:
        """Count and log a bad packet, and disconnect its client. The disconnect is not awaited
        here: for a long-polling client Engine.IO waits until the client polls for its close."""
        self.metrics.refused_packets.labels(reason).inc()
        log.warning("refused a packet from %s (%s): disconnecting it", _remote(environ), reason)
        if eio_sid is not None:
            task = asyncio.create_task(self._disconnect_refused(eio_sid), name=f"socketio.refused.{eio_sid}")
            self._closing_refused.add(task)
            task.add_done_callback(self._closing_refused.discard)

    async def _disconnect_refused(self, eio_sid: str) -> None:
        try:
            async with asyncio.timeout(REFUSED_CLOSE_WITHIN):
                await self.sio.eio.disconnect(eio_sid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # gone already, or it never polls again: Engine.IO's ping timeout ends it
            log.debug("a refused client was not closed cleanly (%s)", type(exc).__name__)

    # -- connections -----------------------------------------------------------------
    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        admitted = self.admission.admit(environ, auth, _remote(environ), lambda e, p: self._end(sid, e, p))
        request = environ.get("aiohttp.request")
        if request is not None:
            bound_send_buffer(request.transport, self.socket_send_buffer)
        connection = ClientConnection(
            sid,
            self.engine.channel(self.sio, sid, environ),
            self.engine,
            self.queue_capacity,
            self._resync_slow,
            self._broken,
            report_slow=self.metrics.slow_client,
        )
        connection.page_bytes = self._page_bytes_for(auth)
        connection.admitted = admitted
        self.connection_per_sid[sid] = connection
        connection.start()

    def _end(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        """A session ends (its token expired or was revoked): say why, then disconnect."""
        connection = self.connection_per_sid.get(sid)
        if connection is None:
            return
        connection.emit(event, payload)
        task = asyncio.create_task(self._disconnect_ended(connection), name=f"socketio.ended.{sid}")
        self._closing_refused.add(task)
        task.add_done_callback(self._closing_refused.discard)

    async def _disconnect_ended(self, connection: ClientConnection) -> None:
        """Disconnect with Socket.IO's disconnect packet: a client does not reconnect by itself
        with the token that just ended; it gets a fresh one first."""
        await connection.flush(ENDING_FLUSH)
        try:
            async with asyncio.timeout(ENDING_DISCONNECT):
                await self.sio.disconnect(connection.sid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("an ended client was not disconnected cleanly (%s)", type(exc).__name__)
            connection.channel.drop()

    def _page_bytes_for(self, auth: Any) -> int:
        """Pages no larger than the client says its transport takes (``auth.max_message``)."""
        announced = auth.get("max_message") if isinstance(auth, dict) else None
        if isinstance(announced, int) and not isinstance(announced, bool) and announced >= MIN_PAGE_BYTES:
            return min(self.page_bytes, announced)
        return self.page_bytes

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        connection = self.connection_per_sid.pop(sid, None)
        if connection is None:
            return
        if connection.admitted is not None:
            self.admission.release(connection.admitted)
        for subscription in connection.subscriptions.values():
            self.hub.close_view(subscription)
        connection.subscriptions.clear()
        await connection.close()

    def _resync_slow(self, connection: ClientConnection) -> None:
        self.resyncs_for_slowness += 1
        for subscription in connection.subscriptions.values():
            self.hub.resync(subscription, "slow_client")

    def _broken(self, connection: ClientConnection, error: BaseException) -> None:
        """Its writer failed: nothing more reaches that client, so it must reconnect."""
        self.metrics.broken_writers.labels("socketio").inc()
        for subscription in connection.subscriptions.values():
            self.hub.close_view(subscription)
        connection.subscriptions.clear()
        connection.channel.drop()

    async def close(self) -> None:
        """Stop every writer; the sockets are left to drop with the process (no
        disconnect packet, so that clients reconnect by themselves)."""
        await asyncio.gather(*(c.flush(FLUSH_WITHIN) for c in self.connection_per_sid.values()))
        for sid in list(self.connection_per_sid):
            await self._disconnect(sid)
        for task in list(self._closing_refused):
            task.cancel()
        await asyncio.gather(*self._closing_refused, return_exceptions=True)
        self._stop_counting()
        await self.sio.shutdown()

    # -- subscribe / unsubscribe ---------------------------------------------------------
    async def _subscribe(self, sid: str, payload: Any = None, *_: Any) -> dict[str, Any] | None:
        connection = self.connection_per_sid.get(sid)
        if connection is None:
            return None
        if connection.admitted is not None and not self.admission.rate_allows(connection.admitted):
            return _error("rate_limited", f"at most {self.subscribe_rate:g} subscribe calls a second")
        return await self._open(connection, payload)

    async def _open(self, connection: ClientConnection, payload: Any) -> dict[str, Any] | None:
        scope = connection.identity.scope
        try:
            wanted = parse_filter(payload, extra_keys=frozenset({"since", "limit"})).within(scope)
            since = self._since(payload)
            limit = self._limit(payload)
        except FilterError as exc:
            return _error("invalid_filter", str(exc), exc.fields)
        if scope is not None and wanted.kind == "id" and self.hub.owner_of(wanted.id or 0) not in (None, scope):
            return _error("forbidden", f"order {wanted.id} is not yours")
        try:
            await self.hub.wait_ready(READY_WAIT)
        except NotReady as exc:
            return _error("unavailable", str(exc))
        if wanted.room not in connection.subscriptions and len(connection.subscriptions) >= self.max_subscriptions:
            return _error("too_many_subscriptions", f"at most {self.max_subscriptions} subscriptions a connection")
        previous = connection.subscriptions.pop(wanted.room, None)
        if previous is not None:
            self.hub.close_view(previous)
        sink = SocketSink(connection, wanted.room, wanted.wire(), connection.page_bytes)
        try:
            client = catch_up_client(connection.identity, connection.admitted.who if connection.admitted else "?")
            view = await self.hub.open_view(wanted, sink, since, limit, client)
        except (NotReady, DatabaseUnavailable) as exc:
            return _error("unavailable", str(exc) or "the database did not answer")
        except PositionRefused as exc:
            return _error("invalid_filter", str(exc), {"since": str(exc)})
        except CatchUpBusy as exc:
            return _error("busy", str(exc))
        except ConnectionError:
            return None  # the client went away during its snapshot
        # The subscription is live: from here to the ack nothing awaits, so nothing can slip in.
        assert view.subscription is not None
        if self.connection_per_sid.get(connection.sid) is not connection:
            self.hub.close_view(view.subscription)
            return None
        overtaken = connection.subscriptions.pop(wanted.room, None)  # a second subscribe to it, sent meanwhile
        if overtaken is not None:
            self.hub.close_view(overtaken)
        connection.subscriptions[wanted.room] = view.subscription
        answer: dict[str, Any] = {"ok": True, "filter": wanted.wire(), "position": view.position, "counts": view.counts}
        if view.replayed is not None:
            for change in view.replayed:
                connection.emit("order_change", change.wire())
            answer["replayed"] = len(view.replayed)
            return answer
        answer["snapshot"] = view.sent
        if limit is not None:
            answer["limit"] = limit
        if view.resync_reason is not None:
            answer["resync"] = view.resync_reason
        return answer

    @staticmethod
    def _limit(payload: Any) -> int | None:
        if not isinstance(payload, dict) or payload.get("limit") is None:
            return None
        limit = payload["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_WINDOW:
            raise FilterError({"limit": f"must be an integer from 1 to {MAX_WINDOW}"})
        return limit

    @staticmethod
    def _since(payload: Any) -> str | None:
        if not isinstance(payload, dict) or payload.get("since") is None:
            return None
        since = payload["since"]
        if not isinstance(since, str) or not 0 < len(since) <= MAX_POSITION_LENGTH:
            raise FilterError({"since": "must be a position string from an earlier change"})
        return since

    async def _unsubscribe(self, sid: str, payload: Any = None, *_: Any) -> dict[str, Any] | None:
        connection = self.connection_per_sid.get(sid)
        if connection is None:
            return None
        try:
            wanted: SubscriptionFilter = parse_filter(payload).within(connection.identity.scope)
        except FilterError as exc:
            return _error("invalid_filter", str(exc), exc.fields)
        subscription = connection.subscriptions.pop(wanted.room, None)
        if subscription is not None:
            self.hub.close_view(subscription)
        return {"ok": True, "filter": wanted.wire(), "subscribed": subscription is not None}

    # -- refresh_token ---------------------------------------------------------------------
    async def _refresh(self, sid: str, payload: Any = None, *_: Any) -> dict[str, Any] | None:
        connection = self.connection_per_sid.get(sid)
        if connection is None or connection.admitted is None:
            return None
        if not self.admission.rate_allows(connection.admitted):
            return _error("rate_limited", f"at most {self.subscribe_rate:g} subscribe or refresh calls a second")
        return self.admission.refresh(connection.admitted, payload)
