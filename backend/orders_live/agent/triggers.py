"""Triggers: the only things that start a model call.

``TriggerWatch`` observes the agent's ``LiveOrders`` events and turns them into ``Trigger``s:

* ``pending_too_long``: an order still ``pending`` ``pending_after`` seconds after its last
  change (``updated_at``). Timers are armed from every snapshot and change, so orders already
  pending when the agent starts fire too (at once, if overdue); a timer whose order has moved
  on, changed again or gone is dropped when it comes due.
* ``shipped``: an order whose status became ``shipped``. A live change says so directly (the
  order before and after). After a snapshot or resync the statuses the agent knew are compared
  with the new ones; an order the agent never saw is taken as newly shipped only if it was
  updated within ``shipped_lookback`` seconds (so a first start does not notify every order
  that shipped long ago, and a restart still notices what shipped while it was down).

Triggers wait in a ``TriggerQueue`` (``agent.trigger_queue``): bounded, with at most one
trigger per order and kind in any ``window`` seconds.

More triggers are one more ``TriggerKind`` and a rule in ``observe``.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from orders_live.agent.trigger_queue import TriggerQueue, Why
from orders_live.client.live_orders import LiveEvent
from orders_live.domain.order import OrderJson
from orders_live.domain.page import parse_instant

TriggerKind = Literal["pending_too_long", "shipped"]
TRIGGERS: tuple[TriggerKind, ...] = ("pending_too_long", "shipped")


@dataclass(frozen=True, slots=True)
class Trigger:
    """One event the agent may act on: ``order`` as it was when the trigger fired."""

    kind: TriggerKind
    order: OrderJson
    from_snapshot: bool = False  # a shipped order noticed in a snapshot, not seen changing

    @property
    def order_id(self) -> int:
        return int(self.order["id"])

    @property
    def version(self) -> int:
        return int(self.order["version"])

    @property
    def key(self) -> tuple[str, int, int]:
        """At most one action per key, ever (the action log enforces it too)."""
        return (self.kind, self.order_id, self.version)


class TriggerWatch:
    def __init__(
        self,
        pending_after: float,
        shipped_lookback: float = 3600.0,
        clock: Callable[[], float] = time.time,
        capacity: int = 1_000,
        window: float = 0.0,
        on_drop: Callable[[Trigger, Why], None] | None = None,
    ) -> None:
        self.pending_after, self.shipped_lookback, self.clock = pending_after, shipped_lookback, clock
        self.ready = TriggerQueue(capacity, window, clock, on_drop)
        self._statuses: dict[int, tuple[str, int]] = {}  # id -> (status, version) the agent last saw
        self._view: dict[int, OrderJson] = {}  # the client's view (no second copy of the orders)
        self._timers: list[tuple[float, int, int]] = []  # (due, id, version), a heap
        self._wake = asyncio.Event()

    @property
    def armed(self) -> int:
        """Pending-timers waiting (stale ones included until they come due)."""
        return len(self._timers)

    def done_with(self, trigger: Trigger) -> None:
        """The worker has finished ``trigger``: the same key may be queued again (it will be
        found in the action log)."""
        self.ready.done_with(trigger)

    # -- observing the stream ---------------------------------------------------------
    def observe(self, event: LiveEvent, view: dict[int, OrderJson]) -> None:
        """``LiveOrders``' ``on_event``: synchronous and quick (it runs in the client's task)."""
        self._view = view
        if event.kind == "change" and event.change is not None:
            self._changed(event.change.get("order"), int(event.change["id"]), event.before)
        elif event.kind in ("snapshot", "resync"):
            self._replaced(view.values())
        self._wake.set()

    def _changed(self, order: OrderJson | None, order_id: int, before: OrderJson | None) -> None:
        if order is None:
            self._statuses.pop(order_id, None)
            return
        previous = self._statuses.get(order_id)
        was = before["status"] if before is not None else (previous[0] if previous else None)
        self._remember(order)
        if order["status"] == "shipped" and was != "shipped":
            self._queue(Trigger("shipped", order))

    def _replaced(self, orders: Iterable[OrderJson]) -> None:
        known = self._statuses
        self._statuses = {}
        recent = self.clock() - self.shipped_lookback
        for order in orders:
            self._remember(order)
            if order["status"] != "shipped":
                continue
            seen = known.get(int(order["id"]))
            if seen is None:
                if _instant(order) >= recent:
                    self._queue(Trigger("shipped", order, from_snapshot=True))
            elif seen[0] != "shipped":
                self._queue(Trigger("shipped", order))

    def _remember(self, order: OrderJson) -> None:
        order_id, version = int(order["id"]), int(order["version"])
        self._statuses[order_id] = (order["status"], version)
        if order["status"] == "pending":
            heapq.heappush(self._timers, (_instant(order) + self.pending_after, order_id, version))
            if len(self._timers) > 2 * len(self._statuses) + 1024:
                self._compact()

    def _compact(self) -> None:
        """Drop the timers of orders that have moved on: the heap stays within twice the orders."""
        self._timers = [t for t in self._timers if self._statuses.get(t[1]) == ("pending", t[2])]
        heapq.heapify(self._timers)

    def _queue(self, trigger: Trigger) -> None:
        self.ready.put(trigger)

    # -- timers ---------------------------------------------------------------------------
    def due(self) -> float | None:
        """Fire the pending timers that are due; seconds until the next one (None: none armed)."""
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            _, order_id, version = heapq.heappop(self._timers)
            order = self._view.get(order_id)
            if self._statuses.get(order_id) == ("pending", version) and order is not None:
                self._queue(Trigger("pending_too_long", order))
        return self._timers[0][0] - now if self._timers else None

    async def run_timers(self) -> None:
        """Until cancelled: fire timers as they come due, waking early for every event."""
        while True:
            self._wake.clear()
            wait = self.due()
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass


def _instant(order: OrderJson) -> float:
    return parse_instant(order["updated_at"]).timestamp()
