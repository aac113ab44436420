"""Where the hub's feed is: its position, whether it is live, and waiting for a position."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from orders_live.domain.source import PositionKey


class NotReady(Exception):
    pass


class FeedPosition:
    def __init__(self, position_key: Callable[[str], PositionKey | None]) -> None:
        self.key = position_key
        self.position: str | None = None
        self.stream_up = False  # the change stream answered the last time it was read
        self._ready = asyncio.Event()
        self._advanced = asyncio.Event()  # replaced each time it fires

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def go_live(self) -> None:
        self._ready.set()

    def lose(self) -> None:
        """The feed must be rebuilt: nothing is served until it is live again."""
        self._ready.clear()
        self.position = None

    def advance(self, position: str) -> None:
        self.position = position
        self._advanced.set()
        self._advanced = asyncio.Event()

    def current(self) -> str:
        """The position, once live; else NotReady."""
        if not self._ready.is_set() or self.position is None:
            raise NotReady("the change feed is not running yet")
        return self.position

    async def wait_ready(self, within: float) -> None:
        if self._ready.is_set():
            return  # the common case: no task and no timer per subscribe
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            raise NotReady("the change feed is not running yet") from None

    async def reach(self, key: PositionKey, within: float) -> bool:
        """Wait (a bounded time) until the feed has reached a position another instance
        may already have handed out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            current = self.key(self.position or "")
            if current is not None and current >= key:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            advanced = self._advanced
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await advanced.wait()
