"""How much write-ahead log the WAL feed's slot holds back, seen from every instance (the job
``postgres.slot``): for ``/metrics`` and, past ``slot_retained_limit`` bytes or with nobody
reading the slot for ``UNREAD_AFTER`` seconds, for ``/readyz`` and a loud log line.

A slot keeps every byte of WAL its reader has not confirmed; one that nobody reads grows until
the server's disk is full. That is the best-known way change capture takes a database down, so
it is said loudly, on every instance, and not only on the one that reads it.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from orders_live.domain.source import DatabaseUnavailable
from orders_live.sources.postgres.connection import PostgresConnection
from orders_live.sources.postgres.slot import slot_state

log = logging.getLogger(__name__)

EVERY = 5.0  # seconds between looks at the slot
UNREAD_AFTER = 30.0  # seconds without a reader before /readyz says so (a leader's hand-over is shorter)


class SlotWatch:
    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection
        self.retained = 0.0  # bytes of WAL the slot holds back (0 without a slot)
        self.unconfirmed = 0.0  # bytes since the position its reader last confirmed
        self.unread_for = 0.0  # seconds the slot has had no reader
        self.problem: str | None = None

    @property
    def problems(self) -> list[str]:
        return [] if self.problem is None else [self.problem]

    async def run(self) -> None:
        """Until cancelled; idle when the database's feed is the triggers."""
        await self.connection.opened.wait()
        if self.connection.feed != "wal":
            await asyncio.Event().wait()
        while True:
            try:
                await self.look(EVERY)
            except (DatabaseUnavailable, asyncpg.PostgresError) as exc:
                log.debug("could not look at the replication slot: %s", exc)  # /readyz says the database is away
            await asyncio.sleep(EVERY)

    async def look(self, since_last: float) -> None:
        async with self.connection.answering() as db:
            state = await slot_state(db, self.connection.slot)
            feed = await db.fetchval("SELECT feed FROM orders_live_log")
        limit = self.connection.options.slot_retained_limit
        if feed != "wal":  # another instance switched the database to the trigger feed: no slot to watch
            self.retained = self.unconfirmed = self.unread_for = 0.0
            self.problem = None
            return
        if state is None:
            self.retained = self.unconfirmed = 0.0
            self._say(f"the replication slot {self.connection.slot} is missing; the WAL reader makes it again")
            return
        self.retained, self.unconfirmed = float(state.retained), float(state.unconfirmed)
        self.unread_for = 0.0 if state.active else self.unread_for + since_last
        if state.retained > limit:
            self._say(
                f"the replication slot {self.connection.slot} holds back {state.retained / 1e6:.0f} MB of WAL"
                f" (limit {limit / 1e6:.0f} MB): its reader is behind or gone"
            )
        elif self.unread_for >= UNREAD_AFTER:
            self._say(f"nobody has read the replication slot {self.connection.slot} for {self.unread_for:.0f} s")
        else:
            if self.problem is not None:
                log.warning("the replication slot %s is fine again", self.connection.slot)
            self.problem = None

    def _say(self, problem: str) -> None:
        if self.problem is None:
            log.error("%s", problem)
        self.problem = problem
