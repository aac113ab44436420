"""Socket.IO transport: ``subscribe``/``unsubscribe`` in, ``order_change``/``resync`` out.

Rooms (all orders, one status, one order) are the hub's; this module turns them
into Socket.IO packets, encoded once per change whatever the number of
recipients, and keeps each client's packets in one ordered, bounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any
from urllib.parse import parse_qsl

import socketio
from socketio import packet as sio_packet
from socketio.exceptions import ConnectionRefusedError

from orders_live.domain.subscription import FilterError, SubscriptionFilter, parse_filter
from orders_live.hub.hub import Hub, NotReady
from orders_live.transports.access import AccessPolicy, ConnectionBudget, RateLimit, auth_token
from orders_live.transports.http.errors import ApiError
from orders_live.transports.socketio._engine import DirectSocket, direct_frames_supported
from orders_live.transports.socketio.connection import ClientConnection, SocketSink

log = logging.getLogger(__name__)

READY_WAIT = 10.0
FLUSH_WITHIN = 2.0  # seconds a stopping server gives clients' queues to drain
ENGINEIO_BACKLOG = 8  # packets handed to Engine.IO and not yet taken by its writer
MAX_POSITION_LENGTH = 4096


class _OrderedServer(socketio.AsyncServer):  # type: ignore[misc]
    """Lets chosen events answer their ack through the client's own ordered queue,
    so a subscribe's replayed changes, its ack and its live changes cannot cross."""

    ordered_handlers: dict[str, Any]

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: list[Any], namespace: str, id: int | None
    ) -> None:
        handler = self.ordered_handlers.get(data[0]) if data and namespace in (None, "/") else None
        if handler is None:
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
            return
        await handler(sid, id, *data[1:])


