"""Rows of the orders table and of the change log → the service's own types.

The boundary for this source: nothing past it sees an asyncpg ``Record`` or the log's JSON.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from orders_live.domain.change import Change, Op
from orders_live.domain.order import Order, iso_millis, known_status

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
        order = order_from_row(json.loads(after) if isinstance(after, str) else after).to_json()
    return Change(
        op=op,
        id=int(row["order_id"]),
        order=order,
        position=position_of(row["commit_seq"], row["seq"]),
        committed_at=iso_millis(committed),
        before_status=known_status(row["status_before"]),
        before_customer=row["customer_before"],
    )
