"""Writers waiting for their own change to come back through the feed (read-your-writes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from orders_live.domain.change import Change

DELETED = 2**62  # the "version" a delete reaches


class WriteWaiters:
    def __init__(self) -> None:
        self._per_order: dict[int, list[tuple[int, asyncio.Future[None]]]] = {}

    def applied(self, change: Change) -> None:
        waiting = self._per_order.get(change.id)
        if not waiting:
            return
        reached = change.order["version"] if change.order is not None else DELETED
        for version, future in waiting:
            if version <= reached and not future.done():
                future.set_result(None)

    def seeded(self, version_of: Callable[[int], int | None]) -> None:
        """A fresh seed may already hold (or lack, for a delete) what writers wait for."""
        for order_id, waiting in self._per_order.items():
            held = version_of(order_id)
            for version, future in waiting:
                reached = held is not None and held >= version
                if (reached or (held is None and version == DELETED)) and not future.done():
                    future.set_result(None)

    async def wait(self, order_id: int, version: int | None, within: float) -> bool:
        """True once ``order_id`` reaches ``version`` (None: its delete), False after ``within``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._per_order.setdefault(order_id, [])
        waiting.append((DELETED if version is None else version, future))
        try:
            await asyncio.wait_for(future, within)
            return True
        except TimeoutError:
            return False
        finally:
            waiting.remove((DELETED if version is None else version, future))
            if not waiting and self._per_order.get(order_id) is waiting:
                del self._per_order[order_id]
