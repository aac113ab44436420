"""The module that reaches into python-socketio and python-engineio internals, with
``_engine_socket`` (Engine.IO's WebSocket sessions, made leaner) and ``_engine_channel`` (each
client's way out: reaches 4 and 5 below). Its one reach into aiohttp's internals (5, and the
frames' writes in 7) is ``transports.direct_write``, shared with the event streams, whose own
check is part of ``check_engine()``.

The reaches, each verified by ``check_engine()`` at start-up (versions and shapes):

1. ``AsyncServer._handle_event_internal``: ``subscribe``/``unsubscribe`` answer their ack
   through the client's own ordered queue, so replays, the ack and live changes cannot cross.
2. ``AsyncServer._handle_eio_message``: Socket.IO packets are checked (``packet_guard``)
   before python-socketio parses them.
3. ``eio._async["websocket"]``: a subclass whose ``wait()`` checks each Engine.IO packet.
4. ``eio.sockets[sid].queue``: how many packets Engine.IO holds for a long-polling client.
5. aiohttp's ``protocol.writing_paused`` and ``protocol._drain_helper()`` (through
   ``direct_write.DirectWriter``): whether a client reads slowly, and waiting until it catches up.
6. ``eio.sockets``: each WebSocket session is a ``_engine_socket.LeanSocket`` (one task per
   session instead of four; pings from one wheel), and the client manager a ``LeanManager``
   (a disconnect walks the client's own rooms only).
7. Hand-spelled packets (``2[...]``, ``3<id>[...]``, the ``order_changes`` batch, Engine.IO's
   ``4`` prefix) and WebSocket frames written straight to each client's transport: one
   frame's bytes serve every client (server frames are unmasked; RSV1 clear is valid on a
   permessage-deflate connection), each in one synchronous ``transport.write`` from the loop,
   so they never interleave with Engine.IO's own frames (pings).

When a check fails, or ``socketio_direct`` is off, none of them is used (the fallback, run by
the test suite too): acks are python-socketio's own, held in order by a barrier in the
client's queue (``Hold``); packets are spelled by ``socketio.packet.Packet`` and sent with
``eio.send``; a slow client is seen from ``transport.get_write_buffer_size()``; bad packets
get the libraries' own handling, whose tracebacks ``library_errors`` turns into one warning.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any, Protocol

import engineio
import socketio
from engineio.async_drivers import aiohttp as engineio_aiohttp
from socketio import packet as sio_packet

from orders_live.hub import Delivery
from orders_live.transports import direct_write
from orders_live.transports.socketio._engine_channel import Channel
from orders_live.transports.socketio._engine_socket import (
    LeanManager,
    PingWheel,
    check_lean_sessions,
    frame,
    lean_sessions,
)
from orders_live.transports.socketio.packet_guard import engine_packet_problem, socketio_packet_problem

log = logging.getLogger(__name__)
ENGINE_CLOSE = "1"  # Engine.IO's close packet

TESTED = {"python-engineio": "4.15.1", "python-socketio": "5.18.1", "aiohttp": "3.14.5"}


class Replies(Protocol):
    """What the gateway offers the engine so that an ack keeps its place in the client's stream."""

    def reply(self, sid: str, packet: str) -> None:
        """Queue an encoded ack in the client's own ordered queue (direct path)."""

    async def hold_for_reply(self, sid: str) -> None:
        """Fallback: returns once everything queued for the client is with Engine.IO; what is
        queued later waits until the calling task (which sends the ack) has finished."""


class SessionWatch(Protocol):
    """What the gateway is told of every Engine.IO session, on both paths."""

    def opened(self, sid: str, environ: dict[str, Any]) -> dict[str, str] | None:
        """A handshake: None lets it in; a refusal (``code``, ``message``) refuses it: Engine.IO
        answers 401 with it as its JSON body."""

    def closed(self, sid: str) -> None:
        """The session ended, however."""


Handler = Callable[..., Awaitable[Any]]  # (sid, *event args) -> the ack's payload
Refuse = Callable[[str | None, dict[str, Any], str], Awaitable[None]]  # (eio sid, environ, reason)


