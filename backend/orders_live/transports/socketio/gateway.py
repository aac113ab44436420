"""Socket.IO transport: ``subscribe``/``unsubscribe``/``refresh_token`` in; ``snapshot`` pages,
acks, ``order_change``/``order_changes``, ``resync``, ``token_expired`` and ``token_revoked`` out.

Rooms (all orders, one status, one order, each within a customer's scope) are the hub's; this
module turns them into Socket.IO packets, encoded once per change whatever the number of
recipients, and keeps each client's packets in one ordered, bounded queue. Each connection has
the identity it connected with (``refresh_token`` may extend its ``exp``, never change who it
is) and a session that ends it when the token expires or is revoked. Every socket is an
``engine_sessions`` entry from its handshake on (a budget slot; closed when it does not connect
in time, or is refused). Work per connection is bounded: one subscribe answered at a time
(``subscribes``), and a client that leaves its answers unread is disconnected. Everything that
touches the libraries' internals is in ``_engine``; bad packets are refused there and reported here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from socketio.exceptions import ConnectionRefusedError

from orders_live.domain.source import DatabaseUnavailable
from orders_live.domain.subscription import FilterError, SubscriptionFilter, parse_filter
from orders_live.hub import CatchUpBusy, Hub, NotReady, PositionRefused, catch_up_client
from orders_live.identity.refusal_throttle import RefusalThrottle
from orders_live.transports.access import AccessPolicy, ConnectionBudget
from orders_live.transports.feed_requests import READY_WAIT
from orders_live.transports.metrics import TransportMetrics
from orders_live.transports.send_buffer import bound_send_buffer
from orders_live.transports.sessions import Sessions, open_sessions
from orders_live.transports.snapshot_pages import RecentPage
from orders_live.transports.socketio._engine import Engine
from orders_live.transports.socketio.admission import Admission
from orders_live.transports.socketio.admission import refusal as _error
from orders_live.transports.socketio.connection import ClientConnection, SocketSink, page_bytes_for
from orders_live.transports.socketio.endings import Endings
from orders_live.transports.socketio.engine_sessions import EngineSessions, remote_address
from orders_live.transports.socketio.library_errors import quiet_library_parse_errors
from orders_live.transports.socketio.subscribe_request import parse_subscribe
from orders_live.transports.socketio.subscribes import SubscribeCancelled, SubscribesInFlight
from orders_live.transports.socketio.write_rounds import WriteRounds

log = logging.getLogger(__name__)

FLUSH_WITHIN = 2.0  # seconds a stopping server gives clients' queues to drain


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
        auth_timeout: float = 5.0,
        **server_options: Any,
    ) -> None:
        self.page_bytes = page_bytes
        self.policy = policy or AccessPolicy([])
        self.budget = budget or ConnectionBudget(10_000)
        sessions = sessions if sessions is not None else open_sessions()
        self.refusals = RefusalThrottle("connect", max_wait=auth_timeout / 2)
        self.admission = Admission(sessions, subscribe_rate, token_grace, self.refusals)
        self.engine_sessions = EngineSessions(
            self.budget, auth_timeout, lambda eio_sid: self.sio.eio.disconnect(eio_sid)
        )
        self.subscribes_in_flight: set[asyncio.Task[Any]] = set()  # every connection's
        self.max_subscriptions, self.subscribe_rate = max_subscriptions, subscribe_rate
        self.hub, self.metrics = hub, metrics
        self.queue_capacity = queue_capacity
        self.socket_send_buffer = socket_send_buffer
        self.engine = Engine(direct)
        self.recent_page: RecentPage[str] = RecentPage(lambda payload: self.engine.encode_event("snapshot", payload))
        self.sio = self.engine.server(
            {"subscribe": self._subscribe, "unsubscribe": self._unsubscribe, "refresh_token": self._refresh},
            self,
            self._refuse_packet,
            self.engine_sessions,
            cors_allowed_origins=lambda origin, environ: self.policy.origin_allowed(origin, environ.get("HTTP_HOST")),
            **server_options,
        )
        self.connection_per_sid: dict[str, ClientConnection] = {}
        self.ended = 0  # connections ended since start
        self.rounds = WriteRounds()  # the fan-out's frames, a round per turn of the loop
        self.endings = Endings(lambda sid: self.sio.disconnect(sid), self.engine_sessions, metrics)
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
        if connection is not None and not connection.reply(packet):
            self.endings.answers_unread(connection)

    async def hold_for_reply(self, sid: str) -> None:
        connection = self.connection_per_sid.get(sid)
        task = asyncio.current_task()
        if connection is None or task is None:
            return
        barrier = await connection.hold()
        if barrier is None:
            self.endings.answers_unread(connection)
            return
        task.add_done_callback(barrier.release)

    async def _refuse_packet(self, eio_sid: str | None, environ: dict[str, Any], reason: str) -> None:
        """Count and log a bad packet, and disconnect its client. The disconnect is not awaited
        here: for a long-polling client Engine.IO waits until the client polls for its close."""
        self.metrics.refused_packets.labels(reason).inc()
        log.warning("refused a packet from %s (%s): disconnecting it", remote_address(environ), reason)
        if eio_sid is not None:
            self.engine_sessions.show_out(eio_sid)

    # -- connections -----------------------------------------------------------------
    async def _connect(self, sid: str, environ: Any = None, auth: Any = None, *_: Any) -> None:
        """Admit the client, or refuse it (ConnectionRefusedError): its socket closes once the
        connect_error is on its way."""
        if await self._reserved_event(sid, "connect"):
            return
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        sessions = self.engine_sessions
        try:
            admitted = await self.admission.admit(
                environ,
                auth,
                remote_address(environ),
                lambda e, p: self._end(sid, e, p),
                lambda: sessions.take_slot(eio_sid),
            )
        except ConnectionRefusedError:
            sessions.show_out(eio_sid)
            raise
        if not sessions.is_open(eio_sid):  # closed while its turn came (auth_timeout)
            self.admission.release(admitted)
            raise ConnectionRefusedError("the connect came too late", {"code": "unauthorized"})
        sessions.connected(eio_sid)
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
            in_flight=SubscribesInFlight(sid, self.subscribes_in_flight),
            rounds=self.rounds,
        )
        connection.eio_sid = eio_sid
        connection.page_bytes = page_bytes_for(auth, self.page_bytes)
        connection.admitted = admitted
        self.connection_per_sid[sid] = connection
        connection.start()

    def _end(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        """A session ends (its token expired or was revoked): say why, then disconnect."""
        connection = self.connection_per_sid.get(sid)
        if connection is not None:
            self.endings.session_ended(connection, event, payload)

    async def _reserved_event(self, sid: str, name: str) -> bool:
        """Whether this call of a handler of Socket.IO's own events is a client's event of that
        name (``42["connect", …]``), which the libraries' own path dispatches to the handler:
        only then is the client connected already (a real connect or disconnect is pending)."""
        if not self.sio.manager.is_connected(sid, "/"):
            return False
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        await self._refuse_packet(eio_sid, self.sio.get_environ(sid) or {}, f"reserved event name {name!r}")
        return True

    async def _disconnect(self, sid: str, reason: Any = None, *_: Any) -> None:
        if await self._reserved_event(sid, "disconnect"):
            return
        await self._forget(sid)

    async def _forget(self, sid: str) -> None:
        """A client is gone (or the service stops): its views close, its writer stops."""
        connection = self.connection_per_sid.pop(sid, None)
        if connection is None:
            return
        self.ended += 1
        if connection.admitted is not None:
            self.admission.release(connection.admitted)
        self.engine_sessions.disconnected(connection.eio_sid)  # a socket that stays must connect again in time
        for subscription in connection.subscriptions.values():
            self.hub.close_view(subscription)
        connection.subscriptions.clear()
        await connection.close()  # and its subscribes being answered are cancelled

    def _resync_slow(self, connection: ClientConnection) -> None:
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
        """Give every client's queue ``FLUSH_WITHIN`` to drain, close each WebSocket with 1012
        (service restart) and stop every writer. No Socket.IO disconnect packet: that would tell
        clients not to reconnect."""
        connections = list(self.connection_per_sid.values())
        await asyncio.gather(*(c.flush(FLUSH_WITHIN) for c in connections))
        for connection in connections:
            connection.channel.going_away()
        for sid in list(self.connection_per_sid):
            await self._forget(sid)
        await self.endings.stop()
        await asyncio.gather(*self.subscribes_in_flight, return_exceptions=True)  # cancelled by the disconnects
        await self.engine_sessions.stop()
        self.refusals.close()
        self._stop_counting()
        await self.sio.shutdown()

    # -- subscribe / unsubscribe ---------------------------------------------------------
    async def _subscribe(self, sid: str, payload: Any = None, *_: Any) -> dict[str, Any] | None:
        connection = self.connection_per_sid.get(sid)
        if connection is None:
            return None
        if connection.admitted is not None and not self.admission.rate_allows(connection.admitted):
            return _error("rate_limited", f"at most {self.subscribe_rate:g} subscribe calls a second")
        room = self._room_of(connection, payload)  # None for a bad filter: _open says what is wrong
        in_flight, held = len(connection.in_flight), len(connection.subscriptions)
        if in_flight >= self.max_subscriptions or (
            room not in connection.subscriptions and held + in_flight >= self.max_subscriptions
        ):
            return _error("too_many_subscriptions", f"at most {self.max_subscriptions} subscriptions a connection")
        try:  # one at a time: a snapshot or catch-up is read while the later ones wait
            return await connection.in_flight.run(room or "", lambda: self._open(connection, payload))
        except SubscribeCancelled:
            if self.connection_per_sid.get(sid) is not connection:
                return None  # disconnected: nobody to answer
            return _error("unsubscribed", "unsubscribed before it was answered")

    @staticmethod
    def _room_of(connection: ClientConnection, payload: Any) -> str | None:
        try:
            return parse_subscribe(payload, connection.identity.scope).wanted.room
        except FilterError:
            return None

    async def _open(self, connection: ClientConnection, payload: Any) -> dict[str, Any] | None:
        scope = connection.identity.scope
        try:
            wanted, since, limit = parse_subscribe(payload, scope)
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
        sink = SocketSink(connection, wanted.room, wanted.wire(), self.recent_page, connection.page_bytes)
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
        answering = connection.in_flight.cancel(wanted.room)  # a subscribe to it still being answered
        return {"ok": True, "filter": wanted.wire(), "subscribed": subscription is not None or answering}

    # -- refresh_token ---------------------------------------------------------------------
    async def _refresh(self, sid: str, payload: Any = None, *_: Any) -> dict[str, Any] | None:
        connection = self.connection_per_sid.get(sid)
        if connection is None or connection.admitted is None:
            return None
        if not self.admission.rate_allows(connection.admitted):
            return _error("rate_limited", f"at most {self.subscribe_rate:g} subscribe or refresh calls a second")
        return await self.admission.refresh(connection.admitted, payload)
