"""What the hub keeps of every order: its status and version, nothing more.

That is all routing needs (the rooms a change touches: MongoDB's delete events and
nx-27017's updates do not carry the previous status), all that counts need, and all that
the snapshot reader needs to know which orders a view holds and whether the database
read it is ahead of the feed. The orders themselves are read from the database, a page at
a time. One order costs one entry in one of three dicts (about 100 bytes: measured in
docs/performance.md), whatever its names' length.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from orders_live.domain.change import Change
from orders_live.domain.order import STATUSES, Status
from orders_live.domain.page import Counts, IndexRow
from orders_live.domain.subscription import SubscriptionFilter, rooms_of


class OrderIndex:
    def __init__(self) -> None:
        # Per status: id -> version, in the order the orders were seeded or last changed.
        self.by_status: dict[Status, dict[int, int]] = {status: {} for status in STATUSES}

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.by_status.values())

    async def seed(self, chunks: AsyncIterator[list[IndexRow]]) -> None:
        """Replace the index with what the database holds now (read chunk by chunk)."""
        by_status: dict[Status, dict[int, int]] = {status: {} for status in STATUSES}
        async for chunk in chunks:
            for order_id, status, version in chunk:
                by_status[status][order_id] = version
        self.by_status = by_status

    def find(self, order_id: int) -> tuple[Status, int] | None:
        for status, ids in self.by_status.items():
            version = ids.get(order_id)
            if version is not None:
                return status, version
        return None

    def version_of(self, order_id: int) -> int | None:
        found = self.find(order_id)
        return None if found is None else found[1]

    def apply(self, change: Change) -> frozenset[str]:
        """Apply one change; return the rooms whose views it touches. A change older than
        what the index holds (catching up on what a fresh seed already read) only routes."""
        current = self.find(change.id)
        old_status: Status | None = change.before_status
        stale = change.order is not None and current is not None and current[1] >= change.order["version"]
        if old_status is None and current is not None and not stale:
            old_status = current[0]
        rooms = rooms_of(change, old_status)
        if stale:
            return rooms
        if current is not None:
            del self.by_status[current[0]][change.id]
        if change.order is not None:
            self.by_status[change.order["status"]][change.id] = change.order["version"]
        return rooms

    def ids(self, wanted: SubscriptionFilter) -> list[int]:
        """The ids a view of ``wanted`` holds now."""
        if wanted.kind == "id":
            return [wanted.id] if wanted.id is not None and self.find(wanted.id) is not None else []
        if wanted.kind == "status" and wanted.status is not None:
            return list(self.by_status[wanted.status])
        pending, shipped, delivered = self.by_status.values()
        return [*pending, *shipped, *delivered]

    def counts(self, wanted: SubscriptionFilter | None = None) -> Counts:
        """Orders per status that ``wanted`` covers (every status when None)."""
        if wanted is None or wanted.kind == "all":
            return {status: len(ids) for status, ids in self.by_status.items()}
        if wanted.kind == "status" and wanted.status is not None:
            return {wanted.status: len(self.by_status[wanted.status])}
        found = self.find(wanted.id or 0)
        return {} if found is None else {found[0]: 1}
