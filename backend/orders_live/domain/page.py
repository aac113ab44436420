"""Pages of orders: the newest-first order (``updated_at``, then id), the cursor that continues
it, and counts per status. Snapshots, windowed subscriptions and the REST list all page so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from orders_live.domain.order import MAX_ID, STATUSES, OrderJson, Status, iso_millis, positive_int

Counts = dict[str, int]  # orders per status
IndexRow = tuple[int, Status, int, str]  # (id, status, version, customer_name): what routing needs of one order

MAX_WINDOW = 10_000  # the largest ``limit`` a subscription may ask for


def empty_counts() -> Counts:
    return dict.fromkeys(STATUSES, 0)


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A place in the newest-first order: the orders strictly older than (``updated_at``, ``id``).

    On the wire it is ``<updated_at as the order carries it>_<id>``; ``updated_at`` has
    millisecond precision everywhere (the databases store it so)."""

    updated_at: datetime
    id: int

    @classmethod
    def after(cls, order: OrderJson) -> Cursor:
        """The cursor for the orders older than ``order``."""
        return cls(parse_instant(order["updated_at"]), int(order["id"]))

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        moment, _, digits = text.rpartition("_")
        order_id = positive_int(digits, MAX_ID)
        if order_id is None or not moment or len(text) > 64:
            return None
        try:
            return cls(parse_instant(moment), order_id)
        except ValueError:
            return None

    def wire(self) -> str:
        return f"{iso_millis(self.updated_at)}_{self.id}"

    @property
    def key(self) -> tuple[str, int]:
        """Where it falls among ``newest_first`` keys: the orders older than it have smaller ones."""
        return (iso_millis(self.updated_at), self.id)


def parse_instant(text: str) -> datetime:
    """``updated_at`` as orders carry it (ISO-8601 with ``Z``) → an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time without a zone")
    return moment.astimezone(UTC)


def newest_first(order: OrderJson) -> tuple[str, int]:
    """Sort key (use ``reverse=True``): ISO strings of one format sort as their instants."""
    return (order["updated_at"], order["id"])