def bound_send_buffer(transport: Any, size: int) -> None:
    """Cap the kernel's send buffer for one client, so that a client that stops reading
    is noticed after ``size`` bytes rather than after the kernel's autotuned megabytes."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if size > 0 and sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def _error(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message, "fields": fields or {}}}


class SocketGateway:
    def __init__(
        self,
        hub: Hub,
        queue_capacity: int = 1000,
        socket_send_buffer: int = 0,
        direct_frames: bool = True,
        policy: AccessPolicy | None = None,
        budget: ConnectionBudget | None = None,
        max_subscriptions: int = 20,
        subscribe_rate: float = 5.0,
        **server_options: Any,
    ) -> None:
        self.policy = policy or AccessPolicy(None, None, [])
        self.budget = budget or ConnectionBudget(10_000)
        self.max_subscriptions, self.subscribe_rate = max_subscriptions, subscribe_rate
        self.rate_per_sid: dict[str, RateLimit] = {}
        self.hub = hub
        self.queue_capacity = queue_capacity
        self.socket_send_buffer = socket_send_buffer
        self.direct_frames = direct_frames and direct_frames_supported()
        self.sio = _OrderedServer(
            async_mode="aiohttp",
            cors_allowed_origins=lambda origin, environ: self.policy.origin_allowed(origin, environ.get("HTTP_HOST")),
            **server_options,
        )
        self.sio.ordered_handlers = {"subscribe": self._subscribe, "unsubscribe": self._unsubscribe}
        self.connection_per_sid: dict[str, ClientConnection] = {}
        self.resyncs_for_slowness = 0
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)

    def attach(self, app: Any) -> None:
        self.sio.attach(app)

    def encode(self, event: str, payload: Any) -> str:
        encoded: str = sio_packet.Packet(sio_packet.EVENT, data=[event, payload], namespace="/").encode()
        return encoded

    def _encode_ack(self, ack_id: int, payload: Any) -> str:
        encoded: str = sio_packet.Packet(sio_packet.ACK, data=[payload], namespace="/", id=ack_id).encode()
        return encoded

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        request = environ.get("aiohttp.request")
        who = environ.get("REMOTE_ADDR") or getattr(request, "remote", None) or "?"
        try:
            self.policy.check(auth_token(auth, dict(parse_qsl(environ.get("QUERY_STRING", "")))), "read", who)
        except ApiError as exc:
            raise ConnectionRefusedError(exc.message, {"code": exc.code}) from None
        if not self.budget.take():
            log.warning("refused a connection from %s: %d connections already", who, self.budget.open)
            raise ConnectionRefusedError("the server is full", {"code": "too_many_connections"})
        self.rate_per_sid[sid] = RateLimit(self.subscribe_rate)
        if request is not None:
            bound_send_buffer(request.transport, self.socket_send_buffer)
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")

        async def send(encoded: str) -> None:
            await self.sio.eio.send(eio_sid, encoded)

        async def wait_writable() -> None:
            # Packets can pile up in Engine.IO's queue, and (seen on aiohttp 3.14) in
            # aiohttp's buffer while the socket is paused: wait on both.
            engineio_socket = self.sio.eio.sockets.get(eio_sid)
            if engineio_socket is not None and engineio_socket.queue.qsize() > ENGINEIO_BACKLOG:
                await engineio_socket.queue.join()
            protocol = getattr(request, "protocol", None)
            if protocol is not None and protocol.writing_paused:
                await protocol._drain_helper()

        direct = DirectSocket.for_client(environ) if self.direct_frames else None
        connection = ClientConnection(
            sid, send, wait_writable, self.encode, self.queue_capacity, self._resync_slow, direct=direct
        )
        self.connection_per_sid[sid] = connection
        connection.start()

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        connection = self.connection_per_sid.pop(sid, None)
        if connection is None:
            return
        self.budget.give_back()
        self.rate_per_sid.pop(sid, None)
        for subscription in connection.subscriptions.values():
            self.hub.close_view(subscription)
        connection.subscriptions.clear()
        await connection.close()

    def _resync_slow(self, connection: ClientConnection) -> None:
        self.resyncs_for_slowness += 1
        for subscription in connection.subscriptions.values():
            self.hub.resync(subscription, "slow_client")

    async def close(self) -> None:
        """Stop every writer; the sockets are left to drop with the process (no
        disconnect packet, so that clients reconnect by themselves)."""
        await asyncio.gather(*(c.flush(FLUSH_WITHIN) for c in self.connection_per_sid.values()))
        for sid in list(self.connection_per_sid):
            await self._disconnect(sid)
        await self.sio.shutdown()

    async def _subscribe(self, sid: str, ack_id: int | None, payload: Any = None, *_: Any) -> None:
        connection = self.connection_per_sid.get(sid)
        if connection is None:
            return
        rate = self.rate_per_sid.get(sid)
        if rate is not None and not rate.allow():
            result = _error("rate_limited", f"at most {self.subscribe_rate:g} subscribe calls a second")
        else:
            result = await self._open(connection, payload)
        if ack_id is not None:
            connection.queue.put_control(self._encode_ack(ack_id, result))

    async def _open(self, connection: ClientConnection, payload: Any) -> dict[str, Any]:
        try:
            wanted = parse_filter(payload, extra_keys=frozenset({"since"}))
            since = self._since(payload)
        except FilterError as exc:
            return _error("invalid_filter", str(exc), exc.fields)
        try:
            await self.hub.wait_ready(READY_WAIT)
        except NotReady as exc:
            return _error("unavailable", str(exc))
        if wanted.room not in connection.subscriptions and len(connection.subscriptions) >= self.max_subscriptions:
            return _error("too_many_subscriptions", f"at most {self.max_subscriptions} subscriptions a connection")
        previous = connection.subscriptions.pop(wanted.room, None)
        if previous is not None:
            self.hub.close_view(previous)
        try:
            view = await self.hub.open_view(wanted, SocketSink(connection, wanted.room, wanted.wire()), since)
        except NotReady as exc:
            return _error("unavailable", str(exc))
        # The room is joined: from here to the ack nothing awaits, so nothing can slip in.
        assert view.subscription is not None
        connection.subscriptions[wanted.room] = view.subscription
        if view.replayed is not None:
            for change in view.replayed:
                connection.emit("order_change", change.wire())
            return {"ok": True, "filter": wanted.wire(), "replayed": len(view.replayed), "position": view.position}
        answer: dict[str, Any] = {"ok": True, "filter": wanted.wire(), "orders": view.orders, "position": view.position}
        if view.resync_reason is not None:
            answer["resync"] = view.resync_reason
        return answer

    @staticmethod
    def _since(payload: Any) -> str | None:
        if not isinstance(payload, dict) or payload.get("since") is None:
            return None
        since = payload["since"]
        if not isinstance(since, str) or not 0 < len(since) <= MAX_POSITION_LENGTH:
            raise FilterError({"since": "must be a position string from an earlier change"})
        return since

    async def _unsubscribe(self, sid: str, ack_id: int | None, payload: Any = None, *_: Any) -> None:
        connection = self.connection_per_sid.get(sid)
        if connection is None:
            return
        try:
            wanted: SubscriptionFilter = parse_filter(payload)
        except FilterError as exc:
            result = _error("invalid_filter", str(exc), exc.fields)
        else:
            subscription = connection.subscriptions.pop(wanted.room, None)
            if subscription is not None:
                self.hub.close_view(subscription)
            result = {"ok": True, "filter": wanted.wire(), "subscribed": subscription is not None}
        if ack_id is not None:
            connection.queue.put_control(self._encode_ack(ack_id, result))
