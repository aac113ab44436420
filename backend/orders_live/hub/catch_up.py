"""Catch-up from a position older than the hub's memory: read the database's log up to where
memory starts, and what bounds that read.

A read is bounded three ways: the position is checked against the log's bounds before
anything is read (past its head: refused, ``PositionRefused``; behind what it keeps:
HistoryLost); at most ``budget`` changes may lie between the position and memory
(TooManyChanges, counted by the database before it sends any); and the database applies the
subscription's filter, so only the changes that may concern it come back. Reads share
``CatchUpSlots``: a few at once per instance, one at a time per client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from orders_live.domain.change import Change
from orders_live.domain.identity import Identity
from orders_live.domain.order import Status
from orders_live.domain.source import ChangeFeed
from orders_live.domain.subscription import ScopeUnknown, SubscriptionFilter, routing_of


class PositionRefused(Exception):
    """The position is past the newest change of the database's log: no instance handed it out."""

    def __init__(self, since: str) -> None:
        super().__init__(f"{since!r} is ahead of the database's change log: not a position it handed out")
        self.since = since


class CatchUpBusy(Exception):
    """No catch-up slot came free for this client in time: try again shortly."""


def catch_up_client(identity: Identity, address: str) -> str:
    """Whose catch-up a request is, for ``CatchUpSlots``: a verified token's subject, else the
    peer's address (shared tokens and an open service say nothing about who holds them)."""
    return f"sub:{identity.sub}" if identity.origin == "jwt" else f"address:{address}"


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class CatchUpSlots:
    """At most ``total`` catch-up reads at once, and at most one per client: a client's next
    read waits for its previous one, so one client never holds more than one slot and others'
    reads go ahead. A read that has no slot within ``wait`` seconds gets CatchUpBusy."""

    def __init__(self, total: int, wait: float) -> None:
        self.total, self.wait = total, wait
        self._slots = asyncio.Semaphore(total)
        self._turns: dict[str, _Turn] = {}

    @property
    def clients(self) -> int:
        """Clients with a read in a slot or waiting for one."""
        return len(self._turns)

    @contextlib.asynccontextmanager
    async def hold(self, client: str) -> AsyncIterator[None]:
        turn = self._turns.setdefault(client, _Turn())
        turn.users += 1
        try:
            deadline = asyncio.get_running_loop().time() + self.wait
            try:
                async with asyncio.timeout_at(deadline):
                    await turn.lock.acquire()
            except TimeoutError:
                raise CatchUpBusy(f"this client's earlier catch-up still runs; try again in {self.wait:g}s") from None
            try:
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._slots.acquire()
                except TimeoutError:
                    raise CatchUpBusy(f"{self.total} catch-ups are running; try again shortly") from None
                try:
                    yield
                finally:
                    self._slots.release()
            finally:
                turn.lock.release()
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[client]


async def read_changes_since(
    feed: ChangeFeed, since: str, upto: str, wanted: SubscriptionFilter, budget: int
) -> tuple[list[Change], int]:
    """What a subscription to ``wanted`` got after ``since`` up to ``upto`` (the changes that
    touch its room; for a scope, the leaves of orders that moved out of it), and how many
    changes the database sent for it. Raises
    TooManyChanges past ``budget`` changes, ScopeUnknown when a scoped read cannot tell whether
    a change took an order out of its scope."""
    found: list[Change] = []
    status_per_order: dict[int, Status] = {}
    customer_per_order: dict[int, str] = {}  # as seen earlier in this read
    read = await feed.changes_between(since, upto, wanted, budget)
    for item in read:
        old_status = item.before_status or status_per_order.get(item.id)
        old_customer = item.before_customer or customer_per_order.get(item.id)
        routing = routing_of(item, old_status, old_customer, customer_known=old_customer is not None)
        if item.order is None:
            status_per_order.pop(item.id, None)
            customer_per_order.pop(item.id, None)
        else:
            status_per_order[item.id] = item.order["status"]
            customer_per_order[item.id] = item.order["customer_name"]
        seen = routing.seen_by(wanted, item)
        if seen is None and routing.uncertain_for(wanted):
            raise ScopeUnknown(f"the owner before {item.position} is not recorded")
        if seen is not None:
            found.append(seen)
    return found, len(read)
