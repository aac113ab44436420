"""A committed change of one order, as every part of the service sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from orders_live.domain.order import OrderJson, Status

Op = Literal["insert", "update", "delete"]


@dataclass(frozen=True, slots=True)
class Change:
    """One committed insert, update or delete, in commit order.

    ``order`` is the order after the change (``None`` for a delete).
    ``before_status`` and ``before_customer`` are the status and the customer before the
    change when the source knows them (pre-images, the PostgreSQL change log, or a delete that
    carries the removed document); the hub fills the gap from the state it keeps.
    ``position`` is opaque to clients: derived from the change stream's resume token.
    """

    op: Op
    id: int
    order: OrderJson | None
    position: str
    committed_at: str
    before_status: Status | None = None
    before_customer: str | None = None

    def wire(self) -> dict[str, Any]:
        """The ``order_change`` payload."""
        return {
            "op": self.op,
            "id": self.id,
            "order": self.order,
            "position": self.position,
            "committed_at": self.committed_at,
        }


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """The source has delivered everything committed so far; ``position`` is its mark."""

    position: str


class HistoryLost(Exception):
    """The source cannot prove that nothing was lost after the requested position."""


class StreamInvalidated(Exception):
    """The collection was dropped or renamed: every view must be rebuilt."""
