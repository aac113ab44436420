"""``Wakeup``: ``asyncio.Event``'s behaviour without its per-object waiter deque.

Every connection holds a few events (its queue's, its writer's, its socket's); an
``asyncio.Event`` allocates a ``collections.deque`` for waiters at construction, 760 bytes
each on CPython 3.11, almost always empty. At ten thousand connections that was about 2 KB
of each connection's RSS (docs/performance.md, "Ten thousand clients"). ``Wakeup`` keeps its
waiters in a list made only while someone waits. Same rules as ``asyncio.Event``: ``set``
wakes every waiter, ``wait`` returns at once while set, a waiter cancelled leaves the others
waiting.
"""

from __future__ import annotations

import asyncio


class Wakeup:
    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        try:
            await waiter
        finally:
            waiters = self._waiters
            if waiters is not None:
                waiters.remove(waiter)
                if not waiters:
                    self._waiters = None
