"""A bounded, in-memory record of recent changes, for catch-up from a position."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from orders_live.domain.change import Change
from orders_live.domain.source import PositionKey
from orders_live.domain.subscription import Routing, ScopeUnknown, SubscriptionFilter


@dataclass(frozen=True, slots=True)
class Entry:
    change: Change
    key: PositionKey
    routing: Routing


class ChangeHistory:
    """Changes after ``base`` (the position just before the oldest entry), in order."""

    def __init__(self, capacity: int, position_key: Callable[[str], PositionKey | None]) -> None:
        self.capacity = capacity
        self._key = position_key
        self._entries: deque[Entry] = deque()
        self.base: str | None = None
        self._base_key: PositionKey | None = None

    def restart(self, base: str | None) -> None:
        """Forget everything; history now starts after ``base``."""
        self._entries.clear()
        self.base = base
        self._base_key = self._key(base) if base is not None else None

    def append(self, change: Change, routing: Routing) -> None:
        key = self._key(change.position)
        if key is None:
            return
        if len(self._entries) >= self.capacity:
            dropped = self._entries.popleft()
            self.base, self._base_key = dropped.change.position, dropped.key
        self._entries.append(Entry(change, key, routing))

    def __len__(self) -> int:
        return len(self._entries)

    def covers(self, since: str) -> bool:
        """True when every change after ``since`` that this history has seen is still here."""
        key = self._key(since)
        return key is not None and self._base_key is not None and key >= self._base_key

    def after(self, since: str, wanted: SubscriptionFilter) -> list[Change]:
        """What a subscription to ``wanted`` got after ``since``: the changes that touched its
        room, and for a scope, the leaves of orders that moved out of it. Call only when
        ``covers(since)``. Raises ScopeUnknown (see there)."""
        key = self._key(since)
        assert key is not None
        found: list[Change] = []
        for entry in reversed(self._entries):
            if entry.key <= key:
                break
            seen = entry.routing.seen_by(wanted, entry.change)
            if seen is not None:
                found.append(seen)
            elif entry.routing.uncertain_for(wanted):
                raise ScopeUnknown(f"the owner before {entry.change.position} is unknown")
        found.reverse()
        return found
