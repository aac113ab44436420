"""One connection's subscribes while they are being answered.

One at a time: a subscribe's snapshot (or its catch-up) is read while those sent after it wait
their turn, in the order sent, holding nothing but their request. Each counts against the
connection's subscription cap until it is answered, so at most ``max_subscriptions`` wait. An
unsubscribe of its filter, or the client's disconnect, cancels it at once: its database reads
stop, and its view leaves its room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

Answer = TypeVar("Answer")


class SubscribeCancelled(Exception):
    """The subscribe was cancelled before it was answered (unsubscribed, or disconnected)."""


class SubscribesInFlight:
    def __init__(self, name: str, everyone: set[asyncio.Task[Any]] | None = None) -> None:
        self.name = name
        self._turn = asyncio.Lock()
        self._rooms: dict[asyncio.Task[Any], str] = {}  # each subscribe's task, until it is done
        self._everyone = everyone if everyone is not None else set()  # every connection's, for counting
        self._cancelled: set[asyncio.Task[Any]] = set()  # cancelled here, not by the server's stop

    def __len__(self) -> int:
        return len(self._rooms)

    async def run(self, room: str, work: Callable[[], Awaitable[Answer]]) -> Answer:
        """``work()`` in its turn, in the caller's own task (so that its answer is queued in the
        same step as the work ends: no change can be queued between them); SubscribeCancelled
        when ``cancel`` or ``cancel_all`` ended it first."""
        task = asyncio.current_task()
        assert task is not None
        self._rooms[task] = room
        self._everyone.add(task)
        try:
            async with self._turn:
                return await work()
        except asyncio.CancelledError:
            if task not in self._cancelled:
                raise  # the handler itself (the server stops)
            task.uncancel()
            raise SubscribeCancelled(room) from None
        finally:
            self._cancelled.discard(task)
            self._done(task)

    def cancel(self, room: str) -> bool:
        """Cancel the subscribes to ``room`` being answered; whether there were any."""
        tasks = [task for task, wanted in self._rooms.items() if wanted == room]
        for task in tasks:
            self._cancelled.add(task)
            task.cancel()
        return bool(tasks)

    def cancel_all(self) -> None:
        for task in list(self._rooms):
            self._cancelled.add(task)
            task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._rooms.pop(task, None)
        self._everyone.discard(task)
