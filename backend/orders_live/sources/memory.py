"""An in-memory database: the fast test tier's, with the same contracts as the real ones.

One object plays every part (``Connection``, ``OrderStore``, ``ChangeFeed``, ``Checkpoints``)
but the agent's action log (``memory_actions``); ``MemoryDatabase().source()`` bundles them as a
``Source``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

from orders_live.domain.change import CaughtUp, Change, HistoryLost, Op
from orders_live.domain.order import Order, OrderCreate, OrderJson, OrderPatch, Status, iso_millis, utc_now
from orders_live.domain.page import Cursor, IndexRow, newest_first
from orders_live.domain.source import (
    OrderNotFound,
    PositionAhead,
    PositionKey,
    Source,
    TooManyChanges,
    VersionConflict,
)
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.sources.memory_actions import MemoryActionLog

PREFIX = "m:"
AWAIT_SECONDS = 0.05


class MemoryDatabase:
    description = "in-memory"

    def __init__(self) -> None:
        self._orders: dict[int, Order] = {}
        self._log: list[Change] = []
        self._first_kept_seq = 1  # seq of self._log[0]
        self._seq = 0
        self._ids = itertools.count(1)
        self._appended = asyncio.Event()
        self._checkpoints: dict[str, str] = {}
        self.actions = MemoryActionLog()

    def source(self) -> Source:
        return Source(connection=self, store=self, feed=self, checkpoints=self, actions=self.actions)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def index_rows(self) -> AsyncIterator[list[IndexRow]]:
        rows = [(o.id, o.status, o.version, o.customer_name) for o in self._orders.values()]
        for start in range(0, len(rows), 10_000):
            yield rows[start : start + 10_000]

    async def fetch(self, ids: Sequence[int]) -> list[OrderJson]:
        return [self._orders[i].to_json() for i in ids if i in self._orders]

    async def newest(
        self, status: Status | None, before: Cursor | None, limit: int, customer: str | None = None
    ) -> list[OrderJson]:
        orders = (
            o.to_json()
            for o in self._orders.values()
            if (status is None or o.status == status) and (customer is None or o.customer_name == customer)
        )
        if before is not None:
            edge = before.key
            orders = (o for o in orders if newest_first(o) < edge)
        return sorted(orders, key=newest_first, reverse=True)[:limit]

    async def get(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    async def create(self, data: OrderCreate) -> Order:
        order = Order(id=next(self._ids), updated_at=utc_now(), version=1, **data.model_dump())
        self._orders[order.id] = order
        self._append("insert", order, None)
        return order

    async def update(
        self, order_id: int, patch: OrderPatch, expected_version: int | None, owner: str | None = None
    ) -> Order:
        current = self._current(order_id, expected_version, owner)
        order = current.model_copy(update={**patch.changes(), "updated_at": utc_now(), "version": current.version + 1})
        self._orders[order_id] = order
        self._append("update", order, current)
        return order

    async def delete(self, order_id: int, expected_version: int | None) -> None:
        current = self._current(order_id, expected_version)
        del self._orders[order_id]
        self._append("delete", None, current)

    def _current(self, order_id: int, expected_version: int | None, owner: str | None = None) -> Order:
        current = self._orders.get(order_id)
        if current is None or (owner is not None and current.customer_name != owner):
            raise OrderNotFound(order_id)
        if expected_version is not None and current.version != expected_version:
            raise VersionConflict(current)
        return current

    def _append(self, op: Op, order: Order | None, before: Order | None) -> None:
        self._seq += 1
        subject = order or before
        assert subject is not None
        self._log.append(
            Change(
                op=op,
                id=subject.id,
                order=order.to_json() if order else None,
                position=f"{PREFIX}{self._seq}",
                committed_at=iso_millis(utc_now()),
                before_status=before.status if before else None,
                before_customer=before.customer_name if before else None,
            )
        )
        self._appended.set()
        self._appended = asyncio.Event()

    def forget_history(self, keep: int = 0) -> None:
        """Drop all but the last ``keep`` log entries, as an oplog rolls over."""
        drop = max(0, len(self._log) - keep)
        del self._log[:drop]
        self._first_kept_seq += drop

    async def watch(self, resume_after: str | None) -> AsyncGenerator[Change | CaughtUp, None]:
        if resume_after is None:
            after = self._seq
        else:
            number = self._number(resume_after)
            if number is None or number > self._seq:
                raise HistoryLost(f"unknown position {resume_after!r}")
            after = number
            if after < self._first_kept_seq - 1:
                raise HistoryLost(f"history before {resume_after!r} is gone")
        while True:
            while after < self._seq:
                after += 1
                if after < self._first_kept_seq:
                    raise HistoryLost("history was forgotten under a live watcher")
                yield self._log[after - self._first_kept_seq]
            yield CaughtUp(f"{PREFIX}{after}")
            if after == self._seq:
                # Like MongoDB's awaitData: an empty batch after a short wait.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(AWAIT_SECONDS):
                        await self._appended.wait()

    async def check_position(self, position: str) -> None:
        self._seq_of(position)

    def _seq_of(self, position: str) -> int:
        number = self._number(position)
        if number is None:
            raise HistoryLost(f"not a position of this database: {position!r}")
        if number > self._seq:
            raise PositionAhead(f"position {position!r} is ahead of this database's log")
        if number < self._first_kept_seq - 1:
            raise HistoryLost(f"history before {position!r} is gone")
        return number

    async def changes_between(self, after: str, upto: str, wanted: SubscriptionFilter, budget: int) -> list[Change]:
        first, last = self._seq_of(after), self._seq_of(upto)
        if last - first > budget:
            raise TooManyChanges(f"{last - first} changes between {after} and {upto}, more than {budget}")
        start = self._first_kept_seq
        return [c for c in self._log[first + 1 - start : last + 1 - start] if wanted.may_concern(c)]

    def position_key(self, position: str) -> PositionKey | None:
        return self._number(position)

    @staticmethod
    def _number(position: str) -> int | None:
        """The log's number in a position of this database."""
        if not position.startswith(PREFIX) or not position[len(PREFIX) :].isdigit():
            return None
        return int(position[len(PREFIX) :])

    async def load_checkpoint(self, instance: str) -> str | None:
        return self._checkpoints.get(instance)

    async def save_checkpoint(self, instance: str, position: str) -> None:
        self._checkpoints[instance] = position
