"""What a subscriber asks for (all orders, one status or one order, within a customer's scope),
and rooms: the room each filter listens in, and the rooms each change touches. Room names are
made only here.

A customer's scope is part of the room, as the status is: ``all|customer=Ada`` holds the
all-orders subscriptions of the customer Ada. So a change is routed once per room, whatever the
number of connections, and no delivery is checked against its reader (``Routing``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from orders_live.domain.change import Change
from orders_live.domain.order import MAX_ID, STATUSES, OrderJson, Status

ALL_ROOM = "all"


class ScopeUnknown(Exception):
    """A scoped replay passed a change that may have taken an order out of its scope, from an
    owner no one recorded (nx-27017 keeps no pre-images): its view is sent again, not guessed."""


class FilterError(ValueError):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    kind: Literal["all", "status", "id"]
    status: Status | None = None
    id: int | None = None
    customer: str | None = None  # the scope: only this customer's orders (None: every order)

    @property
    def base_room(self) -> str:
        """The room of this filter without its scope."""
        if self.kind == "status":
            return status_room(self.status or "")
        if self.kind == "id":
            return id_room(self.id or 0)
        return ALL_ROOM

    @property
    def room(self) -> str:
        room = self.base_room
        return room if self.customer is None else scoped_room(room, self.customer)

    def matches(self, order: OrderJson) -> bool:
        if self.customer is not None and order["customer_name"] != self.customer:
            return False
        if self.kind == "status":
            return bool(order["status"] == self.status)
        if self.kind == "id":
            return bool(order["id"] == self.id)
        return True

    def may_concern(self, change: Change) -> bool:
        """Whether ``change`` may touch this filter's view: its order, its status or customer
        before or after it, or a before that was not recorded. What a catch-up asks the database
        for (``ChangeFeed.changes_between``); routing then decides (``Routing.seen_by``)."""
        after, unrecorded = change.order, change.op != "insert"
        if self.kind == "id" and change.id != self.id:
            return False
        if self.kind == "status" and not (
            (after is not None and after["status"] == self.status)
            or change.before_status == self.status
            or (unrecorded and change.before_status is None)
        ):
            return False
        return self.customer is None or (
            (after is not None and after["customer_name"] == self.customer)
            or change.before_customer == self.customer
            or (unrecorded and change.before_customer is None)
        )

    def within(self, customer: str | None) -> SubscriptionFilter:
        """This filter, confined to ``customer``'s orders (None: unchanged)."""
        return self if customer is None else replace(self, customer=customer)

    def wire(self) -> dict[str, Any]:
        if self.kind == "status":
            return {"status": self.status}
        if self.kind == "id":
            return {"id": self.id}
        return {}


def status_room(status: str) -> str:
    return STATUS_ROOMS.get(status) or f"status:{status}"


def id_room(order_id: int) -> str:
    return f"id:{order_id}"


def scoped_room(room: str, customer: str) -> str:
    """``room`` within one customer's scope. Unscoped room names never hold ``|``, so the part
    after the first one is the customer's name, whatever characters it has."""
    return f"{room}|customer={customer}"


STATUS_ROOMS: dict[str, str] = {s: f"status:{s}" for s in STATUSES}  # one string each, shared by every change
ALL_STATUS_ROOMS = frozenset(STATUS_ROOMS.values())


def rooms_of(change: Change, old_status: Status | None) -> frozenset[str]:
    """The unscoped rooms whose views a change touches: everything, its id, its new status and
    its old status (every status when the old one is unknown: a harmless extra copy)."""
    rooms = {ALL_ROOM, id_room(change.id)}
    if change.order is not None:
        rooms.add(status_room(change.order["status"]))
    if old_status is not None:
        rooms.add(status_room(old_status))
    elif change.op != "insert":
        rooms |= ALL_STATUS_ROOMS
    return frozenset(rooms)


@dataclass(frozen=True, slots=True)
class Routing:
    """Where one change goes: the ``unscoped`` rooms it touches, and within them, the rooms of
    its ``owner`` (the order's customer after the change; for a delete, before it), which get
    the change as it is, and those of the customer it moved away from (``former``), for whom
    the order no longer exists: they get its leave (``leave_of``), never the order as it is
    now. ``former_unknown``: the change may have taken the order away from a customer no one
    can name (an update or a delete whose previous owner neither the change nor the index
    knew). Scoped
    room names are built only for customers someone subscribes as (``scoped_rooms``)."""

    unscoped: frozenset[str]
    owner: str | None = None
    former: str | None = None
    former_unknown: bool = False

    def seen_by(self, wanted: SubscriptionFilter, change: Change) -> Change | None:
        """What a subscription to ``wanted`` gets of ``change``: the change, its leave, or nothing."""
        if wanted.base_room not in self.unscoped:
            return None
        if wanted.customer is None or wanted.customer == self.owner:
            return change
        if wanted.customer == self.former:
            return leave_of(change)
        return None

    def uncertain_for(self, wanted: SubscriptionFilter) -> bool:
        """Whether ``wanted`` may have needed this change's leave, which no one can tell."""
        return (
            self.former_unknown
            and wanted.customer is not None
            and wanted.customer != self.owner
            and wanted.base_room in self.unscoped
        )

    def scoped_rooms(self, customer: str) -> list[str]:
        return [scoped_room(room, customer) for room in self.unscoped]


def routing_of(
    change: Change, old_status: Status | None, old_customer: str | None, customer_known: bool = True
) -> Routing:
    """Where ``change`` goes. ``old_customer``: the order's customer before the change (None for
    an insert, or when unknown: then ``customer_known`` is False)."""
    owner = change.order["customer_name"] if change.order is not None else old_customer
    former = old_customer if old_customer is not None and old_customer != owner else None
    unknown = change.op != "insert" and not customer_known
    return Routing(rooms_of(change, old_status), owner, former, unknown)


def leave_of(change: Change) -> Change:
    """What the rooms an order left get: for a scope it no longer belongs to, the order is gone."""
    return Change("delete", change.id, None, change.position, change.committed_at, change.before_status)


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
