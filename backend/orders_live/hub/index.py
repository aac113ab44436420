"""What the hub keeps of every order: its status, its version and its customer, nothing more.

That is all routing needs (the rooms a change touches: MongoDB's delete events and
nx-27017's updates carry neither the previous status nor the previous customer), all that
counts need, and all that the snapshot reader needs to know which orders a view holds and
whether the database read it is ahead of the feed. The orders themselves are read from the
database, a page at a time. One order costs an entry in one of three dicts, and its owner
(``customers``): measured in docs/performance.md; a customer's name is stored once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from orders_live.domain.change import Change
from orders_live.domain.order import STATUSES, Status
from orders_live.domain.page import Counts, IndexRow
from orders_live.domain.subscription import Routing, SubscriptionFilter, routing_of
from orders_live.hub.customers import Customers


class OrderIndex:
    def __init__(self) -> None:
        # Per status: id -> version, in the order the orders were seeded or last changed.
        self.by_status: dict[Status, dict[int, int]] = {status: {} for status in STATUSES}
        self.customers = Customers()
        self.generation = 0  # changes applied and seeds made: what a database read may have missed

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.by_status.values())

    async def seed(self, chunks: AsyncIterator[list[IndexRow]]) -> None:
        """Replace the index with what the database holds now (read chunk by chunk)."""
        by_status: dict[Status, dict[int, int]] = {status: {} for status in STATUSES}
        customers = Customers()
        async for chunk in chunks:
            for order_id, status, version, customer in chunk:
                by_status[status][order_id] = version
                customers.add(order_id, status, customer)
        self.by_status, self.customers = by_status, customers
        self.generation += 1

    def find(self, order_id: int) -> tuple[Status, int] | None:
        for status, ids in self.by_status.items():
            version = ids.get(order_id)
            if version is not None:
                return status, version
        return None

    def version_of(self, order_id: int) -> int | None:
        found = self.find(order_id)
        return None if found is None else found[1]

    def owner_of(self, order_id: int) -> str | None:
        """The customer of ``order_id`` now, or None when there is no such order."""
        return self.customers.owner_of(order_id)

    def apply(self, change: Change) -> Routing:
        """Apply one change; return where it goes. A change older than what the index holds
        (catching up on what a fresh seed already read) only routes."""
        self.generation += 1
        current = self.find(change.id)
        old_status: Status | None = change.before_status
        old_customer = change.before_customer
        stale = change.order is not None and current is not None and current[1] >= change.order["version"]
        if not stale:
            if old_status is None and current is not None:
                old_status = current[0]
            if old_customer is None:
                old_customer = self.customers.owner_of(change.id)
        # Unknown only for a stale change without its previous owner: what the index holds
        # otherwise is the order just before this change (or no order, which no view holds).
        known = change.before_customer is not None or not stale
        routing = routing_of(change, old_status, old_customer, customer_known=known)
        if stale:
            return routing
        if current is not None:
            del self.by_status[current[0]][change.id]
            self.customers.remove(change.id, current[0])
        if change.order is not None:
            self.by_status[change.order["status"]][change.id] = change.order["version"]
            self.customers.add(change.id, change.order["status"], change.order["customer_name"])
        return routing

    def ids(self, wanted: SubscriptionFilter) -> list[int]:
        """The ids a view of ``wanted`` holds now."""
        customer = wanted.customer
        if wanted.kind == "id":
            found = wanted.id is not None and self.find(wanted.id) is not None
            if found and customer is not None and self.owner_of(wanted.id or 0) != customer:
                found = False
            return [wanted.id or 0] if found else []
        if customer is not None:
            own = self.customers.ids.get(customer, set())
            if wanted.kind == "status" and wanted.status is not None:
                in_status = self.by_status[wanted.status]
                return [order_id for order_id in own if order_id in in_status]
            return list(own)
        if wanted.kind == "status" and wanted.status is not None:
            return list(self.by_status[wanted.status])
        pending, shipped, delivered = self.by_status.values()
        return [*pending, *shipped, *delivered]

    def counts(self, wanted: SubscriptionFilter | None = None) -> Counts:
        """Orders per status that ``wanted`` covers (every order, every status, when None)."""
        customer = None if wanted is None else wanted.customer
        if wanted is None or wanted.kind == "all":
            if customer is not None:
                return self.customers.counts(customer)
            return {status: len(ids) for status, ids in self.by_status.items()}
        if wanted.kind == "status" and wanted.status is not None:
            if customer is not None:
                return {wanted.status: self.customers.counts(customer)[wanted.status]}
            return {wanted.status: len(self.by_status[wanted.status])}
        found = self.find(wanted.id or 0)
        if found is None or (customer is not None and self.owner_of(wanted.id or 0) != customer):
            return {}
        return {found[0]: 1}
