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
    """Orders by id for one filter, as of ``position``, and the counts per status the server
    sends for it. Applying is idempotent: a change whose version the view already holds is
    ignored, an unknown delete is harmless. A snapshot arrives in pages: ``begin`` (the first
    page: the old view and its position go), ``add`` for each page, ``end`` with the position."""

    def __init__(self, wanted: dict[str, Any]) -> None:
        self.wanted = {k: v for k, v in wanted.items() if k in ("status", "id")}
        self.orders: dict[int, OrderJson] = {}
        self.position: str | None = None
        self.counts: dict[str, int] = {}

    @property
    def total(self) -> int:
        """How many orders the filter matches on the server (the view may hold fewer: a window)."""
        return sum(self.counts.values())

    def begin(self) -> None:
        self.orders = {}
        self.position = None  # a snapshot cut off halfway cannot be resumed: start over

    def add(self, orders: list[OrderJson], removed: list[int]) -> None:
        for order in orders:
            held = self.orders.get(order["id"])
            if matches(self.wanted, order) and (held is None or held["version"] <= order["version"]):
                self.orders[order["id"]] = order
        for order_id in removed:
            self.orders.pop(order_id, None)

    def end(self, position: str, counts: dict[str, int]) -> None:
        self.position = position
        self.set_counts(counts)

    def set_counts(self, counts: dict[str, int]) -> None:
        """Counts as the server sends them (every status, on a change): the filter's share."""
        if "status" in self.wanted:
            counts = {k: v for k, v in counts.items() if k == self.wanted["status"]}
        elif "id" in self.wanted:
            held = self.orders.get(self.wanted["id"])
            counts = {held["status"]: 1} if held is not None else {}
        self.counts = dict(counts)

    def apply(self, change: dict[str, Any]) -> bool:
        """Apply one ``order_change``; True if it changed the view."""
        self.position = change["position"]
        order: OrderJson | None = change["order"]
        held = self.orders.get(change["id"])
        changed = True
        if order is None:
            changed = self.orders.pop(change["id"], None) is not None
        elif held is not None and held["version"] >= order["version"]:
            changed = False  # already seen: a stale or repeated change
        elif not matches(self.wanted, order):
            changed = self.orders.pop(change["id"], None) is not None  # moved out of this view
        else:
            self.orders[change["id"]] = order
        if isinstance(change.get("counts"), dict):
            self.set_counts(change["counts"])
        return changed
