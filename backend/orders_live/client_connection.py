"""One Socket.IO client: its subscriptions and its bounded, ordered outbound queue.

Every packet for a client (replayed changes, acks, live changes, resyncs) goes
through this one queue and one writer task, so their order on the wire is the
order in which they were pushed.

Overflow policy ``resync``: when the backlog reaches its capacity the backlog is
discarded and, once the client drains, each of its subscriptions gets a fresh
snapshot (a ``resync`` event). A slow client never grows memory without bound
and never holds up anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from .hub import Delivery, Subscription
from .model import OrderJson

log = logging.getLogger(__name__)

# Packets handed to Engine.IO but not yet taken by its writer, before we wait for it.
ENGINEIO_BACKLOG = 8

Send = Callable[[str], Any]  # coroutine function: hand one encoded packet to Engine.IO
Backlog = Callable[[], "asyncio.Queue[Any] | None"]  # Engine.IO's own queue for this client
Encode = Callable[[str, Any], str]


class ClientConnection:
    def __init__(
        self,
        sid: str,
        send: Send,
        engineio_queue: Backlog,
        encode: Encode,
        capacity: int,
        on_overflow: Callable[[ClientConnection], None],
    ) -> None:
        self.sid = sid
        self.subscriptions: dict[str, Subscription] = {}
        self.capacity = capacity
        self.overflows = 0
        self._send = send
        self._engineio_queue = engineio_queue
        self.encode = encode
        self._on_overflow = on_overflow
        self._backlog: deque[str] = deque()
        self._overflowed = False
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"sio-writer-{self.sid}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        self._backlog.clear()

    def push(self, packet: str) -> None:
        if self._overflowed:
            return  # the resync to come covers it
        if len(self._backlog) >= self.capacity:
            self._overflowed = True
            self.overflows += 1
            self._backlog.clear()
            log.info("client %s fell %d packets behind: it will be resynced", self.sid, self.capacity)
        else:
            self._backlog.append(packet)
        self._wake.set()

    def emit(self, event: str, payload: Any) -> None:
        self.push(self.encode(event, payload))

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._overflowed:
                self._overflowed = False
                self._on_overflow(self)  # pushes fresh snapshots
            while self._backlog and not self._overflowed:
                await self._send(self._backlog.popleft())
                queue = self._engineio_queue()
                if queue is not None and queue.qsize() > ENGINEIO_BACKLOG:
                    await queue.join()  # the client is reading slowly: let it catch up


class SocketSink:
    """A subscription's way into its client's queue."""

    def __init__(self, connection: ClientConnection, filter_wire: dict[str, Any]) -> None:
        self.connection = connection
        self.filter_wire = filter_wire

    def deliver(self, delivery: Delivery) -> None:
        packet = delivery.encodings.get("socketio")
        if packet is None:
            packet = self.connection.encode("order_change", delivery.change.wire())
            delivery.encodings["socketio"] = packet
        self.connection.push(packet)

    def resync(self, reason: str, orders: list[OrderJson], position: str) -> None:
        self.connection.emit(
            "resync", {"reason": reason, "filter": self.filter_wire, "orders": orders, "position": position}
        )
