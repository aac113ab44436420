"""One Socket.IO client: its subscriptions, its ClientQueue and its writer task.

Every packet for a client (replayed changes, acks, live changes, resyncs) goes through
this one queue and one writer, so their order on the wire is the order in which they
were put. The writer sends everything queued since its last write at once, and a run of
several changes goes out as one ``order_changes`` batch: under load batches grow by
themselves and the cost per change falls, while a lone change still goes out at once.

Two ways out, never mixed for one client (``Channel``): WebSocket frames written straight
to the client's socket (a lone change's frame is built once and shared by every client), or
python-engineio's own send (long-polling clients, and every client when the direct path is off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from orders_live.domain.identity import OPEN, Identity
from orders_live.domain.order import OrderJson
from orders_live.hub import Batch, Delivery, SnapshotEnd, Subscription
from orders_live.runtime.wakeup import Wakeup
from orders_live.transports.client_queue import ClientQueue, SlowClientReport
from orders_live.transports.snapshot_pages import MIN_PAGE_BYTES, RecentPage
from orders_live.transports.socketio._engine import Engine, text_frame
from orders_live.transports.socketio._engine_channel import Channel
from orders_live.transports.socketio.admission import Admitted
from orders_live.transports.socketio.subscribes import SubscribesInFlight
from orders_live.transports.socketio.write_rounds import WriteRounds

log = logging.getLogger(__name__)
SINGLE_FRAME = ("ws-frame", False)  # the encodings key of one change's WebSocket frame, unconflated


class Hold:
    """A barrier in a client's queue: what was queued before it is handed over, then nothing
    after it is written until ``release`` (the fallback path's acks keep their place so)."""

    def __init__(self) -> None:
        self.handed_over = asyncio.get_running_loop().create_future()
        self.released = asyncio.Event()

    def release(self, *_: object) -> None:
        self.released.set()


# What waits in the queue: an encoded control packet, a change (and its conflated flag), a Hold.
Outgoing = str | tuple[Delivery, bool] | Hold


class ClientConnection:
    def __init__(
        self,
        sid: str,
        channel: Channel,
        engine: Engine,
        capacity: int,
        on_resync: Callable[[ClientConnection], None],
        on_broken: Callable[[ClientConnection, BaseException], None],
        conflation_capacity: int = 10_000,
        report_slow: SlowClientReport | None = None,
        in_flight: SubscribesInFlight | None = None,
        rounds: WriteRounds | None = None,
    ) -> None:
        self.sid = sid
        self.eio_sid = sid  # its Engine.IO session (its socket), set by the gateway
        self.admitted: Admitted | None = None  # who connected, its session (set once admitted)
        self.subscriptions: dict[str, Subscription] = {}
        self.in_flight = in_flight if in_flight is not None else SubscribesInFlight(sid)  # being answered
        self._holds: set[Hold] = set()  # the fallback's barriers not yet handed over
        self.channel = channel
        self.engine = engine
        self.direct = channel.direct
        self._on_broken = on_broken
        self.queue: ClientQueue[Outgoing] = ClientQueue(
            sid,
            lambda delivery, conflated: (delivery, conflated),
            lambda: on_resync(self),
            capacity,
            conflation_capacity,
        )
        if report_slow is not None:
            self.queue.report_slow = report_slow
        self._writer: asyncio.Task[None] | None = None
        self.rounds = rounds  # the fan-out's frames, written a round at a time (None: at once)
        self.deferred = 0  # this client's frames waiting in a round: nothing of its own goes first
        self._writing = False  # the writer holds packets it has taken and not yet written
        self._wrote = Wakeup()  # set each time the writer finishes a round
        self.broken = False
        self.page_bytes = 512 * 1024  # the largest snapshot page this client is sent

    @property
    def identity(self) -> Identity:
        """Who connected (a refresh may move its exp, never who it is)."""
        return self.admitted.identity if self.admitted is not None else OPEN

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"socketio.writer.{self.sid}")

    async def close(self) -> None:
        self.in_flight.cancel_all()
        for barrier in self._holds:  # their acks go nowhere now: their handlers may end
            if not barrier.handed_over.done():
                barrier.handed_over.set_result(None)
            barrier.release()
        self._holds.clear()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
            self._wrote.set()  # a snapshot waiting for room learns that the client is gone

    @property
    def _busy(self) -> bool:
        """Something for this client is not yet written: with its writer, queued, or in a round."""
        return self._writing or not self.queue.idle or bool(self.deferred)

    async def written(self) -> None:
        """Returns once everything queued so far is written; ConnectionError once the
        connection is closed or broken (a snapshot being sent to it stops)."""
        while self._busy:
            if self.broken or self._writer is None or self._writer.done():
                raise ConnectionError(f"client {self.sid} is gone")
            self._wrote.clear()
            await self._wrote.wait()
        if self.broken or self._writer is None:
            raise ConnectionError(f"client {self.sid} is gone")

    async def flush(self, within: float) -> None:
        """Shutting down: give the writer up to ``within`` seconds to send what is queued."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self._busy:
                    self._wrote.clear()
                    await self._wrote.wait()

    def deliver(self, room: str, delivery: Delivery) -> None:
        """The hot path: with nothing queued and a socket that takes more, the change's
        shared frame goes into the current round of writes, with no task to wake; otherwise it
        queues."""
        direct = self.direct
        if direct is not None and not self._writing and self.queue.idle and direct.writable:
            frame = delivery.encodings.get(SINGLE_FRAME)  # built by the first client it reaches
            self._write_now(frame if frame is not None else self._single(delivery, False)[1])
            return
        self.queue.put_change(room, delivery)

    def deliver_batch(self, room: str, batch: Batch) -> None:
        """Changes read together: to a client that keeps up, the room's one ``order_changes``
        frame (built once for all of its subscribers), into the current round; otherwise they queue."""
        direct = self.direct
        if direct is not None and not self._writing and self.queue.idle and direct.writable:
            self._write_now(batch.encoded("ws-frame", self._batch_frame))
            return
        for delivery in batch.deliveries:
            self.queue.put_change(room, delivery)

    def _write_now(self, frame: bytes) -> None:
        """The fan-out's frame for a client that keeps up: into the current round of writes
        (or, without rounds, written at once)."""
        if self.rounds is not None:
            self.rounds.add(self, frame)
            return
        self.write_deferred(frame, counted=False)

    def write_deferred(self, frame: bytes, counted: bool = True) -> None:
        if counted:
            self.deferred -= 1
        try:
            if self.direct is not None:
                self.direct.write(frame)
        except Exception as exc:
            self._fail(exc)
        if counted and not self.deferred:
            self._wrote.set()  # the writer, ``written()`` and ``flush()`` wait for this

    def _batch_frame(self, deliveries: list[Delivery]) -> bytes:
        return text_frame(self.engine.encode_batch([(delivery, False) for delivery in deliveries]))

    def emit(self, event: str, payload: Any) -> None:
        self.queue.put_control(self.engine.encode_event(event, payload))

    def reply(self, packet: str) -> bool:
        """Queue the answer to a request; False when too many answers wait unread already."""
        return self.queue.put_reply(packet)

    async def hold(self) -> Hold | None:
        """Returns once everything queued so far is handed over; later packets wait for
        ``release()`` on the returned Hold. None when too many answers wait unread already."""
        barrier = Hold()
        if not self.queue.put_reply(barrier):
            return None
        self._holds.add(barrier)
        barrier.handed_over.add_done_callback(lambda _: self._holds.discard(barrier))
        await barrier.handed_over
        return barrier

    async def _write(self) -> None:
        while True:
            await self.queue.wait()
            packets = self._packets(self.queue.take())
            self._writing = True
            try:
                while self.deferred:  # the fan-out's frames that came before these go first
                    self._wrote.clear()
                    await self._wrote.wait()
                await self._write_round(packets)
            except asyncio.CancelledError:
                raise
            except ConnectionError:
                log.debug("client %s: connection lost while writing", self.sid)
            except Exception as exc:
                self._fail(exc)
                return
            finally:
                self._writing = False
                self._wrote.set()

    def _fail(self, error: Exception) -> None:
        """What was taken may be half written: the client must start over, so it is dropped
        (it reconnects and catches up from its last position). Once per connection."""
        if self.broken:
            return
        self.broken = True
        log.warning("client %s: writer failed (%s: %s); dropping the connection", self.sid, type(error).__name__, error)
        self._wrote.set()
        self._on_broken(self, error)

    async def _write_round(self, packets: Iterator[tuple[str, bytes | None] | Hold]) -> None:
        direct = self.direct
        for item in packets:
            if isinstance(item, Hold):
                if not item.handed_over.done():
                    item.handed_over.set_result(None)
                await item.released.wait()
                continue
            text, frame = item
            if direct is not None and direct.open:
                direct.write(frame or text_frame(text))
            elif direct is None:
                await self.channel.send(text)
                await self.channel.wait_writable()
        if direct is not None:
            await direct.drained()  # a client that reads slowly holds only this writer

    def _packets(self, outgoing: list[Outgoing]) -> Iterator[tuple[str, bytes | None] | Hold]:
        """Encoded packets, each with its shared WebSocket frame when it has one."""
        run: list[tuple[Delivery, bool]] = []
        for item in outgoing:
            if isinstance(item, tuple):
                run.append(item)
                continue
            yield from self._changes(run)
            run = []
            yield item if isinstance(item, Hold) else (item, None)
        yield from self._changes(run)

    def _single(self, delivery: Delivery, conflated: bool) -> tuple[str, bytes]:
        """One change's packet and its WebSocket frame, both built once for every client."""
        text: str = delivery.encoded("socketio", conflated, lambda p: self.engine.encode_event("order_change", p))
        frame: bytes = delivery.encoded(SINGLE_FRAME[0], conflated, lambda _: text_frame(text))
        return text, frame

    def _changes(self, run: list[tuple[Delivery, bool]]) -> Iterator[tuple[str, bytes | None]]:
        if len(run) == 1:
            yield self._single(*run[0])
        elif run:
            yield self.engine.encode_batch(run), None


