"""Rooms and the fan-out: each change handed once to every subscription whose view it touches.

A transport gives the hub one ``Sink`` per subscription. ``deliver`` and ``deliver_batch`` must
not block: a sink queues or writes at once. A failing sink is logged and skipped; the others still get the change.
While a subscription's snapshot is being read (``held`` is set) its changes wait there, the
latest per order, and the snapshot's end folds them in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from orders_live.domain.change import Change
from orders_live.domain.order import OrderJson
from orders_live.domain.page import Counts
from orders_live.domain.subscription import SubscriptionFilter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Delivery:
    """One change on its way out; transports cache their encodings of it here,
    so a change is encoded once, however many subscribers receive it."""

    change: Change
    counts: Counts | None = None  # orders per status right after the change
    encodings: dict[tuple[str, bool], Any] = field(default_factory=dict)

    def encoded(self, transport: str, conflated: bool, encode: Callable[[dict[str, Any]], Any]) -> Any:
        """``encode(order_change payload)``, computed once per transport and flag."""
        key = (transport, conflated)
        packet = self.encodings.get(key)
        if packet is None:
            payload = self.change.wire()
            if self.counts is not None:
                payload["counts"] = self.counts
            if conflated:
                payload["conflated"] = True
            packet = self.encodings[key] = encode(payload)
        return packet


@dataclass(frozen=True, slots=True)
class SnapshotEnd:
    """How a snapshot ended: the position it is exact at, the counts for its filter there,
    how many orders its pages carried, and why it was sent (a resync's reason, or None)."""

    position: str
    counts: Counts
    sent: int
    reason: str | None = None


@dataclass(eq=False, slots=True)
class Batch:
    """The changes of one read for one room, in commit order; transports cache their encodings
    of it here, so the batch is encoded once for every subscriber of the room."""

    deliveries: list[Delivery]
    encodings: dict[str, Any] = field(default_factory=dict)

    def encoded(self, transport: str, encode: Callable[[list[Delivery]], Any]) -> Any:
        packet = self.encodings.get(transport)
        if packet is None:
            packet = self.encodings[transport] = encode(self.deliveries)
        return packet


class Sink(Protocol):
    """A subscription's way out. Nothing here blocks but ``drained``, which the snapshot
    reader awaits after each page, so that a snapshot never piles up in memory."""

    def deliver(self, delivery: Delivery) -> None: ...

    def deliver_batch(self, batch: Batch) -> None:
        """Several changes at once, in commit order (the same as ``deliver`` for each)."""
        ...

    def begin_resync(self) -> None:
        """A fresh snapshot follows: what still waits for this subscription is superseded."""
        ...

    def page(self, orders: list[OrderJson], removed: list[int], first: bool) -> None:
        """Queue one snapshot page (split further if its encoding is too large)."""
        ...

    async def drained(self) -> None:
        """Returns once what is queued for the client has been written to it."""
        ...

    def end_resync(self, end: SnapshotEnd) -> None:
        """The pages of a resync are all sent: its closing event."""
        ...


@dataclass(eq=False, slots=True)
class Subscription:
    filter: SubscriptionFilter
    sink: Sink
    limit: int | None = None  # a windowed subscription's snapshot holds the newest ``limit``
    held: dict[int, Change] | None = None  # changes waiting while its snapshot is read


class Rooms:
    """Subscriptions by room: ``all``, ``status:<s>``, ``id:<n>``, and each of them within a
    customer's scope (``all|customer=<name>``...)."""

    def __init__(self) -> None:
        self.members: dict[str, set[Subscription]] = {}
        self.per_customer: dict[str, int] = {}  # scoped subscriptions, by customer

    def join(self, subscription: Subscription) -> None:
        subscribers = self.members.setdefault(subscription.filter.room, set())
        customer = subscription.filter.customer
        if customer is not None and subscription not in subscribers:
            self.per_customer[customer] = self.per_customer.get(customer, 0) + 1
        subscribers.add(subscription)

    def leave(self, subscription: Subscription) -> None:
        room = subscription.filter.room
        subscribers = self.members.get(room)
        if subscribers is not None and subscription in subscribers:
            subscribers.discard(subscription)
            if not subscribers:
                del self.members[room]
            customer = subscription.filter.customer
            if customer is not None:
                left = self.per_customer[customer] - 1
                if left:
                    self.per_customer[customer] = left
                else:
                    del self.per_customer[customer]

    def scoped(self, customer: str) -> bool:
        """Whether any subscription is scoped to ``customer``."""
        return customer in self.per_customer

    def __iter__(self) -> Iterator[Subscription]:
        for subscribers in list(self.members.values()):
            yield from tuple(subscribers)

    def __bool__(self) -> bool:
        return any(self.members.values())

    def by_kind(self) -> dict[str, int]:
        kinds = {"all": 0, "status": 0, "id": 0}
        for subscribers in self.members.values():  # one room's subscriptions share a filter
            kinds[next(iter(subscribers)).filter.kind] += len(subscribers)
        return kinds

    def deliver(self, delivery: Delivery, rooms: Collection[str]) -> int:
        """Hand ``delivery`` to every subscription in ``rooms``; how many took it."""
        return sum(self.deliver_to_room(room, [delivery]) for room in rooms)

    def deliver_to_room(self, room: str, deliveries: list[Delivery]) -> int:
        """Hand one room's changes (in commit order) to its subscriptions: one change as it is,
        several as one Batch shared by all of them; how many subscriptions took them."""
        subscribers = self.members.get(room)
        if not subscribers:
            return 0
        batch = Batch(deliveries) if len(deliveries) > 1 else None
        delivered = 0
        for subscription in tuple(subscribers):
            held = subscription.held
            if held is not None:
                for delivery in deliveries:
                    held[delivery.change.id] = delivery.change
                continue
            try:
                if batch is None:
                    subscription.sink.deliver(deliveries[0])
                else:
                    subscription.sink.deliver_batch(batch)
                delivered += 1
            except Exception:
                log.exception("a subscriber failed to take changes in %s", room)
        return delivered
