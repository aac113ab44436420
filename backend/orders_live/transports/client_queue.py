"""One client's outbound queue: ordered, bounded, with the overflow policy ``conflate_then_resync``.

Transport-agnostic: it holds packets already encoded by the transport that owns it.

- Control packets (acks, replayed changes, snapshot pages, resyncs) are never dropped or merged.
- Live changes queue in order. When ``capacity`` of them are waiting the client
  is behind: from then on only the latest change per (subscription, order) is
  kept (a delete wins, since it is the latest), and once the queue has drained
  those merged changes are sent flagged ``"conflated": true``. The client still
  converges, without a disconnect.
- Past ``conflation_capacity`` distinct orders even that is too much: the
  waiting changes are dropped and the client gets a fresh snapshot (``resync``).

Memory per client is bounded by both capacities; one slow client never holds
up the others, since each client has its own writer.

- Replies (the answers to a client's requests) are control packets too, counted: past
  ``reply_capacity`` of them waiting, ``put_reply`` says no, and the transport disconnects a
  client that asks and never reads the answers instead of holding them for ever.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, TypeVar

from orders_live.hub import Delivery
from orders_live.runtime.wakeup import Wakeup

log = logging.getLogger(__name__)

Packet = TypeVar("Packet")
EncodeChange = Callable[[Delivery, bool], Packet]  # (delivery, conflated) -> packet


SlowClientReport = Callable[[str], None]  # called with "conflated" or "resynced"


def _unreported(outcome: str) -> None:
    return None


class ClientQueue(Generic[Packet]):
    def __init__(
        self,
        name: str,
        encode_change: Callable[[Delivery, bool], Packet],
        on_resync: Callable[[], None],
        capacity: int = 1_000,
        conflation_capacity: int = 10_000,
        report_slow: SlowClientReport = _unreported,
        reply_capacity: int = 64,
    ) -> None:
        self.name = name
        self.reply_capacity = reply_capacity
        self.replies_waiting = 0
        self.report_slow = report_slow
        self.capacity, self.conflation_capacity = capacity, conflation_capacity
        self._encode_change = encode_change
        self._on_resync = on_resync
        self._items: deque[tuple[str | None, Packet]] = deque()  # (room of a change, or None, packet)
        self._waiting_changes = 0
        self._merged: OrderedDict[tuple[str, int], Delivery] = OrderedDict()
        self._conflating = False
        self._resync_due = False
        self._wake = Wakeup()

    # -- producers (the hub's sinks, the transport's handlers) ----------------------
    def put_change(self, room: str, delivery: Delivery) -> None:
        if self._resync_due:
            return  # the snapshot to come covers it
        if self._conflating:
            key = (room, delivery.change.id)
            self._merged.pop(key, None)
            self._merged[key] = delivery  # latest wins, in the order of latest changes
            if len(self._merged) > self.conflation_capacity:
                self._drop_to_resync()
            return
        if self._waiting_changes >= self.capacity:
            self._conflating = True
            self.report_slow("conflated")
            log.info("client %s is %d changes behind: conflating", self.name, self._waiting_changes)
            self.put_change(room, delivery)
            return
        self._items.append((room, self._encode_change(delivery, False)))
        self._waiting_changes += 1
        self._wake.set()

    def put_control(self, packet: Packet) -> None:
        self._items.append((None, packet))
        self._wake.set()

    def put_reply(self, packet: Packet) -> bool:
        """Queue the answer to a request; False (and not queued) when ``reply_capacity``
        answers are waiting already: the client is not reading them."""
        if self.replies_waiting >= self.reply_capacity:
            return False
        self.replies_waiting += 1
        self.put_control(packet)
        return True

    def drop_room(self, room: str) -> None:
        """A fresh snapshot for one subscription follows: the changes still waiting for it
        are older than the snapshot, so they go (sent after it, they could undo it)."""
        self._items = deque(item for item in self._items if item[0] != room)
        self._waiting_changes = sum(1 for item in self._items if item[0] is not None)
        for key in [key for key in self._merged if key[0] == room]:
            del self._merged[key]

    def _drop_to_resync(self) -> None:
        log.info("client %s is too far behind even merged: resync", self.name)
        self.report_slow("resynced")
        self._resync_due = True
        self._conflating = False
        self._merged.clear()
        self._items = deque(item for item in self._items if item[0] is None)
        self._waiting_changes = 0
        self._wake.set()

    # -- the writer ---------------------------------------------------------------
    @property
    def backlog(self) -> int:
        return len(self._items) + len(self._merged)

    @property
    def idle(self) -> bool:
        """Nothing waits: a change may skip the queue without overtaking anything."""
        return not self._items and not self._merged and not self._resync_due

    @property
    def behind(self) -> bool:
        return self._conflating or self._resync_due

    async def wait(self) -> None:
        await self._wake.wait()

    def take(self) -> list[Packet]:
        """Everything ready to write now, in order (empty when nothing is)."""
        if self._resync_due:
            self._resync_due = False
            self._on_resync()  # puts one resync (control) packet per subscription
        if not self._items and self._merged:
            merged, self._merged = self._merged, OrderedDict()
            self._conflating = False
            for key, delivery in merged.items():
                self._items.append((key[0], self._encode_change(delivery, True)))
        packets = [packet for _, packet in self._items]
        self._items.clear()
        self._waiting_changes = 0
        self.replies_waiting = 0
        if not self._merged and not self._resync_due:
            self._wake.clear()
        return packets
