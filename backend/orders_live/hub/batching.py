"""Fan-out per read, not per change.

The follower applies each change as it reads it (index, history, position) and hands its
routes here: the delivery for the unscoped rooms, and one for each customer scope it concerns
(``routes``). The fan-out runs once per event-loop iteration, with everything applied since:
one change goes to its rooms as it is; several become one ``Batch`` per room, encoded once for
all of that room's subscribers (one ``order_changes`` frame each). A lone change to an idle
client still leaves at once, at most the current loop iteration later; the further behind the
service falls, the more each read brings, and the less each change costs.

Anything that reads the hub's position to agree with it (a replay's join, a snapshot's end, a
REST page) first calls ``flush``, so that no applied change is still on its way.
"""

from __future__ import annotations

import asyncio
import logging
import time

from orders_live.hub.fanout import Delivery, Rooms
from orders_live.hub.routes import Routes
from orders_live.hub.stats import HubStats

log = logging.getLogger(__name__)


class ReadBatcher:
    def __init__(self, rooms: Rooms, stats: HubStats) -> None:
        self.rooms, self.stats = rooms, stats
        self.pending: list[Routes] = []  # one per change, in commit order
        self._scheduled: asyncio.Handle | None = None

    def push(self, routes: Routes) -> None:
        self.pending.append(routes)
        if self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Fan out everything applied so far (called by the loop, or early by a reader)."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        pending, self.pending = self.pending, []
        if not pending:
            return
        started = time.perf_counter()
        try:
            delivered = self._fan_out(pending)
        except Exception:  # a bug, not a subscriber's failure (those are caught per sink)
            log.exception("the fan-out of %d changes failed", len(pending))
            delivered = 0
        self.stats.fanned_out_read(
            time.perf_counter() - started, [routes[0][0].change for routes in pending], delivered
        )

    def _fan_out(self, pending: list[Routes]) -> int:
        if len(pending) == 1:
            return sum(self.rooms.deliver(delivery, rooms) for delivery, rooms in pending[0])
        members = self.rooms.members
        per_room: dict[str, list[Delivery]] = {}
        for routes in pending:
            for delivery, rooms in routes:
                for room in rooms:
                    if room in members:
                        per_room.setdefault(room, []).append(delivery)
        return sum(len(ds) * self.rooms.deliver_to_room(room, ds) for room, ds in per_room.items())