def check_engine() -> list[str]:
    """Everything this module relies on, as found in the installed libraries; [] when all is as tested."""
    problems = []
    found = {name: version(name) for name in TESTED}
    if found != TESTED:
        problems.append(f"tested with {TESTED}, found {found}")
    for owner, name, params in (
        (
            socketio.AsyncServer,
            "_handle_event_internal",
            ["self", "server", "sid", "eio_sid", "data", "namespace", "id"],
        ),
        (socketio.AsyncServer, "_handle_eio_message", ["self", "eio_sid", "data"]),
        (engineio_aiohttp.WebSocket, "wait", ["self"]),
    ):
        method = getattr(owner, name, None)
        if method is None or list(inspect.signature(method).parameters) != params:
            problems.append(f"{owner.__qualname__}.{name} is not the method this was written for")
    problems.extend(direct_write.PROBLEMS)  # reach 5 and the frames' writes: the shared writer's check
    probe = engineio.AsyncServer(async_mode="aiohttp")
    if probe._async.get("websocket") is not engineio_aiohttp.WebSocket:
        problems.append("Engine.IO's aiohttp driver no longer uses its WebSocket class")
    socket = engineio.async_socket.AsyncSocket(probe, "probe")
    if not all(hasattr(getattr(socket, "queue", None), name) for name in ("qsize", "join")):
        problems.append("Engine.IO sockets no longer have a joinable queue")
    sample = {"op": "update", "name": "Ada Lovelace — “é”", "n": [1, 2.5, None, True]}
    spelled = {
        event_packet("order_change", sample): sio_packet.Packet(sio_packet.EVENT, data=["order_change", sample]),
        ack_packet(7, sample): sio_packet.Packet(sio_packet.ACK, data=[sample], id=7),
        batch_packet([_json(sample), _json(sample)]): sio_packet.Packet(
            sio_packet.EVENT, data=["order_changes", {"changes": [sample, sample]}]
        ),
    }
    for ours, theirs in spelled.items():
        if ours != theirs.encode():
            problems.append(f"python-socketio spells packets differently: {theirs.encode()!r} is not {ours!r}")
    if engineio.packet.Packet(engineio.packet.MESSAGE, data="x").encode() != "4x":
        problems.append("Engine.IO spells messages differently")
    return problems + check_lean_sessions()


