"""Snapshot pages as packets no larger than a bound, for either transport.

The hub hands a sink pages of at most ``page_orders`` orders; one page's encoding can still
be too large (long names), so it is halved until each packet fits ``page_bytes``. Only a
page of one order can stay larger: the bound is checked at start-up to hold any order.

``RecentPage`` keeps the last page's packets: when thousands of clients subscribe to the same
view at once, the hub hands each of them the same page (one shared read, ``SharedReads``),
and it is encoded once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from orders_live.domain.order import OrderJson

Packet = TypeVar("Packet", str, bytes)

MIN_PAGE_BYTES = 16 * 1024  # an order is at most ~1 KB encoded, so every page of one fits


def snapshot_packets(
    encode: Callable[[dict[str, Any]], Packet],
    page_bytes: int,
    filter_wire: dict[str, Any],
    orders: list[OrderJson],
    removed: list[int],
    first: bool,
) -> list[Packet]:
    """The ``snapshot`` event(s) for one page; only the first carries ``reset``."""
    payload: dict[str, Any] = {"filter": filter_wire, "orders": orders}
    if removed:
        payload["removed"] = removed
    if first:
        payload["reset"] = True
    packet = encode(payload)
    size = len(packet) if isinstance(packet, bytes) else len(packet.encode())
    if size <= page_bytes or len(orders) + len(removed) <= 1:
        return [packet]
    head: tuple[list[OrderJson], list[int]]
    tail: tuple[list[OrderJson], list[int]]
    if len(orders) > 1 or (orders and removed):
        half = (len(orders) + 1) // 2
        head, tail = (orders[:half], []), (orders[half:], removed)
    else:
        half = len(removed) // 2
        head, tail = (orders, removed[:half]), ([], removed[half:])
    return snapshot_packets(encode, page_bytes, filter_wire, *head, first) + snapshot_packets(
        encode, page_bytes, filter_wire, *tail, False
    )


class RecentPage(Generic[Packet]):
    """The packets of the page encoded last, for the next sink handed the same page: the same
    list of orders (by identity, so it cannot have been rebuilt) with the same removals, the
    same ``first`` and ``filter_wire``, and the same bound."""

    def __init__(self, encode: Callable[[dict[str, Any]], Packet]) -> None:
        self._encode: Callable[[dict[str, Any]], Packet] = encode
        self._last: tuple[list[OrderJson], int, tuple[Any, ...], dict[str, Any], list[Packet]] | None = None
        self.reused = 0

    def packets(
        self, page_bytes: int, filter_wire: dict[str, Any], orders: list[OrderJson], removed: list[int], first: bool
    ) -> list[Packet]:
        key = (page_bytes, first, len(orders), *removed)
        last = self._last
        if last is not None and last[0] is orders and last[2] == key and last[3] == filter_wire:
            self.reused += 1
            return last[4]
        packets = snapshot_packets(self._encode, page_bytes, filter_wire, orders, removed, first)
        self._last = (orders, page_bytes, key, filter_wire, packets)
        return packets
