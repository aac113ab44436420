"""A leaner Engine.IO session for WebSocket clients: the second module that reaches into
python-engineio's internals (``_engine`` is the first; both are checked by ``check_engine``).

python-engineio runs four tasks for each WebSocket session: a reader that wraps every read in a
task of its own and a ``wait_for``, a writer that drains the session's queue through another
``wait_for`` task, and one task per ping that sleeps through the ping interval. At ten thousand
clients that is forty thousand tasks, ~190 objects a connection for the garbage collector to
walk, and the pings of a whole burst of connections due in the same few seconds
(docs/performance.md, "Ten thousand clients"). A ``LeanSocket``:

- reads in the WebSocket's own request task (aiohttp's), with no task or timer per packet: a
  client that stops answering pings is closed by Engine.IO's own service task, as before;
- writes each Engine.IO packet straight to the transport as one unmasked frame, in order with
  the direct path's frames (``direct_write.DirectWriter``), with no queue or writer task;
- has its pings sent by one ``PingWheel`` for every session, each one ``ping_interval`` after
  the last pong, as Engine.IO does (long-polling sessions too: their pings go to their queue).

``LeanManager`` is python-socketio's client manager with a disconnect whose cost does not grow
with the number of clients: the library's walks every room (each client has its own) and removes
the client from a list of pending disconnects, so a mass disconnect (a stop with ten thousand
clients) is quadratic: tens of seconds.

A session that starts on long-polling and upgrades keeps the library's own WebSocket handling,
and every session keeps all of it when the direct path is off (the fallback). ``LeanSockets`` is the server's
``sockets`` dict: Engine.IO registers each new session there, and that is where its class is
swapped for ``LeanSocket`` (a subclass with no state of its own: the swap is safe).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
import time
from typing import Any

import engineio
import socketio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

log = logging.getLogger(__name__)

TEXT, BINARY, CLOSE_FRAME = 0x1, 0x2, 0x8  # WebSocket opcodes


def frame(data: bytes, opcode: int = TEXT) -> bytes:
    """A final, unmasked, uncompressed WebSocket frame (server frames are never masked)."""
    length = len(data)
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, length) + data
    if length < 2**16:
        return struct.pack("!BBH", 0x80 | opcode, 126, length) + data
    return struct.pack("!BBQ", 0x80 | opcode, 127, length) + data


def packet_frame(encoded: str | bytes) -> bytes:
    """An encoded Engine.IO packet as its WebSocket frame: text, or binary for binary data."""
    if isinstance(encoded, bytes):
        return frame(encoded, BINARY)
    return frame(encoded.encode(), TEXT)


class _Written:
    """A lean session's queue once its handler runs: packets are written, never queued (an
    asyncio.Queue and its four deques are ~2.5 KB a connection). What reaches it after the
    session's end is dropped, as the library drops what its finished writer never takes."""

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True

    def put_nowait(self, _: Any) -> None:
        return None

    async def put(self, _: Any) -> None:
        return None

    def task_done(self) -> None:
        return None

    async def join(self) -> None:
        return None


WRITTEN = _Written()


