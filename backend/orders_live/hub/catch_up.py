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
from orders_live.domain.subscription import ScopeUnknown, SubscriptionFilter, routing_of


class TooFarBehind(Exception):
    """More changes to replay than it is sensible to send one by one."""


async def read_changes_since(
    feed: ChangeFeed,
    since: str,
    wanted: SubscriptionFilter,
    covered: Callable[[str], bool],
    limit: int,
) -> tuple[list[Change], str]:
    """What a subscription to ``wanted`` got after ``since`` (the changes that touch its room;
    for a scope, the leaves of orders that moved out of it), up to a position ``covered`` says
    the hub's history holds; and that position. Raises ScopeUnknown when a scoped read cannot
    tell whether a change took an order out of its scope."""
    found: list[Change] = []
    status_per_order: dict[int, Status] = {}
    customer_per_order: dict[int, str] = {}  # as seen earlier in this read
    last = since
    async with contextlib.aclosing(feed.watch(since)) as changes:
        async for item in changes:
            if isinstance(item, Change):
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
                    if len(found) > limit:
                        raise TooFarBehind(f"more than {limit} changes since {since}")
            last = item.position
            if covered(last):
                break
    return found, last
