"""The fan-out's frames, written a round at a time so that the event loop keeps answering.

The hub hands a change to every subscriber in one synchronous step (its ordering rests on it:
docs/architecture.md, "Views that agree with a position"). Writing each client's frame in that
step meant one ``write(2)`` per client before the loop could do anything else: 17 µs each, so
a change to 10,000 clients held the loop for 170 ms (docs/performance.md, "Ten thousand
clients"). ``WriteRounds`` takes the frames in that step, in order, and writes ``PER_ROUND`` of
them per turn of the loop: timers, reads and other clients' requests run in between.

Order per client is kept by its connection (``ClientConnection``): while frames of its wait
here (``deferred``), its writer task writes nothing of its own, and ``written()`` waits for them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

PER_ROUND = 1_000  # frames written per turn of the loop (~17 ms here)


class Deferring(Protocol):
    deferred: int  # its frames waiting in a round

    def write_deferred(self, frame: bytes) -> None:
        """Write one of its frames now (and count it out of ``deferred``)."""


class WriteRounds:
    def __init__(self, per_round: int = PER_ROUND) -> None:
        self.per_round = per_round
        # Two deques in step, not one of pairs: a pair per frame would be 10,000 new objects
        # for the garbage collector per change at 10,000 clients.
        self._to: deque[Deferring] = deque()
        self._frames: deque[bytes] = deque()
        self._scheduled = False
        self.rounds = 0  # rounds run (for tests and curiosity)

    def add(self, connection: Deferring, frame: bytes) -> None:
        self._to.append(connection)
        self._frames.append(frame)
        connection.deferred += 1
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._round)

    def _round(self) -> None:
        to, frames, left = self._to, self._frames, self.per_round
        self.rounds += 1
        while frames and left:
            to.popleft().write_deferred(frames.popleft())
            left -= 1
        if frames:
            asyncio.get_running_loop().call_soon(self._round)
        else:
            self._scheduled = False

    @property
    def waiting(self) -> int:
        return len(self._frames)
