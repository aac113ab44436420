"""One Socket.IO client: its subscriptions, its ClientQueue and its writer task.

Every packet for a client (replayed changes, acks, live changes, resyncs) goes
through this one queue and one writer, so their order on the wire is the order
in which they were put.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .client_queue import ClientQueue
from .hub import Delivery, Subscription
from .model import OrderJson

log = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]  # hand one encoded packet to Engine.IO
WaitWritable = Callable[[], Awaitable[None]]  # returns once the client's socket takes more
Encode = Callable[[str, Any], str]


class ClientConnection:
    def __init__(
        self,
        sid: str,
        send: Send,
        wait_writable: WaitWritable,
        encode: Encode,
        capacity: int,
        on_resync: Callable[[ClientConnection], None],
        conflation_capacity: int = 10_000,
    ) -> None:
        self.sid = sid
        self.subscriptions: dict[str, Subscription] = {}
        self.encode = encode
        self._send = send
        self._wait_writable = wait_writable
        self.queue: ClientQueue[str] = ClientQueue(
            sid, self.encode_change, lambda: on_resync(self), capacity, conflation_capacity
        )
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"sio-writer-{self.sid}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    def encode_change(self, delivery: Delivery, conflated: bool) -> str:
        """The ``order_change`` packet, encoded once per change for every client."""
        return str(delivery.encoded("socketio", conflated, lambda payload: self.encode("order_change", payload)))

    def emit(self, event: str, payload: Any) -> None:
        self.queue.put_control(self.encode(event, payload))

    async def _write(self) -> None:
        while True:
            await self.queue.wait()
            for packet in self.queue.take():
                await self._send(packet)
                try:
                    await self._wait_writable()  # a client that reads slowly holds only this writer
                except ConnectionError:
                    log.debug("client %s: connection lost while writing", self.sid)


class SocketSink:
    """A subscription's way into its client's queue."""

    def __init__(self, connection: ClientConnection, room: str, filter_wire: dict[str, Any]) -> None:
        self.connection = connection
        self.room = room
        self.filter_wire = filter_wire

    def deliver(self, delivery: Delivery) -> None:
        self.connection.queue.put_change(self.room, delivery)

    def resync(self, reason: str, orders: list[OrderJson], position: str) -> None:
        payload = {"reason": reason, "filter": self.filter_wire, "orders": orders, "position": position}
        self.connection.queue.put_resync(self.room, self.connection.encode("resync", payload))
