"""Snapshots read from the database a page at a time, exact at the position they end at.

The subscription is already in its room, its changes held (``Subscription.held``, the
latest per order). The pages come from the database: for a whole view, the ids the index
holds at the join, fetched by primary key; for a window, the newest orders, by cursor. A
customer's scope is the index's ids of that customer, or the store's newest of that customer:
no page holds another customer's order.
A page may be ahead of the feed (the database answered with a version the feed has not
brought yet): those versions are waited for. Then, in one synchronous step, the changes
held meanwhile are folded in as a last page (the orders changed since the join, as they
are now; the ones deleted or moved out, as ``removed``), the position is read and the
subscription goes live. So the client's view is exact at that position: an order that no
change touched since the join is the same in the database at every page's read, and every
order a change touched is sent as the feed has it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from orders_live.domain.change import Change
from orders_live.domain.order import OrderJson, Status
from orders_live.domain.page import Cursor
from orders_live.domain.source import OrderStore
from orders_live.hub.fanout import SnapshotEnd, Subscription
from orders_live.hub.index import OrderIndex
from orders_live.hub.position import FeedPosition, NotReady
from orders_live.hub.shared_reads import SharedReads
from orders_live.hub.write_waiters import WriteWaiters

PAGE_ORDERS = 1_000
READERS = 8  # snapshot pages read from the database at once, per instance (``SharedReads``)
FEED_WAIT = 10.0  # how long a page may wait for the feed to bring what the database showed


class SnapshotReader:
    def __init__(
        self,
        store: OrderStore,
        index: OrderIndex,
        feed: FeedPosition,
        writes: WriteWaiters,
        settle: Callable[[], None],
        page_orders: int = PAGE_ORDERS,
    ) -> None:
        self.store, self.index, self.feed, self.writes = store, index, feed, writes
        self.settle = settle  # fans out what is applied, so that the position and the rooms agree
        self.page_orders = page_orders
        self.reads: SharedReads[list[OrderJson]] = SharedReads(READERS, lambda: index.generation)

    async def send(self, subscription: Subscription, reason: str | None = None) -> SnapshotEnd:
        """Send ``subscription``'s snapshot through its sink and make it live; the caller has
        joined it with ``held`` set. Raises NotReady or DatabaseUnavailable (still held)."""
        wanted, sink = subscription.filter, subscription.sink
        late: list[tuple[int, int | None]] = []
        sent, first = 0, True
        async for rows, asked in self._pages(subscription):
            held = subscription.held or {}
            # Ahead of the feed: a newer version, or (for ids the index holds) a delete.
            late.extend((o["id"], o["version"]) for o in rows if not self._applied(o["id"], o["version"], held))
            present = {o["id"] for o in rows}
            late.extend((i, None) for i in asked if i not in present and not self._applied(i, None, held))
            matching = [row for row in rows if wanted.matches(row)]  # moved out: waited for, folded in
            rows = rows if len(matching) == len(rows) else matching  # a shared page stays one object
            sink.page(rows, [], first)
            first = False
            sent += len(rows)
            await sink.drained()
        await self._wait_applied(late, subscription)
        # Synchronous from here to the end: the fold, the position and going live agree.
        self.settle()
        held, subscription.held = subscription.held or {}, None
        tail, removed = fold(held, subscription)
        size = self.page_orders
        for start in range(0, max(len(tail), len(removed), 1 if first else 0), size):
            sink.page(tail[start : start + size], removed[start : start + size], first)
            first = False
        return SnapshotEnd(self.feed.current(), self.index.counts(wanted), sent + len(tail), reason)

    async def page(self, subscription: Subscription, before: Cursor | None, limit: int) -> list[OrderJson]:
        """One newest-first page, exact at the position read right after it returns: the
        REST list's. ``subscription`` (sink unused) is in its room, held."""
        wanted = subscription.filter
        if wanted.kind == "id":
            rows = [row for row in await self._fetch([wanted.id or 0]) if wanted.matches(row)]
        else:
            rows = await self._newest(wanted.status, before, limit, wanted.customer)
        held = subscription.held or {}
        late: list[tuple[int, int | None]] = [
            (o["id"], o["version"]) for o in rows if not self._applied(o["id"], o["version"], held)
        ]
        await self._wait_applied(late, subscription)
        self.settle()  # the caller reads the position right after this returns
        held = subscription.held or {}
        full = len(rows) == limit
        edge = rows[-1] if full and rows else None
        by_id = {o["id"]: o for o in rows if o["id"] not in held}
        for order_id, change in held.items():
            order = change.order
            if order is None or not wanted.matches(order):
                continue
            key = (order["updated_at"], order_id)
            if before is not None and not key < before.key:
                continue
            if edge is None or key > (edge["updated_at"], edge["id"]):
                by_id[order_id] = order
        return sorted(by_id.values(), key=lambda o: (o["updated_at"], o["id"]), reverse=True)[:limit]

    async def _pages(self, subscription: Subscription) -> AsyncIterator[tuple[list[OrderJson], list[int]]]:
        """Pages as read, each with the ids it asked for by id (none for a window's)."""
        wanted, limit = subscription.filter, subscription.limit
        if limit is None or wanted.kind == "id":
            ids = self.index.ids(wanted)  # at the join: nothing awaited since
            for start in range(0, len(ids), self.page_orders):
                chunk = ids[start : start + self.page_orders]
                yield await self._fetch(chunk), chunk
            return
        before: Cursor | None = None
        while limit > 0:
            asked = min(self.page_orders, limit)
            rows = await self._newest(wanted.status, before, asked, wanted.customer)
            yield rows, []
            if len(rows) < asked:
                return
            limit -= asked
            before = Cursor.after(rows[-1])

    async def _fetch(self, ids: list[int]) -> list[OrderJson]:
        return await self.reads.read(("ids", *ids), lambda: self.store.fetch(ids))

    async def _newest(
        self, status: Status | None, before: Cursor | None, limit: int, customer: str | None
    ) -> list[OrderJson]:
        key = ("newest", status, before.key if before is not None else None, limit, customer)
        return await self.reads.read(key, lambda: self.store.newest(status, before, limit, customer))

    def _applied(self, order_id: int, version: int | None, held: dict[int, Change]) -> bool:
        """Has the feed brought ``order_id`` at ``version`` or past it (None: its delete)?"""
        change = held.get(order_id)
        if change is not None and (
            change.order is None or (version is not None and change.order["version"] >= version)
        ):
            return True
        current = self.index.version_of(order_id)
        if version is None:
            return current is None
        return current is not None and current >= version

    async def _wait_applied(self, late: list[tuple[int, int | None]], subscription: Subscription) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FEED_WAIT
        for order_id, version in late:
            while not self._applied(order_id, version, subscription.held or {}):
                remaining = deadline - loop.time()
                if remaining <= 0 or not await self.writes.wait(order_id, version, remaining):
                    raise NotReady("the change feed is behind the database; try again")


def fold(held: dict[int, Change], subscription: Subscription) -> tuple[list[OrderJson], list[int]]:
    """The held changes as a last page: the orders the view holds now, and the ones it lost."""
    tail: list[OrderJson] = []
    removed: list[int] = []
    for order_id, change in held.items():
        if change.order is not None and subscription.filter.matches(change.order):
            tail.append(change.order)
        else:
            removed.append(order_id)
    return tail, removed
