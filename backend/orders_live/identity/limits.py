"""Limits that count per identity (``sub``), not per connection: a customer that opens 500
sockets is refused past ``max_connections`` of its own, and its subscribe and write rates are
shared by all of its connections, so it cannot take the budget everyone else shares.

Identities from shared tokens and an open service are not counted here (every client holds the
same token): their subscribe rate counts per connection, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from orders_live.domain.identity import Identity

MAX_BUCKETS = 100_000  # identities with a bucket at once; idle (full) buckets are dropped past it


class RateLimit:
    """A token bucket: ``rate`` per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens, self._at = burst, clock()

    def allow(self) -> bool:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    @property
    def idle(self) -> bool:
        """Full again: forgetting it loses nothing."""
        return self._tokens + (self.clock() - self._at) * self.rate >= self.burst


class RateLimits:
    """One bucket per key, created on first use; idle buckets are dropped when there are many."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, RateLimit] = {}

    def allow(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets = {k: b for k, b in self._buckets.items() if not b.idle}
            bucket = self._buckets[key] = RateLimit(self.rate, self.burst, self.clock)
        return bucket.allow()


class IdentityLimits:
    def __init__(self, max_connections: int, subscribe_rate: float, write_rate: float) -> None:
        self.max_connections = max_connections
        self.subscribes = RateLimits(subscribe_rate, burst=max(10.0, 2 * subscribe_rate))
        self.writes = RateLimits(write_rate, burst=max(10.0, 2 * write_rate))
        self.open: dict[str, int] = {}  # connections and streams open, per counted identity

    @staticmethod
    def counted(identity: Identity) -> bool:
        return identity.origin == "jwt"

    def take_connection(self, identity: Identity) -> bool:
        """A slot for one more connection of ``identity``; False when it has all of its own."""
        if not self.counted(identity):
            return True
        held = self.open.get(identity.sub, 0)
        if held >= self.max_connections:
            return False
        self.open[identity.sub] = held + 1
        return True

    def give_back(self, identity: Identity) -> None:
        if not self.counted(identity):
            return
        held = self.open.get(identity.sub, 0) - 1
        if held > 0:
            self.open[identity.sub] = held
        else:
            self.open.pop(identity.sub, None)

    def subscribe_allowed(self, identity: Identity) -> bool | None:
        """For a counted identity, whether one more subscribe fits its rate; None otherwise (the
        caller counts per connection)."""
        return self.subscribes.allow(identity.sub) if self.counted(identity) else None

    def write_allowed(self, identity: Identity) -> bool:
        return not self.counted(identity) or self.writes.allow(identity.sub)
