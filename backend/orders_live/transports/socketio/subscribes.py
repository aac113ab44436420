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

    def __len__(self) -> int:
        return len(self._rooms)

    async def run(self, room: str, work: Callable[[], Awaitable[Answer]]) -> Answer:
        """``work()`` in its turn, in a task of its own; SubscribeCancelled when ``cancel`` or
        ``cancel_all`` ended it first."""

        async def in_turn() -> Answer:
            async with self._turn:
                return await work()

        task = asyncio.create_task(in_turn(), name=f"socketio.subscribe.{self.name}")
        self._rooms[task] = room
        self._everyone.add(task)
        task.add_done_callback(self._done)
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # the handler itself (the server stops)
            task.cancel()
            raise
        if task.cancelled():
            raise SubscribeCancelled(room)
        return task.result()

    def cancel(self, room: str) -> bool:
        """Cancel the subscribes to ``room`` being answered; whether there were any."""
        tasks = [task for task, wanted in self._rooms.items() if wanted == room]
        for task in tasks:
            task.cancel()
        return bool(tasks)

    def cancel_all(self) -> None:
        for task in self._rooms:
            task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._rooms.pop(task, None)
        self._everyone.discard(task)
