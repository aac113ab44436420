"""Growing, capped, jittered delays between retries; quiet at first, loud when it persists."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

MAX_DOUBLINGS = 32  # 2**32 times the first delay is past any sensible cap, and never overflows


class Backoff:
    """Delay ``n`` (from 1) is drawn from [ceiling/2, ceiling], ceiling = min(cap, first * 2**(n-1)):
    it still grows, and clients that failed together do not retry together."""

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        first: float = 0.1,
        cap: float = 10.0,
        quiet_failures: int = 3,
        jitter: float = 0.5,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.what, self.log = what, logger
        self.first, self.cap, self.quiet_failures = first, cap, quiet_failures
        self.jitter, self._rng = jitter, rng
        self.failures = 0

    def reset(self) -> None:
        if self.failures > self.quiet_failures:
            self.log.warning("%s recovered after %d failures", self.what, self.failures)
        self.failures = 0

    def ceiling(self) -> float:
        """The longest the next delay can be."""
        doublings = min(max(self.failures - 1, 0), MAX_DOUBLINGS)
        return float(min(self.cap, self.first * 2.0**doublings))

    def next_delay(self) -> float:
        ceiling = self.ceiling()
        return ceiling * (1.0 - self.jitter * self._rng())

    async def wait(self, error: BaseException) -> None:
        self.failures += 1
        delay = self.next_delay()
        level = logging.INFO if self.failures <= self.quiet_failures else logging.WARNING
        self.log.log(
            level, "%s failed (%s: %s); retry %d in %.2fs", self.what, type(error).__name__, error, self.failures, delay
        )
        await asyncio.sleep(delay)
