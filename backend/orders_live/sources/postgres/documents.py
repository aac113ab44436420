"""Rows of the orders table and of the change log → the service's own types.

The boundary for this source: nothing past it sees an asyncpg ``Record`` or the log's JSON.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from orders_live.domain.change import Change, Op
from orders_live.domain.order import STATUSES, Order, OrderJson, iso_millis, known_status

ORDER_COLUMNS = "id, customer_name, product_name, status, updated_at, version"
_OPS: dict[str, Op] = {"insert": "insert", "update": "update", "delete": "delete"}


def order_from_row(row: Any) -> Order:
    return Order(
        id=row["id"],
        customer_name=row["customer_name"],
        product_name=row["product_name"],
        status=row["status"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


# ``updated_at`` as ``to_jsonb`` writes it in a UTC session: seconds, then up to 6 digits of
# fraction (none when it is zero), then the offset.
_UTC_TEXT = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00:00")


def order_json_from_log(values: dict[str, Any]) -> OrderJson:
    """The change log's JSON of an orders row (``to_jsonb``) → the order as the service hands it
    out. The usual shape (whole numbers from 1, two strings, a known status, a UTC time) is
    written out directly, a third of the cost of the model; anything else goes through ``Order``,
    which converts or refuses it (ValueError) exactly as before."""
    order_id, version, status = values.get("id"), values.get("version"), values.get("status")
    customer, product, at = values.get("customer_name"), values.get("product_name"), values.get("updated_at")
    moment = _UTC_TEXT.fullmatch(at) if type(at) is str else None
    if (
        moment is not None
        and type(order_id) is int
        and order_id >= 1
        and type(version) is int
        and version >= 1
        and status in STATUSES
        and type(customer) is str
        and type(product) is str
    ):
        millis = (moment.group(2) or "").ljust(3, "0")[:3]  # truncated, as iso_millis does
        return {
            "id": order_id,
            "customer_name": customer,
            "product_name": product,
            "status": status,
            "updated_at": f"{moment.group(1)}.{millis}Z",
            "version": version,
        }
    return order_from_row(values).to_json()


def position_of(commit_seq: int, seq: int | None = None) -> str:
    """``pg:<commit>`` is "after every change of that commit"; ``pg:<commit>.<seq>`` is "after
    that change of it" (a commit may span several reads)."""
    return f"pg:{commit_seq}" if seq is None else f"pg:{commit_seq}.{seq}"


def change_from_row(row: Any) -> Change:
    """One change-log row (joined with its commit) → Change. Raises ValueError for a row that
    is not an order change (the caller skips it, logged)."""
    op = _OPS.get(row["op"])
    if op is None:
        raise ValueError(f"not an order change: {row['op']!r}")
    committed: datetime = row["committed_at"]
    order = None
    if op != "delete":
        after = row["row_after"]
        order = order_json_from_log(json.loads(after) if isinstance(after, str) else after)
    return Change(
        op=op,
        id=int(row["order_id"]),
        order=order,
        position=position_of(row["commit_seq"], row["seq"]),
        committed_at=iso_millis(committed),
        before_status=known_status(row["status_before"]),
        before_customer=row["customer_before"],
    )
