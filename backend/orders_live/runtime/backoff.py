"""Growing, capped delays between retries; quiet at first, loud when it persists."""

from __future__ import annotations

import asyncio
import logging


class Backoff:
    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        first: float = 0.1,
        cap: float = 10.0,
        quiet_failures: int = 3,
    ) -> None:
        self.what, self.log = what, logger
        self.first, self.cap, self.quiet_failures = first, cap, quiet_failures
        self.failures = 0

    def reset(self) -> None:
        if self.failures > self.quiet_failures:
            self.log.warning("%s recovered after %d failures", self.what, self.failures)
        self.failures = 0

    def next_delay(self) -> float:
        return float(min(self.cap, self.first * 2 ** (self.failures - 1)))

    async def wait(self, error: BaseException) -> None:
        self.failures += 1
        delay = self.next_delay()
        level = logging.INFO if self.failures <= self.quiet_failures else logging.WARNING
        self.log.log(
            level, "%s failed (%s: %s); retry %d in %.2fs", self.what, type(error).__name__, error, self.failures, delay
        )
        await asyncio.sleep(delay)
