"""Raw MongoDB change documents and orders → the service's own types.

This is the boundary that absorbs what differs between MongoDB and nx-27017
(the embedded server): ``documentKey._id`` as a string, dates as ``{"$date": ...}``
or as plain strings, no ``updateDescription``, a delete that carries the removed
document. Nothing past this module sees a raw change document.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson.timestamp import Timestamp

from orders_live.domain.change import Change, Op
from orders_live.domain.order import Order, Status, iso_millis, known_status, utc_now

_OPS: dict[str, Op] = {"insert": "insert", "replace": "update", "update": "update", "delete": "delete"}
INVALIDATING_OPS = frozenset({"invalidate", "drop", "rename", "dropDatabase"})


def parse_date(value: Any) -> datetime:
    """A BSON date, ``{"$date": ...}`` (ISO string or epoch millis) or an ISO-like string."""
    if isinstance(value, dict) and "$date" in value:
        value = value["$date"]
        if isinstance(value, dict) and "$numberLong" in value:
            value = int(value["$numberLong"])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"not a date: {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_id(value: Any) -> int:
    """An order id: an int, or the string nx-27017 puts in ``documentKey._id``."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not an order id")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError(f"not an order id: {value!r}")


def order_from_document(doc: dict[str, Any]) -> Order:
    """A stored document → Order. Raises ValueError for a document that is not an order."""
    return Order(
        id=parse_id(doc["_id"]),
        customer_name=doc["customer_name"],
        product_name=doc["product_name"],
        status=doc["status"],
        updated_at=parse_date(doc["updated_at"]),
        version=doc.get("version", 1),
    )


def touching(update: dict[str, Any], nx: bool) -> dict[str, Any]:
    """``update`` plus setting ``updated_at`` to now (milliseconds), stored so that the server
    can sort and compare it with the dates inserts store. MongoDB: ``$currentDate``. nx-27017
    stores a ``$currentDate`` as a zoned date and an insert's date as a naive one, and then
    fails any date range over an updated order ("can't compare offset-naive and offset-aware
    datetimes"), while a ``$set`` of a date becomes a string that sorts apart: so there the date
    is set in the extended-JSON form its inserts are stored in."""
    if not nx:
        return {**update, "$currentDate": {"updated_at": True}}
    now = utc_now().replace(tzinfo=None).isoformat(timespec="microseconds")
    return {**update, "$set": {**update.get("$set", {}), "updated_at": {"$date": now}}}


def customer_of(doc: Any) -> str | None:
    customer = doc.get("customer_name") if isinstance(doc, dict) else None
    return customer if isinstance(customer, str) else None


def status_of(doc: Any) -> Status | None:
    """A document's status (as ``customer_of`` reads its customer); which values are statuses is
    ``known_status``'s, for every source."""
    return known_status(doc.get("status")) if isinstance(doc, dict) else None


def _commit_time(event: dict[str, Any]) -> datetime:
    """``wallTime`` (MongoDB 6.0+; when nx-27017 read the change), else the cluster
    time's seconds, else now."""
    if event.get("wallTime") is not None:
        return parse_date(event["wallTime"])
    cluster_time = event.get("clusterTime")
    if isinstance(cluster_time, Timestamp):
        return cluster_time.as_datetime()
    if isinstance(cluster_time, datetime):
        return parse_date(cluster_time)
    return utc_now()


def change_from_event(event: dict[str, Any], position: str) -> Change | None:
    """One change document → Change, or None for an operation that is not an order change.

    Updates whose post-image is missing return None from here; the caller looks
    the order up (the ``updateLookup`` fallback).
    """
    op = _OPS.get(event.get("operationType", ""))
    if op is None:
        return None
    order_id = parse_id(event["documentKey"]["_id"])
    committed_at = iso_millis(_commit_time(event))
    before = event.get("fullDocumentBeforeChange")
    if op == "delete":
        # nx-27017 puts the removed document in fullDocument.
        before = before or event.get("fullDocument")
        return Change("delete", order_id, None, position, committed_at, status_of(before), customer_of(before))
    full = event.get("fullDocument")
    if not isinstance(full, dict):
        return None
    order = order_from_document({**full, "_id": order_id})
    return Change(op, order_id, order.to_json(), position, committed_at, status_of(before), customer_of(before))
