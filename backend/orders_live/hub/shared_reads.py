"""Snapshot pages asked for together are read from the database once.

When ten thousand clients subscribe to every order within a few seconds, each snapshot asks
for the same ids; read one by one, that is ten thousand queries, and the database is what
clients wait for (docs/performance.md, "Ten thousand clients"). ``SharedReads`` lets every
reader that asks for the same page before its read *starts* share that read.

A page is exact only if it is read after its subscriber joined its room (``snapshot``: a
change committed before the read and after the join is held and folded in; one committed
before the join is in the page). So a reader never joins a read already sent to the database:
it waits for the next one. The readers that ask while the read waits for one of the
``readers`` slots all share it; the first one to ask performs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedReads(Generic[T]):
    def __init__(self, readers: int) -> None:
        self._readers = asyncio.Semaphore(readers)  # reads at the database at once
        self._next: dict[Hashable, asyncio.Future[T]] = {}  # per page: the read not yet started
        self._reading: set[asyncio.Task[None]] = set()
        self.reads = 0  # reads sent to the database
        self.shared = 0  # readers served by another's read

    async def read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``'s result, from a read started after this call: this reader's own, or
        another's that asked for the same ``key`` before that read was sent. The read runs in a
        task of its own (``snapshot.read``): a reader that gives up (its client left) neither
        cancels it for the others nor interrupts the driver mid-call (PyMongo can then leave a
        socket unclosed)."""
        while True:
            waiting = self._next.get(key)
            if waiting is None:
                waiting = asyncio.get_running_loop().create_future()
                self._next[key] = waiting
                task = asyncio.create_task(self._perform(key, waiting, read), name="snapshot.read")
                self._reading.add(task)
                task.add_done_callback(self._reading.discard)
            else:
                self.shared += 1
            try:
                return await asyncio.shield(waiting)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not waiting.cancelled() or (current is not None and current.cancelling()):
                    raise
                # its read was cancelled (the service stops): ask again

    async def _perform(self, key: Hashable, waiting: asyncio.Future[T], read: Callable[[], Awaitable[T]]) -> None:
        try:
            async with self._readers:
                if self._next.get(key) is waiting:
                    del self._next[key]  # sent from here on: later readers wait for the next one
                self.reads += 1
                result = await read()
        except BaseException as exc:
            if self._next.get(key) is waiting:
                del self._next[key]
            if isinstance(exc, asyncio.CancelledError):
                waiting.cancel()
                raise
            waiting.set_exception(exc)
            waiting.exception()  # retrieved here: each reader raises it itself
            return
        waiting.set_result(result)
