"""The WAL feed's reader: one instance at a time reads the database's replication slot and
appends what it decodes to the change log every instance follows (the job ``postgres.wal``).

Leadership is a session advisory lock held on a connection of its own: whoever holds it reads
the slot; the others try again every ``STANDBY_POLL`` seconds. When the leader dies, its
sessions end, the lock is free and the next instance takes over the same slot (ending the dead
leader's replication connection if the server still holds it), from the position the slot
last confirmed.

What is confirmed is only what is durable where readers need it: a batch of commits is
appended to the log in one transaction, and only after that transaction committed is its last
commit's end confirmed to the slot. A crash in between replays those commits, and the append
skips what the log holds already. While no transaction is open and nothing waits to be
appended, the position the server has sent up to is confirmed, so that a slot of a quiet
``orders`` table does not hold back the WAL other tables write.

The batches are appended through the connection that holds the leader's lock: an instance whose
session ended, and with it its lock, cannot append any more, so two leaders never append at once;
and no pooled connection is taken and reset per batch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from orders_live.domain.source import DatabaseUnavailable
from orders_live.runtime.backoff import Backoff
from orders_live.sources.postgres.connection import CHANNEL, PostgresConnection
from orders_live.sources.postgres.pgoutput import PgOutputError
from orders_live.sources.postgres.replication import Message, ReplicationLost, ReplicationStream
from orders_live.sources.postgres.slot import PUBLICATION, ensure_slot, slot_state
from orders_live.sources.postgres.wal_log import RESYNC, DecodedCommit, FeedChanged, WalDecoder, append

log = logging.getLogger(__name__)

LEADER_LOCK = (7362519, 3)  # pg_advisory_lock keys: the instance that reads the slot
STANDBY_POLL = 1.0  # seconds between a standby's tries to become the leader
LOCK_CHECK = 5.0  # seconds between checks that the leader's lock connection still answers
# Commits that come within GATHER_AFTER seconds of the last append gather for GATHER seconds
# before they are appended (unless GATHER_UPTO are there): one round trip, one transaction and one
# WAL flush for all of them. Appended one by one, the reader cost each commit a second commit
# (measured: 1 writer 0.54x of no orders-live, 0.74x gathered). A commit after a quiet spell is
# appended at once: at a few commits a second, gathering would only add its wait to each.
GATHER = 0.003
GATHER_AFTER = 0.010
GATHER_UPTO = 1_000
APPEND_WITHIN = 30.0  # seconds an append may take before the leader gives up and starts again
_PUBLISHED = (
    "SELECT EXISTS (SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid"
    " WHERE p.pubname = $1 AND r.prrelid = to_regclass('orders'))"
)
FAILURES = (
    DatabaseUnavailable,
    ReplicationLost,
    FeedChanged,
    PgOutputError,
    ValueError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,  # a connection closed, or left mid-query by a timeout
    asyncpg.exceptions.InternalClientError,
    OSError,
)


class WalLeader:
    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection
        self.leading = False
        self.appended = 0  # commits appended while leading (all leaderships of this instance)

    async def run(self) -> None:
        """Until cancelled: lead when this instance holds the lock, else stand by. Idle when the
        database's feed is the triggers."""
        await self.connection.opened.wait()
        if self.connection.feed != "wal":
            await asyncio.Event().wait()  # nothing to read: the writers' triggers log the changes
        backoff = Backoff("reading the write-ahead log", log)
        while True:
            try:
                await self._lead(backoff)
            except asyncio.CancelledError:
                raise
            except (*FAILURES, TimeoutError) as exc:
                await backoff.wait(exc)
            finally:
                self.leading = False

    async def _lead(self, backoff: Backoff) -> None:
        try:
            lock = await asyncpg.connect(self.connection.url)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        stream: ReplicationStream | None = None
        try:
            while not await self._may_lead(lock):
                backoff.reset()  # standing by is not failing
                await asyncio.sleep(STANDBY_POLL)  # another instance reads the slot, or the triggers log
            slot = self.connection.slot
            await self._publication_holds_orders(lock)
            await self._take_slot(lock, slot)
            stream = ReplicationStream(self.connection.url, slot, PUBLICATION)
            await stream.open()
            self.leading = True
            log.info("this instance reads the write-ahead log (slot %s)", slot)
            await self._follow(stream, lock, backoff)
        finally:
            if stream is not None:
                stream.close()
            try:
                await asyncio.wait_for(lock.close(), 2)
            except (*FAILURES, TimeoutError):  # a connection that cannot close cleanly is cut
                lock.terminate()

    async def _may_lead(self, lock: Any) -> bool:
        """This instance holds the leader's lock and the database's feed is the WAL (an instance
        started with the trigger feed may have switched it back: then nobody reads a slot)."""
        if await lock.fetchval("SELECT feed FROM orders_live_log") != "wal":
            return False
        return bool(await lock.fetchval("SELECT pg_try_advisory_lock($1, $2)", *LEADER_LOCK))

    async def _publication_holds_orders(self, lock: Any) -> None:
        """A dropped and recreated ``orders`` table leaves the publication (PostgreSQL removes a
        dropped table from it): put it back, and make every reader resync, since what the new
        table got meanwhile was never decoded."""
        if await lock.fetchval(_PUBLISHED, PUBLICATION):
            return
        log.warning(
            "the orders table was not in the publication %s (recreated?): added, every reader resyncs", PUBLICATION
        )
        async with lock.transaction():
            await lock.execute(f"ALTER PUBLICATION {PUBLICATION} ADD TABLE orders")  # constant names only
            await lock.execute(RESYNC, await lock.fetchval("SELECT pg_current_wal_insert_lsn()"))
            await lock.execute("SELECT pg_notify($1, '')", CHANNEL)

    async def _take_slot(self, lock: Any, slot: str) -> None:
        """The slot exists (made again, with a resync mark, if someone dropped it) and no other
        connection reads it (a dead leader's, which the server has not noticed yet, is ended)."""
        created = await ensure_slot(lock, slot)
        if created is not None:
            log.warning("the replication slot %s was missing: made again, every reader resyncs", slot)
            async with lock.transaction():
                await lock.execute(RESYNC, created - 1)
                await lock.execute("SELECT pg_notify($1, '')", CHANNEL)
        state = await slot_state(lock, slot)
        if state is not None and state.active_pid is not None:
            log.warning("ending the replication connection (pid %d) a former reader left on %s", state.active_pid, slot)
            await lock.execute("SELECT pg_terminate_backend($1)", state.active_pid)

    async def _follow(self, stream: ReplicationStream, lock: Any, backoff: Backoff) -> None:
        decoder = WalDecoder()
        pending: list[DecodedCommit] = []
        loop = asyncio.get_running_loop()
        confirmed, checked, appended_at = 0, loop.time(), -GATHER_AFTER
        async for batch in stream.batches():
            pending += _commits(decoder, batch)
            if 0 < len(pending) < GATHER_UPTO and loop.time() - appended_at < GATHER_AFTER:
                await asyncio.sleep(GATHER)  # commits come fast: let more come, for one append and one WAL flush
                pending += _commits(decoder, stream.ready())
            if pending:
                async with asyncio.timeout(APPEND_WITHIN):
                    self.appended += await append(lock, pending)  # the lock's session: only while leading
                appended_at = loop.time()
                confirmed = pending[-1].end_lsn
                stream.confirm(confirmed)
                pending.clear()
            elif not decoder.in_transaction and stream.sent_upto > confirmed:
                confirmed = stream.sent_upto  # nothing of ours before it is unconfirmed
                stream.confirm(confirmed)
            backoff.reset()  # a batch read and appended: the stream works
            if loop.time() - checked > LOCK_CHECK:  # a leader whose lock is gone must stop at once
                async with asyncio.timeout(LOCK_CHECK):
                    await self._publication_holds_orders(lock)
                checked = loop.time()


def _commits(decoder: WalDecoder, messages: list[Message]) -> list[DecodedCommit]:
    """The transactions that ``messages`` complete."""
    found = []
    for message in messages:
        commit = decoder.feed(message.payload)
        if commit is not None:
            found.append(commit)
    return found
