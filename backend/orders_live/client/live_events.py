"""What ``LiveOrders`` tells its caller: ``LiveEvent``s, to a callback and to every iterator.

Each iterator has its own queue of at most ``EVENTS_CAPACITY`` events; one that falls further
behind loses what it holds and gets a ``dropped`` event instead (read ``orders`` afresh), so a
reader that stopped reading never grows memory without bound. ``end()`` tells every iterator,
present and future, that nothing follows; a fresh ``start()`` of the client ``reopen()``s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from orders_live.domain.order import OrderJson

log = logging.getLogger(__name__)

EVENTS_CAPACITY = 10_000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """``change``: one applied change (``replayed`` during catch-up, ``conflated`` when
    the server merged changes for a slow client). ``snapshot``/``resync``: the view was
    replaced (``reason`` says why for a resync). ``dropped``: this iterator fell behind;
    read ``orders`` afresh."""

    kind: Literal["change", "snapshot", "resync", "dropped"]
    change: dict[str, Any] | None = None
    replayed: bool = False
    reason: str | None = None
    before: OrderJson | None = None  # the order as the view held it before the change


class LiveEvents:
    def __init__(self, on_event: Callable[[LiveEvent], None] | None) -> None:
        self.on_event = on_event
        self.ended = False
        self._queues: list[asyncio.Queue[LiveEvent | None]] = []  # None: nothing follows

    def emit(self, event: LiveEvent) -> None:
        if self.ended:
            return  # the iterators have been told; nothing may follow that
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("an on_event callback failed")
        for queue in self._queues:
            if queue.qsize() >= EVENTS_CAPACITY:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(LiveEvent("dropped"))
            else:
                queue.put_nowait(event)

    def end(self) -> None:
        self.ended = True
        for queue in self._queues:
            queue.put_nowait(None)

    def reopen(self) -> None:
        self.ended = False

    async def iterate(self, at_end: Callable[[], None]) -> AsyncIterator[LiveEvent]:
        """Every event from now on; once ended, calls ``at_end`` (which may raise) and stops."""
        queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue()
        self._queues.append(queue)
        if self.ended:
            queue.put_nowait(None)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    at_end()
                    return
                yield event
        finally:
            self._queues.remove(queue)