class PingWheel:
    """Sends every lean session's pings from one task. Sessions are due in the order they were
    scheduled (one interval for all), so a deque kept in due order is the whole schedule."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._due: collections.deque[tuple[float, LeanSocket]] = collections.deque()
        self._wake = asyncio.Event()

    def schedule(self, socket: LeanSocket) -> None:
        self._due.append((time.monotonic() + self.interval, socket))
        if len(self._due) == 1:
            self._wake.set()

    async def run(self) -> None:
        """Until cancelled (a supervised task)."""
        while True:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._due[0][0] - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, socket = self._due.popleft()
                socket.ping()


class LeanSocket(engineio.async_socket.AsyncSocket):  # type: ignore[misc]
    last_ping: float | None  # the library's state, declared for the type checker
    connected: bool
    upgraded: bool
    queue: Any  # the library's asyncio.Queue, then WRITTEN

    def _writer(self) -> Any:
        return getattr(self, "orders_live_transport", None)

    def schedule_ping(self) -> None:
        if self.last_ping:  # only once the last ping was answered, as the library does
            self.last_ping = None
            self.server.orders_live_pings.schedule(self)

    def ping(self) -> None:
        """Due: the ping goes out, written at once or (long-polling, or during an upgrade)
        queued for the library's writer, as its own ``_send_ping`` does."""
        if self.closing or self.closed:
            return
        self.last_ping = time.time()
        ping = eio_packet.Packet(eio_packet.PING)
        if self._writer() is not None:
            self._write(ping)
        else:
            self.queue.put_nowait(ping)

    def _write(self, pkt: Any) -> None:
        transport = self._writer()
        if transport is not None and not transport.is_closing():
            transport.write(packet_frame(pkt.encode()))

    async def send(self, pkt: Any) -> None:
        if self._writer() is None:
            await super().send(pkt)  # the handshake's OPEN packet, before the handler runs
            return
        if not await self.check_ping_timeout():
            return
        self._write(pkt)
        if pkt.packet_type == eio_packet.CLOSE:
            transport = self._writer()
            if transport is not None:
                transport.close()  # after the buffered frames: the reader then ends

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        await super().close(wait=wait, abort=abort, reason=reason)
        transport = self._writer()
        if transport is not None and not transport.is_closing():
            transport.close()  # so that the reader ends (the library's waits 45 s for a packet)

    async def _websocket_handler(self, ws: Any) -> None:
        if self.connected:  # an upgrade from long-polling: the library's own handling
            await super()._websocket_handler(ws)
            return
        self.connected = self.upgraded = True
        request = ws.environ["aiohttp.request"]
        while not self.queue.empty():  # the OPEN packet, queued during the handshake
            queued = self.queue.get_nowait()
            self.queue.task_done()
            if queued is not None:
                request.transport.write(packet_frame(queued.encode()))
        self.orders_live_transport = request.transport
        self.queue = WRITTEN
        limit = self.server.max_http_buffer_size
        try:
            while True:
                try:
                    data = await ws.wait()
                except (TimeoutError, OSError, RuntimeError):
                    break
                if data is None or len(data) > limit:
                    break
                try:
                    await self.receive(eio_packet.Packet(encoded_packet=data))
                except eio_exceptions.UnknownPacketError:
                    pass
                except eio_exceptions.SocketIsClosedError:
                    break
                except ValueError:  # a packet Engine.IO cannot decode
                    break
        finally:
            self.orders_live_transport = None
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
            transport = request.transport
            if transport is not None and not transport.is_closing():
                transport.close()


class _Pending(dict[str, None]):
    """The manager's pending connects or disconnects of a namespace: a list's ``append``,
    ``remove`` and ``in``, each O(1)."""

    def append(self, sid: str) -> None:
        self[sid] = None

    def remove(self, sid: str) -> None:
        del self[sid]


class LeanManager(socketio.AsyncManager):  # type: ignore[misc]
    """Knows each client's rooms, so that a disconnect leaves those and walks nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self._rooms_of: dict[tuple[str, str], dict[Any, None]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        self._rooms_of.get((namespace, sid), {}).pop(room, None)

    def pre_disconnect(self, sid: str, namespace: str) -> Any:
        self.pending_disconnect.setdefault(namespace, _Pending()).append(sid)
        return self.rooms[namespace][None].get(sid)

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.pop((namespace, sid), {})):
            if sid in self.rooms.get(namespace, {}).get(room, ()):
                super().basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]


class LeanSockets(dict[str, Any]):
    """Engine.IO's ``sockets``: each session registered here becomes a ``LeanSocket``."""

    def __setitem__(self, sid: str, socket: Any) -> None:
        if type(socket) is engineio.async_socket.AsyncSocket:
            socket.__class__ = LeanSocket
        super().__setitem__(sid, socket)


def lean_sessions(eio: Any) -> PingWheel:
    """Make ``eio`` (an ``engineio.AsyncServer`` with no session yet) create lean sessions; the
    wheel returned must run (a supervised task) for their pings to be sent."""
    wheel = PingWheel(eio.ping_interval)
    eio.orders_live_pings = wheel
    eio.sockets = LeanSockets(eio.sockets)
    return wheel


def check_lean_sessions() -> list[str]:
    """What ``LeanSocket`` relies on, as found: [] when all is as written for."""
    problems = []
    base = engineio.async_socket.AsyncSocket
    for name in ("schedule_ping", "send", "_websocket_handler", "receive", "check_ping_timeout", "close"):
        if not callable(getattr(base, name, None)):
            problems.append(f"engineio's AsyncSocket has no {name}")
    probe = engineio.AsyncServer(async_mode="aiohttp")
    if not isinstance(probe.sockets, dict) or not hasattr(probe, "ping_interval"):
        problems.append("engineio's server no longer keeps its sessions in a dict")
    socket = base(probe, "probe")
    for name in ("last_ping", "connected", "upgraded", "upgrading", "closing", "closed", "queue"):
        if not hasattr(socket, name):
            problems.append(f"engineio's AsyncSocket has no {name} attribute")
    manager = socketio.AsyncManager()
    for name in ("basic_enter_room", "basic_leave_room", "pre_disconnect", "basic_disconnect"):
        if not callable(getattr(manager, name, None)):
            problems.append(f"python-socketio's manager has no {name}")
    for name in ("rooms", "callbacks", "pending_connect", "pending_disconnect"):
        if not isinstance(getattr(manager, name, None), dict):
            problems.append(f"python-socketio's manager keeps no {name} dict")
    return problems