def page_bytes_for(auth: Any, ceiling: int) -> int:
    """Pages no larger than the client says its transport takes (``auth.max_message``)."""
    announced = auth.get("max_message") if isinstance(auth, dict) else None
    if isinstance(announced, int) and not isinstance(announced, bool) and announced >= MIN_PAGE_BYTES:
        return min(ceiling, announced)
    return ceiling


class SocketSink:
    """A subscription's way into its client's queue. Snapshot pages are split until each
    packet fits ``page_bytes``."""

    def __init__(
        self,
        connection: ClientConnection,
        room: str,
        filter_wire: dict[str, Any],
        recent: RecentPage[str],
        page_bytes: int = 512 * 1024,
    ) -> None:
        self.connection = connection
        self.recent = recent
        self.room = room
        self.filter_wire = filter_wire
        self.page_bytes = page_bytes

    def deliver(self, delivery: Delivery) -> None:
        self.connection.deliver(self.room, delivery)

    def deliver_batch(self, batch: Batch) -> None:
        self.connection.deliver_batch(self.room, batch)

    def begin_resync(self) -> None:
        self.connection.queue.drop_room(self.room)

    def page(self, orders: list[OrderJson], removed: list[int], first: bool) -> None:
        for packet in self.recent.packets(self.page_bytes, self.filter_wire, orders, removed, first):
            self.connection.queue.put_control(packet)

    async def drained(self) -> None:
        await self.connection.written()

    def end_resync(self, end: SnapshotEnd) -> None:
        payload = {
            "reason": end.reason,
            "filter": self.filter_wire,
            "position": end.position,
            "counts": end.counts,
            "snapshot": end.sent,
        }
        self.connection.emit("resync", payload)
