"""A client's local view of the orders for one filter, and how a change applies to it."""

from __future__ import annotations

from typing import Any

from orders_live.domain.order import OrderJson


def matches(wanted: dict[str, Any], order: OrderJson) -> bool:
    if "status" in wanted:
        return bool(order["status"] == wanted["status"])
    if "id" in wanted:
        return bool(order["id"] == wanted["id"])
    return True


class LiveView:
    """Orders by id for one filter, as of ``position``. Applying is idempotent: a change
    whose version the view already holds is ignored, an unknown delete is harmless."""

    def __init__(self, wanted: dict[str, Any]) -> None:
        self.wanted = {k: v for k, v in wanted.items() if k in ("status", "id")}
        self.orders: dict[int, OrderJson] = {}
        self.position: str | None = None

    def replace(self, orders: list[OrderJson], position: str) -> None:
        self.orders = {order["id"]: order for order in orders if matches(self.wanted, order)}
        self.position = position

    def apply(self, change: dict[str, Any]) -> bool:
        """Apply one ``order_change``; True if it changed the view."""
        self.position = change["position"]
        order: OrderJson | None = change["order"]
        held = self.orders.get(change["id"])
        if order is None:
            return self.orders.pop(change["id"], None) is not None
        if held is not None and held["version"] >= order["version"]:
            return False  # already seen: a stale or repeated change
        if not matches(self.wanted, order):
            return self.orders.pop(change["id"], None) is not None  # moved out of this view
        self.orders[change["id"]] = order
        return True
