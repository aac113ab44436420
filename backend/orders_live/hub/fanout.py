"""Rooms and the fan-out: each change handed once to every subscription whose view it touches.

A transport gives the hub one ``Sink`` per subscription. ``deliver`` must not block: a sink
queues or writes at once. A failing sink is logged and skipped; the others still get the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from orders_live.domain.change import Change
from orders_live.domain.order import OrderJson
from orders_live.domain.subscription import SubscriptionFilter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Delivery:
    """One change on its way out; transports cache their encodings of it here,
    so a change is encoded once, however many subscribers receive it."""

    change: Change
    encodings: dict[tuple[str, bool], Any] = field(default_factory=dict)

    def encoded(self, transport: str, conflated: bool, encode: Callable[[dict[str, Any]], Any]) -> Any:
        """``encode(order_change payload)``, computed once per transport and flag."""
        key = (transport, conflated)
        packet = self.encodings.get(key)
        if packet is None:
            payload = self.change.wire()
            if conflated:
                payload["conflated"] = True
            packet = self.encodings[key] = encode(payload)
        return packet


class Sink(Protocol):
    def deliver(self, delivery: Delivery) -> None: ...

    def resync(self, reason: str, orders: list[OrderJson], position: str) -> None: ...


@dataclass(eq=False, slots=True)
class Subscription:
    filter: SubscriptionFilter
    sink: Sink


class Rooms:
    """Subscriptions by room: ``all``, ``status:<s>``, ``id:<n>``."""

    def __init__(self) -> None:
        self.members: dict[str, set[Subscription]] = {}

    def join(self, subscription: Subscription) -> None:
        self.members.setdefault(subscription.filter.room, set()).add(subscription)

    def leave(self, subscription: Subscription) -> None:
        room = subscription.filter.room
        subscribers = self.members.get(room)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self.members[room]

    def __iter__(self) -> Iterator[Subscription]:
        for subscribers in list(self.members.values()):
            yield from tuple(subscribers)

    def __bool__(self) -> bool:
        return any(self.members.values())

    def by_kind(self) -> dict[str, int]:
        kinds = {"all": 0, "status": 0, "id": 0}
        for room, subscribers in self.members.items():
            kinds["all" if room == "all" else room.split(":", 1)[0]] += len(subscribers)
        return kinds

    def deliver(self, delivery: Delivery, rooms: frozenset[str]) -> int:
        """Hand ``delivery`` to every subscription in ``rooms``; how many took it."""
        delivered = 0
        for room in rooms:
            subscribers = self.members.get(room)
            if not subscribers:
                continue
            for subscription in tuple(subscribers):
                try:
                    subscription.sink.deliver(delivery)
                    delivered += 1
                except Exception:
                    log.exception("a subscriber failed to take change %s", delivery.change.position)
        return delivered
