"""Which customer each order belongs to: what scoped rooms, scoped snapshots and scoped counts need.

Kept beside the index (``index.py``), as the index keeps each order's status and version: an
order's owner, the ids each customer holds, and each customer's orders per status. Names are
shared: a customer with ten thousand orders costs one string, not ten thousand.
"""

from __future__ import annotations

from orders_live.domain.order import Status
from orders_live.domain.page import Counts, empty_counts


class Customers:
    def __init__(self) -> None:
        self.owner: dict[int, str] = {}
        self.ids: dict[str, set[int]] = {}
        self.per_status: dict[str, Counts] = {}
        self._names: dict[str, str] = {}  # each name's one stored copy

    def __len__(self) -> int:
        return len(self.ids)

    def owner_of(self, order_id: int) -> str | None:
        return self.owner.get(order_id)

    def add(self, order_id: int, status: Status, customer: str) -> None:
        customer = self._names.setdefault(customer, customer)
        ids = self.ids.get(customer)
        if ids is None:
            ids = self.ids[customer] = set()
            self.per_status[customer] = empty_counts()
        ids.add(order_id)
        self.owner[order_id] = customer
        self.per_status[customer][status] += 1

    def remove(self, order_id: int, status: Status) -> None:
        customer = self.owner.pop(order_id, None)
        if customer is None:
            return
        ids = self.ids[customer]
        ids.discard(order_id)
        if ids:
            self.per_status[customer][status] -= 1
        else:
            del self.ids[customer], self.per_status[customer], self._names[customer]

    def counts(self, customer: str) -> Counts:
        held = self.per_status.get(customer)
        return dict(held) if held is not None else empty_counts()
