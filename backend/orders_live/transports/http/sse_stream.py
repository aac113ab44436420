"""One Server-Sent Events response and its pump, for every event stream (the orders' ``sse``, the
agent's ``agent_actions``): the rules are the same for both.

- The response: ``text/event-stream``, no caching or proxy buffering, ``retry: 1000`` first
  (the headers go out with it).
- One pump task per stream writes what its ``Outbox`` holds, woken by whatever puts into it
  (a change, a record appended, a snapshot page, the stream's end), never by a timer.
- Backpressure: the pump's write waits while the client reads slowly; what arrives meanwhile
  waits in the outbox, whose owner bounds it (``ClientQueue``'s conflation, the action
  stream's capacity). ``drained`` waits until the client has taken everything queued.
- Keep-alive: a comment when nothing was written for ``keepalive`` seconds.
- Close: ``finish(last)`` writes ``last`` after what is queued, then the pump ends; a client
  that left ends it with its write's ConnectionError (or the endpoint's sweep, for a quiet
  one); ``stop`` cancels it; a handler cancelled (the service stopping) closes the socket
  (``cancelled``), so that EventSource clients reconnect, elsewhere if need be.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from aiohttp import web

HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEP_ALIVE = b": keep-alive\n\n"


def sse_event(event: str, event_id: str | None, payload: Any) -> bytes:
    data = json.dumps(payload, separators=(",", ":"))
    id_line = f"id: {event_id}\n" if event_id is not None else ""
    return f"event: {event}\n{id_line}data: {data}\n\n".encode()


class Outbox(Protocol):
    """What a stream writes from (``ClientQueue[bytes]`` is one)."""

    @property
    def idle(self) -> bool:
        """Nothing waits to be written."""

    async def wait(self) -> None:
        """Returns once something may be ready to take."""

    def take(self) -> list[bytes]:
        """Everything ready to write now, in order."""

    def put_control(self, packet: bytes) -> None:
        """Queue ``packet`` after what is queued."""


class EventStream:
    """One SSE response and the task that writes its outbox to it."""

    def __init__(self, request: web.Request, outbox: Outbox, keepalive: float, name: str) -> None:
        self.request, self.outbox, self.keepalive, self.name = request, outbox, keepalive, name
        self.response = web.StreamResponse(headers=HEADERS)
        self.writing = False  # a write is under way (the client may be reading it slowly)
        self.wrote = asyncio.Event()
        self.finishing = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Send the headers and start the pump."""
        await self.response.prepare(self.request)
        await self.response.write(b"retry: 1000\n\n")  # the headers go out with it
        self._task = asyncio.create_task(self._pump(), name=f"sse.pump.{self.name}")

    def finish(self, last: bytes = b"") -> None:
        """Write ``last`` after what is queued, then end the stream. Without ``last``, only from
        the pump itself (an outbox's ``take``): nothing is put, so nothing wakes a waiting pump."""
        if last:
            self.outbox.put_control(last)
        self.finishing = True

    @property
    def ended(self) -> bool:
        return self._task is not None and self._task.done()

    async def done(self) -> None:
        """Returns when the pump has ended; raises what ended it (ConnectionError: the client left)."""
        assert self._task is not None
        await self._task

    async def drained(self) -> None:
        """Returns once the client has taken everything queued; ConnectionError if the stream ended."""
        while self.writing or not self.outbox.idle:
            if self.ended:
                raise ConnectionError("the event stream is closed")
            self.wrote.clear()
            await self.wrote.wait()
        if self.ended:
            raise ConnectionError("the event stream is closed")

    def cancelled(self) -> None:
        """The handler is cancelled (the service stops, or the client left): close the socket."""
        transport = self.request.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _pump(self) -> None:
        try:
            while not (self.finishing and self.outbox.idle):
                try:
                    async with asyncio.timeout(self.keepalive):
                        await self.outbox.wait()
                except TimeoutError:
                    await self.response.write(KEEP_ALIVE)
                    continue
                packets = self.outbox.take()
                if packets:
                    self.writing = True
                    try:
                        await self.response.write(b"".join(packets))  # waits while the client reads slowly
                    finally:
                        self.writing = False
                self.wrote.set()
        finally:
            self.wrote.set()
