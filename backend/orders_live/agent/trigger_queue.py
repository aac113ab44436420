"""The triggers waiting for the agent's worker: bounded, and at most one per order and trigger
kind in any ``window`` seconds.

* Admission. A trigger whose key (kind, order, version) is already waiting or being handled is
  not queued twice. One whose order had a trigger of the same kind admitted less than
  ``window`` seconds ago is *suppressed*: an order flipped between shipped and pending in a
  loop costs one trigger (so at most one model conversation, and one action) per window,
  not one per flip. ``window`` 0 turns this off.
* Overflow. At most ``capacity`` triggers wait. When the queue is full, the policy
  ``drop_oldest`` drops the trigger that has waited longest to make room for the new one
  (the newest events are the ones still worth acting on; a dropped pending order's timer is
  armed again by the next snapshot, after a restart).

Every trigger not queued is reported to ``on_drop(trigger, why)`` with ``why`` one of
``WHY``: the agent counts them (``orders_live_agent_triggers_suppressed_total``,
``orders_live_agent_queue_overflow_total{policy}``). Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from orders_live.agent.triggers import Trigger

log = logging.getLogger(__name__)

OVERFLOW_POLICY = "drop_oldest"
Why = Literal["suppressed", "drop_oldest"]
WHY: tuple[Why, ...] = ("suppressed", "drop_oldest")


class TriggerQueue:
    def __init__(
        self,
        capacity: int,
        window: float,
        clock: Callable[[], float],
        on_drop: Callable[[Trigger, Why], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("the trigger queue holds at least one trigger")
        self.capacity, self.window, self.clock = capacity, window, clock
        self.on_drop = on_drop or (lambda trigger, why: None)
        self.dropped: collections.Counter[Why] = collections.Counter()
        self._waiting: collections.deque[Trigger] = collections.deque()
        self._keys: set[tuple[str, int, int]] = set()  # waiting or being handled
        self._admitted: dict[tuple[str, int], float] = {}  # (kind, order) -> when last admitted
        self._prune_at = 1024
        self._ready = asyncio.Event()
        self._full = False  # for one log line each time the queue fills up

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, trigger: Trigger) -> bool:
        """Queue ``trigger`` unless it is waiting already or suppressed; True if queued."""
        if trigger.key in self._keys:
            return False
        now = self.clock()
        slot = (trigger.kind, trigger.order_id)
        last = self._admitted.get(slot)
        if last is not None and now - last < self.window:
            self._drop(trigger, "suppressed")
            return False
        self._admitted[slot] = now
        if len(self._admitted) > self._prune_at:
            self._prune(now)
        if len(self._waiting) >= self.capacity:
            oldest = self._waiting.popleft()
            self._keys.discard(oldest.key)
            if not self._full:
                log.warning(
                    "the agent's trigger queue is full (%d waiting): dropping the oldest (policy %s)",
                    self.capacity,
                    OVERFLOW_POLICY,
                )
            self._full = True
            self._drop(oldest, "drop_oldest")
        self._keys.add(trigger.key)
        self._waiting.append(trigger)
        self._ready.set()
        return True

    def take(self) -> Trigger | None:
        """The trigger that has waited longest, or None; the caller calls ``done_with`` later."""
        if not self._waiting:
            return None
        trigger = self._waiting.popleft()
        if not self._waiting:
            self._ready.clear()
            self._full = False
        return trigger

    async def get(self) -> Trigger:
        while True:
            trigger = self.take()
            if trigger is not None:
                return trigger
            await self._ready.wait()

    def done_with(self, trigger: Trigger) -> None:
        """The worker has finished ``trigger``: its key may be queued again (after the window)."""
        self._keys.discard(trigger.key)

    def _drop(self, trigger: Trigger, why: Why) -> None:
        self.dropped[why] += 1
        self.on_drop(trigger, why)

    def _prune(self, now: float) -> None:
        """Forget admissions older than the window: the map stays within about twice the
        orders that had a trigger in the last window."""
        self._admitted = {slot: at for slot, at in self._admitted.items() if now - at < self.window}
        self._prune_at = 2 * len(self._admitted) + 1024
