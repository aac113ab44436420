"""The seam between the service and its database: orders, writes and their change feed.

One module per implementation (``mongo_source``, ``memory_source``), chosen from the URL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator

from orders_live.domain.change import CaughtUp, Change
from orders_live.domain.order import Order, OrderCreate, OrderPatch


class OrderNotFound(Exception):
    def __init__(self, order_id: int) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class VersionConflict(Exception):
    def __init__(self, current: Order) -> None:
        super().__init__(f"order {current.id} is at version {current.version}")
        self.current = current


class ChangeSource(ABC):
    """Where orders live and where their changes come from, in commit order."""

    description: str = ""

    @abstractmethod
    async def open(self) -> None:
        """Connect and prepare (indexes, collection options). Idempotent."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raises unless the database answers now."""

    # -- reads and writes --------------------------------------------------
    @abstractmethod
    async def load_orders(self) -> list[Order]:
        """Every order, as the database holds it now."""

    @abstractmethod
    async def get(self, order_id: int) -> Order | None: ...

    @abstractmethod
    async def create(self, data: OrderCreate) -> Order: ...

    @abstractmethod
    async def update(self, order_id: int, patch: OrderPatch, expected_version: int | None) -> Order:
        """Raises OrderNotFound or VersionConflict."""

    @abstractmethod
    async def delete(self, order_id: int, expected_version: int | None) -> None:
        """Raises OrderNotFound or VersionConflict."""

    # -- change feed ---------------------------------------------------------
    @abstractmethod
    def watch(self, resume_after: str | None) -> AsyncGenerator[Change | CaughtUp, None]:
        """Changes after ``resume_after`` (or from now), then a CaughtUp mark each time
        the feed has delivered all that is committed. Raises HistoryLost when it cannot
        prove continuity from ``resume_after``, StreamInvalidated when the collection goes.
        """

    @abstractmethod
    def position_key(self, position: str) -> tuple[int, str] | None:
        """A sort key for a position of this source, or None if it is not one."""

    # -- checkpoints ---------------------------------------------------------
    @abstractmethod
    async def load_checkpoint(self, instance: str) -> str | None: ...

    @abstractmethod
    async def save_checkpoint(self, instance: str, position: str) -> None: ...


def source_from_url(url: str, idle_poll_cap: float = 0.2) -> ChangeSource:
    """``memory://`` for the in-memory source, ``mongodb://``/``mongodb+srv://`` for MongoDB."""
    if url.startswith("memory://"):
        from orders_live.sources.memory import MemorySource

        return MemorySource()
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from orders_live.sources.mongo.source import MongoSource

        return MongoSource(url, idle_poll_cap=idle_poll_cap)
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")
