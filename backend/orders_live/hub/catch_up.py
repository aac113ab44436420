"""Catch-up from a position older than the hub's memory: read the change stream from it.

The source proves continuity from the position (or raises HistoryLost); reading
stops as soon as the hub's in-memory history covers what was read, so the
caller can join with the rest from memory, in one synchronous step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from orders_live.domain.change import Change
from orders_live.domain.order import Status
from orders_live.domain.source import ChangeFeed
from orders_live.domain.subscription import rooms_of


class TooFarBehind(Exception):
    """More changes to replay than it is sensible to send one by one."""


async def read_changes_since(
    feed: ChangeFeed,
    since: str,
    room: str,
    covered: Callable[[str], bool],
    limit: int,
) -> tuple[list[Change], str]:
    """The changes after ``since`` that touch ``room``, up to a position ``covered`` says
    the hub's history holds; and that position."""
    found: list[Change] = []
    status_per_order: dict[int, Status] = {}
    last = since
    async with contextlib.aclosing(feed.watch(since)) as changes:
        async for item in changes:
            if isinstance(item, Change):
                old = item.before_status or status_per_order.get(item.id)
                if item.order is None:
                    status_per_order.pop(item.id, None)
                else:
                    status_per_order[item.id] = item.order["status"]
                if room in rooms_of(item, old):
                    found.append(item)
                    if len(found) > limit:
                        raise TooFarBehind(f"more than {limit} changes since {since}")
            last = item.position
            if covered(last):
                break
    return found, last
