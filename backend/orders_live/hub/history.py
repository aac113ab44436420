"""A bounded, in-memory record of recent changes, for catch-up from a position."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from orders_live.domain.change import Change
from orders_live.domain.source import PositionKey


@dataclass(frozen=True, slots=True)
class Entry:
    change: Change
    key: PositionKey
    rooms: frozenset[str]


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

    def append(self, change: Change, rooms: frozenset[str]) -> None:
        key = self._key(change.position)
        if key is None:
            return
        if len(self._entries) >= self.capacity:
            dropped = self._entries.popleft()
            self.base, self._base_key = dropped.change.position, dropped.key
        self._entries.append(Entry(change, key, rooms))

    def __len__(self) -> int:
        return len(self._entries)

    def covers(self, since: str) -> bool:
        """True when every change after ``since`` that this history has seen is still here."""
        key = self._key(since)
        return key is not None and self._base_key is not None and key >= self._base_key

    def after(self, since: str, room: str) -> list[Change]:
        """Changes after ``since`` that touched ``room``. Call only when ``covers(since)``."""
        key = self._key(since)
        assert key is not None
        found: list[Change] = []
        for entry in reversed(self._entries):
            if entry.key <= key:
                break
            if room in entry.rooms:
                found.append(entry.change)
        found.reverse()
        return found
