"""Pacing of empty getMores against a server that answers them at once (nx-27017)."""

from __future__ import annotations

import asyncio


class IdlePacer:
    """MongoDB holds an empty getMore open for ``maxAwaitTimeMS``; nx-27017 returns at
    once, so a naive watcher spins a CPU. After a fast empty batch the watcher sleeps
    until a local write wakes it, or for a delay that doubles up to ``cap``.
    """

    def __init__(self, first: float = 0.002, cap: float = 0.2) -> None:
        self.first, self.cap = first, cap
        self._delay = first
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    def reset(self) -> None:
        self._delay = self.first

    async def pause(self) -> None:
        try:
            async with asyncio.timeout(self._delay):  # no inner task: safe inside a generator
                await self._woken.wait()
        except TimeoutError:
            self._delay = min(self.cap, self._delay * 2)
        else:
            self._delay = self.first
        self._woken.clear()
