"""What a subscriber asks for (all orders, one status or one order), and rooms: the room each
filter listens in, and the rooms each change touches. Room names are made only here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from orders_live.domain.change import Change
from orders_live.domain.order import MAX_ID, STATUSES, OrderJson, Status

ALL_ROOM = "all"


class FilterError(ValueError):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    kind: Literal["all", "status", "id"]
    status: Status | None = None
    id: int | None = None

    @property
    def room(self) -> str:
        if self.kind == "status":
            return status_room(self.status or "")
        if self.kind == "id":
            return id_room(self.id or 0)
        return ALL_ROOM

    def matches(self, order: OrderJson) -> bool:
        if self.kind == "status":
            return bool(order["status"] == self.status)
        if self.kind == "id":
            return bool(order["id"] == self.id)
        return True

    def wire(self) -> dict[str, Any]:
        if self.kind == "status":
            return {"status": self.status}
        if self.kind == "id":
            return {"id": self.id}
        return {}


def status_room(status: str) -> str:
    return f"status:{status}"


def id_room(order_id: int) -> str:
    return f"id:{order_id}"


ALL_STATUS_ROOMS = frozenset(status_room(s) for s in STATUSES)


def rooms_of(change: Change, old_status: Status | None) -> frozenset[str]:
    """The rooms whose views a change touches: everything, its id, its new status and its
    old status (every status when the old one is unknown: a harmless extra copy)."""
    rooms = {ALL_ROOM, id_room(change.id)}
    if change.order is not None:
        rooms.add(status_room(change.order["status"]))
    if old_status is not None:
        rooms.add(status_room(old_status))
    elif change.op != "insert":
        rooms |= ALL_STATUS_ROOMS
    return frozenset(rooms)


def parse_status(value: Any) -> Status:
    for status in STATUSES:
        if value == status and isinstance(value, str):
            return status
    raise FilterError({"status": f"must be one of {', '.join(STATUSES)}"})


def parse_filter(payload: Any, extra_keys: frozenset[str] = frozenset()) -> SubscriptionFilter:
    """``{}``, ``{"status": "pending"}`` or ``{"id": 17}``; anything else is a FilterError."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise FilterError({"filter": "must be an object"})
    unknown = sorted(k for k in payload if k not in {"status", "id"} | extra_keys)
    if unknown:
        raise FilterError({k: "unknown field" for k in unknown})
    if "status" in payload and "id" in payload:
        raise FilterError({"filter": "give status or id, not both"})
    if "status" in payload:
        return SubscriptionFilter("status", status=parse_status(payload["status"]))
    if "id" in payload:
        order_id = payload["id"]
        if isinstance(order_id, bool) or not isinstance(order_id, int) or not 1 <= order_id <= MAX_ID:
            raise FilterError({"id": "must be a positive integer"})
        return SubscriptionFilter("id", id=order_id)
    return SubscriptionFilter("all")
