"""The open event streams of one endpoint: each holds a connection slot while it runs, and all
of them end when the service stops (their clients reconnect, elsewhere if need be)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from orders_live.transports.access import ConnectionBudget
from orders_live.transports.http.errors import ApiError


class OpenStreams:
    def __init__(self, budget: ConnectionBudget) -> None:
        self.budget = budget
        self._tasks: set[asyncio.Task[Any]] = set()  # the handler task of each open stream

    def __len__(self) -> int:
        return len(self._tasks)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """The calling handler's stream, for as long as the block runs; 503 when the server is full."""
        if not self.budget.take():
            raise ApiError(503, "too_many_connections", "the server is full")
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)
            self.budget.give_back()

    async def close(self) -> None:
        """End every open stream."""
        streams = list(self._tasks)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
