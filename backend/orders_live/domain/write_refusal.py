"""Why a conditional write (an update or delete with an expected version, or a customer's write
limited to its own orders) matched no order, read from the order as it is now: every source
answers the same way.

- No such order, or another customer's (the caller is not told it exists): ``OrderNotFound``.
- Otherwise the order is at another version than expected: ``VersionConflict``, with the order
  as it is now.
"""

from __future__ import annotations

from orders_live.domain.order import Order
from orders_live.domain.source import OrderNotFound, VersionConflict


def refusal(order_id: int, current: Order | None, owner: str | None = None) -> OrderNotFound | VersionConflict:
    if current is None or (owner is not None and current.customer_name != owner):
        return OrderNotFound(order_id)
    return VersionConflict(current)
