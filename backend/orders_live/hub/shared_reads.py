"""Snapshot pages asked for while nothing changed are read from the database once.

When ten thousand clients subscribe to every order within a few seconds, each snapshot asks
for the same ids; read one by one, that is ten thousand queries, and the database is what
clients wait for (docs/performance.md, "Ten thousand clients"). ``SharedReads`` lets readers
of the same page share one read.

A page is exact only if no change reached the index between its read's start and its
subscriber's join (``snapshot``: a change applied after the join is held and folded in; one
committed before the read started is in the page, since the feed brings only committed
changes). The subscriber has joined when it asks, so a reader may share a read, started or
finished, only if ``generation()`` (the index's count of applied changes and seeds) is the
same now as when that read started; otherwise it waits for a read not yet sent. Every reader
that asks while such a read waits for one of the ``readers`` slots shares it.

A finished read is kept while the generation stands, for at most ``KEEP`` pages: at two
changes a second, the ten thousand snapshots of a connect storm cost a few reads, not one per
batch of subscribers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

KEEP = 16  # pages whose read is kept for sharing while nothing changes


class SharedReads(Generic[T]):
    def __init__(self, readers: int, generation: Callable[[], int]) -> None:
        self._readers = asyncio.Semaphore(readers)  # reads at the database at once
        self._generation = generation
        self._next: dict[Hashable, asyncio.Future[T]] = {}  # per page: the read not yet started
        # Per page: the latest read sent, with the generation when it was sent (insertion order).
        self._sent: dict[Hashable, tuple[int, asyncio.Future[T]]] = {}
        self._kept_at = 0  # the generation ``_sent`` was last pruned at
        self._reading: set[asyncio.Task[None]] = set()
        self.reads = 0  # reads sent to the database
        self.shared = 0  # readers served by another's read

    async def read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``'s result, from a read that nothing changed since: this reader's own, or
        another's for the same ``key``. The read runs in a task of its own (``snapshot.read``):
        a reader that gives up (its client left) neither cancels it for the others nor
        interrupts the driver mid-call (PyMongo can then leave a socket unclosed)."""
        while True:
            waiting = self._shareable(key)
            if waiting is None:
                waiting = asyncio.get_running_loop().create_future()
                self._next[key] = waiting
                task = asyncio.create_task(self._perform(key, waiting, read), name="snapshot.read")
                self._reading.add(task)
                task.add_done_callback(self._reading.discard)
            else:
                self.shared += 1
            if waiting.done() and not waiting.cancelled():
                return waiting.result()  # a kept read: no await, no task switch
            try:
                return await asyncio.shield(waiting)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not waiting.cancelled() or (current is not None and current.cancelling()):
                    raise
                # its read was cancelled (the service stops): ask again

    def _shareable(self, key: Hashable) -> asyncio.Future[T] | None:
        waiting = self._next.get(key)
        if waiting is not None:
            return waiting
        now = self._generation()
        if now != self._kept_at:
            self._sent = {k: sent for k, sent in self._sent.items() if sent[0] == now}
            self._kept_at = now
        sent = self._sent.get(key)
        if sent is None or sent[0] != now:
            return None
        future = sent[1]
        if future.done() and (future.cancelled() or future.exception() is not None):
            return None
        return future

    async def _perform(self, key: Hashable, waiting: asyncio.Future[T], read: Callable[[], Awaitable[T]]) -> None:
        try:
            async with self._readers:
                if self._next.get(key) is waiting:
                    del self._next[key]  # sent from here on: shared while nothing changes
                self._sent.pop(key, None)
                self._sent[key] = (self._generation(), waiting)
                while len(self._sent) > KEEP:
                    del self._sent[next(iter(self._sent))]
                self.reads += 1
                result = await read()
        except BaseException as exc:
            if self._next.get(key) is waiting:
                del self._next[key]
            if self._sent.get(key, (0, None))[1] is waiting:
                del self._sent[key]
            if isinstance(exc, asyncio.CancelledError):
                waiting.cancel()
                raise
            waiting.set_exception(exc)
            waiting.exception()  # retrieved here: each reader raises it itself
            return
        waiting.set_result(result)