# -- packets and frames, as spelled on the direct path ---------------------------------------------
def _json(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


def event_packet(event: str, payload: Any) -> str:
    return "2" + _json([event, payload])


def ack_packet(ack_id: int, payload: Any) -> str:
    return f"3{ack_id}" + _json([payload])


def batch_packet(changes: list[str]) -> str:
    """An ``order_changes`` event from each change's JSON, encoded once per change."""
    return '2["order_changes",{"changes":[' + ",".join(changes) + "]}]"


def text_frame(text: str) -> bytes:
    """One Engine.IO message as a final, unmasked, uncompressed WebSocket text frame."""
    return frame(("4" + text).encode())


class Engine:
    def __init__(self, direct: bool) -> None:
        self.problems = check_engine() if direct else ["switched off (socketio_direct=false)"]
        self.direct = not self.problems
        self.pings: PingWheel | None = None  # the lean sessions' pings (direct path): a task to run
        if direct and self.problems:
            log.warning("Socket.IO direct path off, using the libraries' own: %s", "; ".join(self.problems))

    def server(
        self, handlers: dict[str, Handler], replies: Replies, refuse: Refuse, sessions: SessionWatch, **options: Any
    ) -> Any:
        """A Socket.IO server whose ``handlers`` answer in order with the client's other packets,
        and which tells ``sessions`` of every Engine.IO session."""
        if not self.direct:
            sio = socketio.AsyncServer(async_mode="aiohttp", async_handlers=True, **options)
            for name, handler in handlers.items():
                sio.on(name, _held_reply(handler, replies))
            _watch_sessions(sio, sessions)
            return sio
        sio = _OrderedServer(async_mode="aiohttp", async_handlers=True, client_manager=LeanManager(), **options)
        sio.ordered = handlers
        sio.replies = replies
        sio.refuse = refuse
        sio.eio._async = {**sio.eio._async, "websocket": _GuardedWebSocket}
        sio.eio.orders_live_refuse = refuse
        self.pings = lean_sessions(sio.eio)
        _watch_sessions(sio, sessions)
        return sio

    def channel(self, sio: Any, sid: str, environ: dict[str, Any]) -> Channel:
        return Channel(sio, sid, environ, self.direct)

    def encode_event(self, event: str, payload: Any) -> str:
        if self.direct:
            return event_packet(event, payload)
        encoded: str = sio_packet.Packet(sio_packet.EVENT, data=[event, payload]).encode()
        return encoded

    def encode_batch(self, run: list[tuple[Delivery, bool]]) -> str:
        """One ``order_changes`` packet for a run of (change, conflated): on the direct path
        from each change's JSON, encoded once for every client that gets it."""
        if self.direct:
            return batch_packet([delivery.encoded("json", conflated, _json) for delivery, conflated in run])
        changes = [delivery.encoded("wire", conflated, dict) for delivery, conflated in run]
        encoded: str = sio_packet.Packet(sio_packet.EVENT, data=["order_changes", {"changes": changes}]).encode()
        return encoded


def _watch_sessions(sio: Any, sessions: SessionWatch) -> None:
    """Engine.IO's public ``on('connect' | 'disconnect')``, chained before python-socketio's own
    handlers (as python-socketio's admin instrumentation does), on both paths."""
    theirs_open, theirs_close = sio.eio.handlers["connect"], sio.eio.handlers["disconnect"]

    async def opened(sid: str, environ: dict[str, Any]) -> Any:
        refusal = sessions.opened(sid, environ)
        if refusal is not None:
            return refusal  # Engine.IO answers 401 with it
        try:
            return await theirs_open(sid, environ)
        except BaseException:
            sessions.closed(sid)  # Engine.IO refuses the handshake and reports no disconnect
            raise

    async def closed(sid: str, reason: Any = None) -> Any:
        sessions.closed(sid)
        return await theirs_close(sid, reason)

    sio.eio.on("connect", opened)
    sio.eio.on("disconnect", closed)


def _held_reply(handler: Handler, replies: Replies) -> Handler:
    async def stock(sid: str, *args: Any) -> Any:
        answer = await handler(sid, *args)
        await replies.hold_for_reply(sid)
        return answer

    return stock


class _OrderedServer(socketio.AsyncServer):  # type: ignore[misc]
    ordered: dict[str, Handler]
    replies: Replies
    refuse: Refuse

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        problem = socketio_packet_problem(data)
        if problem is not None:
            await self.refuse(eio_sid, self.environ.get(eio_sid, {}), problem)  # and disconnects it
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except KeyError:  # its session ended (closed by auth_timeout, say) while the packet waited
            if eio_sid in self.environ:
                raise
            log.debug("a packet for a session that has ended: dropped")

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: list[Any], namespace: str, id: int | None
    ) -> None:
        handler = self.ordered.get(data[0]) if namespace in (None, "/") else None
        if handler is None:
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
            return
        answer = await handler(sid, *data[1:])
        if id is not None and answer is not None:
            self.replies.reply(sid, ack_packet(id, answer))


class _GuardedWebSocket(engineio_aiohttp.WebSocket):  # type: ignore[misc]
    """Engine.IO's aiohttp WebSocket, refusing a bad packet before Engine.IO parses it:
    ``None`` from ``wait()`` is how it learns that the connection is over."""

    async def wait(self) -> Any:
        data = await super().wait()
        if data == ENGINE_CLOSE:
            # The client closes the session: over. (Handed to Engine.IO, the session closes but
            # its socket stays open until the client closes it or the ping timeout, ~45 s.)
            return None
        problem = engine_packet_problem(data)
        if problem is None:
            return data
        await self.server.orders_live_refuse(None, getattr(self, "environ", {}), problem)
        return None
