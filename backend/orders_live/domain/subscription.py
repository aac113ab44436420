"""What a subscriber asks for: all orders, one status or one order; and its rooms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from orders_live.domain.order import STATUSES, OrderJson, Status

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
            return f"status:{self.status}"
        if self.kind == "id":
            return f"id:{self.id}"
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
        if isinstance(order_id, bool) or not isinstance(order_id, int) or not 1 <= order_id < 2**63:
            raise FilterError({"id": "must be a positive integer"})
        return SubscriptionFilter("id", id=order_id)
    return SubscriptionFilter("all")
