"""The orders as of the hub's position, kept in memory.

Snapshots are read from here, in the same synchronous step that joins a room,
so a snapshot and its position always agree and no change falls between them.
It also knows each order's last status, which MongoDB's delete events and
nx-27017's updates do not carry.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from orders_live.domain.change import Change
from orders_live.domain.order import Order, OrderJson, Status
from orders_live.domain.subscription import SubscriptionFilter, rooms_of


class OrderMirror:
    def __init__(self) -> None:
        self.orders: dict[int, OrderJson] = {}

    def seed(self, orders: Iterable[Order]) -> None:
        self.orders = {o.id: o.to_json() for o in orders}

    def apply(self, change: Change) -> frozenset[str]:
        """Apply one change; return the rooms whose views it touches."""
        current = self.orders.get(change.id)
        old_status: Status | None = change.before_status
        stale = False
        if change.order is not None and current is not None:
            # Already past it: catching up on changes a fresh seed already holds.
            stale = current["version"] >= change.order["version"]
        if old_status is None and current is not None and not stale:
            old_status = current["status"]
        rooms = rooms_of(change, old_status)
        if change.order is None:
            self.orders.pop(change.id, None)
        elif not stale:
            self.orders[change.id] = change.order
        return rooms

    def select(self, wanted: SubscriptionFilter, limit: int | None = None) -> list[OrderJson]:
        """Matching orders, newest ``updated_at`` first."""
        if wanted.kind == "id":
            found = self.orders.get(wanted.id or 0)
            return [found] if found else []
        matching: Iterable[OrderJson] = self.orders.values()
        if wanted.kind == "status":
            matching = (o for o in matching if o["status"] == wanted.status)
        key = _newest_first
        if limit is None:
            return sorted(matching, key=key, reverse=True)
        return heapq.nlargest(limit, matching, key=key)


def _newest_first(order: OrderJson) -> tuple[str, int]:
    return (order["updated_at"], order["id"])
