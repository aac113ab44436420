"""One Socket.IO client: its subscriptions, its ClientQueue and its writer task.

Every packet for a client (replayed changes, acks, live changes, resyncs) goes through
this one queue and one writer, so their order on the wire is the order in which they
were put. The writer sends everything queued since its last write at once, and a run of
several changes goes out as one ``order_changes`` batch: under load batches grow by
themselves and the cost per change falls, while a lone change still goes out at once.

Two ways out, never mixed for one client: WebSocket frames written straight to the
client's socket (a lone change's frame is built once and shared by every client), or
python-engineio's own send for clients that cannot take them (long-polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from orders_live.domain.order import OrderJson
from orders_live.hub.hub import Delivery, Subscription
from orders_live.transports.client_queue import ClientQueue
from orders_live.transports.socketio._engine import DirectSocket, text_frame

log = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]  # hand one encoded Socket.IO packet to Engine.IO
WaitWritable = Callable[[], Awaitable[None]]  # returns once the client's socket takes more
Encode = Callable[[str, Any], str]  # (event, payload) -> encoded Socket.IO packet
# What waits in the queue: an encoded control packet, or a change (and its conflated flag).
Outgoing = str | tuple[Delivery, bool]


def _json(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


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
        direct: DirectSocket | None = None,
    ) -> None:
        self.sid = sid
        self.subscriptions: dict[str, Subscription] = {}
        self.encode = encode
        self.direct = direct
        self._send = send
        self._wait_writable = wait_writable
        self.queue: ClientQueue[Outgoing] = ClientQueue(
            sid,
            lambda delivery, conflated: (delivery, conflated),
            lambda: on_resync(self),
            capacity,
            conflation_capacity,
        )
        self._writer: asyncio.Task[None] | None = None
        self._writing = False  # the writer holds packets it has taken and not yet written
        self._wrote = asyncio.Event()  # set each time the writer finishes a round
        self.batches = 0

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"sio-writer-{self.sid}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    async def flush(self, within: float) -> None:
        """Shutting down: give the writer up to ``within`` seconds to send what is queued."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self._writing or not self.queue.idle:
                    self._wrote.clear()
                    await self._wrote.wait()

    def deliver(self, room: str, delivery: Delivery) -> None:
        """The hot path: with nothing queued and a socket that takes more, the change's
        shared frame is written at once, with no task to wake; otherwise it queues."""
        direct = self.direct
        if direct is not None and not self._writing and self.queue.idle and direct.writable:
            direct.write(self._single(delivery, False)[1])
            return
        self.queue.put_change(room, delivery)

    def emit(self, event: str, payload: Any) -> None:
        self.queue.put_control(self.encode(event, payload))

    async def _write(self) -> None:
        while True:
            await self.queue.wait()
            packets = self._packets(self.queue.take())
            self._writing = True
            try:
                if self.direct is not None and self.direct.open:
                    for text, frame in packets:
                        self.direct.write(frame or text_frame("4" + text))
                    await self.direct.drained()  # a client that reads slowly holds only this writer
                else:
                    for text, _ in packets:
                        await self._send(text)
                        await self._wait_writable()
            except ConnectionError:
                log.debug("client %s: connection lost while writing", self.sid)
            finally:
                self._writing = False
                self._wrote.set()

    def _packets(self, outgoing: list[Outgoing]) -> Iterator[tuple[str, bytes | None]]:
        """Encoded packets, each with its shared WebSocket frame when it has one."""
        run: list[tuple[Delivery, bool]] = []
        for item in outgoing:
            if isinstance(item, str):
                yield from self._changes(run)
                run = []
                yield item, None
            else:
                run.append(item)
        yield from self._changes(run)

    def _single(self, delivery: Delivery, conflated: bool) -> tuple[str, bytes]:
        """One change's packet and its WebSocket frame, both built once for every client."""
        text: str = delivery.encoded("socketio", conflated, lambda p: self.encode("order_change", p))
        frame: bytes = delivery.encoded("ws-frame", conflated, lambda _: text_frame("4" + text))
        return text, frame

    def _changes(self, run: list[tuple[Delivery, bool]]) -> Iterator[tuple[str, bytes | None]]:
        if len(run) == 1:
            yield self._single(*run[0])
        elif run:
            self.batches += 1
            changes = ",".join(delivery.encoded("json", conflated, _json) for delivery, conflated in run)
            yield '2["order_changes",{"changes":[' + changes + "]}]", None


class SocketSink:
    """A subscription's way into its client's queue."""

    def __init__(self, connection: ClientConnection, room: str, filter_wire: dict[str, Any]) -> None:
        self.connection = connection
        self.room = room
        self.filter_wire = filter_wire

    def deliver(self, delivery: Delivery) -> None:
        self.connection.deliver(self.room, delivery)

    def resync(self, reason: str, orders: list[OrderJson], position: str) -> None:
        payload = {"reason": reason, "filter": self.filter_wire, "orders": orders, "position": position}
        self.connection.queue.put_resync(self.room, self.connection.encode("resync", payload))
