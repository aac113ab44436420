"""The open event streams of one endpoint: each holds a connection slot (its identity's, then the
service's) while it runs, ends when its token expires or is revoked, and all of them end when
the service stops (their clients reconnect, elsewhere if need be).

aiohttp does not cancel a handler whose client left (it would cancel every handler so, writes
included): a quiet stream would learn it only at its next write, up to a keep-alive later,
and hold its slots until then. ``sweep`` (one supervised task per endpoint) looks at every
open stream's socket once a second and ends those whose client has gone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from orders_live.domain.identity import Identity
from orders_live.transports.access import ConnectionBudget
from orders_live.transports.http.errors import ApiError
from orders_live.transports.sessions import Sessions, TooManyConnections

Act = Callable[[str, dict[str, Any]], None]
ENDING_WITHIN = 1.0  # seconds an ended stream has to write its last event before its socket is closed
SWEEP_EVERY = 1.0  # seconds between looks for streams whose client has gone


class StreamEnding:
    """How a stream learns that its token ended: ``then(act)`` runs ``act(event, payload)`` once
    the session ends (at once if it already has); the stream writes that event and closes."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self._act: Act | None = None
        self.why: tuple[str, dict[str, Any]] | None = None
        self.backstop: asyncio.TimerHandle | None = None

    def __call__(self, event: str, payload: dict[str, Any]) -> None:
        self.why = (event, payload)
        # A client that reads slowly must not keep an ended (a revoked) stream open: its
        # socket is closed if the stream has not ended by itself within ENDING_WITHIN.
        self.backstop = asyncio.get_running_loop().call_later(ENDING_WITHIN, self._close)
        if self._act is not None:
            self._act(event, payload)

    def _close(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()  # close() would wait for a client that reads nothing

    def then(self, act: Act) -> None:
        self._act = act
        if self.why is not None:
            act(*self.why)


class OpenStreams:
    def __init__(self, budget: ConnectionBudget, sessions: Sessions) -> None:
        self.budget, self.sessions = budget, sessions
        self._tasks: dict[asyncio.Task[Any], web.Request] = {}  # the handler task of each open stream

    def __len__(self) -> int:
        return len(self._tasks)

    @contextlib.contextmanager
    def holding(self, identity: Identity, request: web.Request) -> Iterator[StreamEnding]:
        """The calling handler's stream, for as long as the block runs; 429 when its identity
        holds all of its connections, 503 when the server is full."""
        ending = StreamEnding(request)
        try:
            session = self.sessions.open(identity, ending)
        except TooManyConnections:
            limit = self.sessions.limits.max_connections
            raise ApiError(429, "too_many_connections", f"this identity has {limit} connections open already") from None
        try:
            if not self.budget.take():
                raise ApiError(503, "too_many_connections", "the server is full")
            task = asyncio.current_task()
            assert task is not None
            self._tasks[task] = request
            try:
                yield ending
            finally:
                self._tasks.pop(task, None)
                self.budget.give_back()
        finally:
            self.sessions.close(session)
            if ending.backstop is not None:
                ending.backstop.cancel()

    async def sweep(self) -> None:
        """End, once a second, the streams whose client has gone (a supervised task)."""
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            for task, request in list(self._tasks.items()):
                transport = request.transport
                if transport is None or transport.is_closing():
                    task.cancel()

    async def close(self) -> None:
        """End every open stream."""
        streams = list(self._tasks)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
