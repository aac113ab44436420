"""The PostgreSQL connections: a pool for reads and writes, one dedicated connection that
LISTENs (``listen``: a job the service runs under its supervisor), and the schema.

NOTIFY is only a wake-up: each notification (or, without one, a periodic re-read) makes the
readers look at the change log, which is the truth. A notification lost while the listening
connection was down costs nothing: the readers re-read when it is back, and meanwhile poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import asyncpg

from orders_live.domain.source import DatabaseUnavailable
from orders_live.runtime.backoff import Backoff
from orders_live.sources.options import PostgresOptions
from orders_live.sources.postgres.slot import Feed, FeedChoice, choose_feed, drop_slot, ensure_slot
from orders_live.sources.postgres.wal_log import RESYNC

log = logging.getLogger(__name__)

CHANNEL = "orders_live"
SCHEMA_LOCK = (7362519, 0)  # pg_advisory_xact_lock keys: applying the schema
SCHEMA_ATTEMPTS = 5  # tries of applying the schema when the server ends one to break a deadlock
# What asyncpg raises when the server is away, refuses, or the connection broke.
UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


def schema_sql(name: str = "schema") -> str:
    """``schema.sql``, or a feed's own file (``triggers``, ``wal``), run after it."""
    return resources.files("orders_live.sources.postgres").joinpath("sql", f"{name}.sql").read_text()


async def keep_session(connection: Any) -> None:
    """The pool's reset of a released connection, instead of asyncpg's default (``RESET ALL``,
    ``UNLISTEN *``, ``CLOSE ALL``, ``pg_advisory_unlock_all()``: one more round trip per query
    taken from the pool). asyncpg still rolls back a transaction left open before calling this.
    Nothing here leaves session state on a pooled connection: settings are ``SET LOCAL``, locks
    ``pg_advisory_xact_lock``, cursors live in transactions, and the ``LISTEN`` and the WAL
    leader's session lock have connections of their own."""


class PostgresConnection:
    def __init__(self, url: str, options: PostgresOptions) -> None:
        self.url, self.options = url, options
        self.pool: asyncpg.Pool | None = None
        self._news = asyncio.Event()  # set (and replaced) at each NOTIFY, and when listening resumes
        self.listening = False
        self._opened = False
        self.opened = asyncio.Event()  # set once open() has chosen the feed and applied the schema
        self.feed: Feed | None = None  # chosen at open()
        self.slot = ""  # the WAL feed's replication slot (named at open())

    @property
    def description(self) -> str:
        database = self.url.rsplit("/", 1)[-1].split("?", 1)[0] or "postgres"
        return f"PostgreSQL database {database!r}"

    async def open(self) -> None:
        """Idempotent; a server that does not answer is DatabaseUnavailable (the hub retries)."""
        if self._opened:
            return
        try:
            if self.pool is None:
                self.pool = await asyncpg.create_pool(
                    self.url,
                    min_size=1,
                    max_size=self.options.pool_size,
                    command_timeout=60,
                    reset=keep_session,
                )
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
        async with self.answering() as connection:
            await self._apply_schema(connection)
        self._opened = True
        self.opened.set()

    async def _apply_schema(self, connection: Any) -> None:
        """``_apply_feed`` again when the server ended it to break a deadlock: its DDL can meet the
        WAL reader's append, which holds the log's tables and waits on the orders row type."""
        for attempt in range(1, SCHEMA_ATTEMPTS + 1):
            try:
                await self._apply_feed(connection)
                return
            except asyncpg.DeadlockDetectedError:
                if attempt == SCHEMA_ATTEMPTS:
                    raise
                log.info("applying the schema met a deadlock (attempt %d); again", attempt)
                await asyncio.sleep(0.05 * attempt)

    async def _apply_feed(self, connection: Any) -> None:
        """The schema and the chosen feed's part of it, under the schema lock. A change of feed
        leaves no gap: to the WAL, the slot is made first and the log records from which WAL
        position the changes are its reader's (the drop of the triggers waits for every writer
        that ran them); back to the triggers, every reader is made to resync, and the slot is
        dropped so that it keeps no WAL."""
        choice = await choose_feed(connection, self.options.changes)
        self.slot = choice.slot
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1, $2)", *SCHEMA_LOCK)
            await connection.execute(schema_sql())
            if choice.feed == "wal":
                await connection.execute(schema_sql("publication"))
        created = None
        if choice.feed == "wal":
            try:
                created = await ensure_slot(connection, choice.slot)
            except asyncpg.ConfigurationLimitExceededError as exc:  # every replication slot is taken
                why = f"no replication slot is free ({exc})"
                if self.options.changes == "wal":
                    raise DatabaseUnavailable(f"ORDERS_LIVE_PG_CHANGES=wal, but {why}") from exc
                choice = FeedChoice("triggers", f"ORDERS_LIVE_PG_CHANGES=auto: {why}", choice.slot)
        if self.feed is None:
            log.info("PostgreSQL change feed: %s (%s)", choice.feed, choice.why)
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1, $2)", *SCHEMA_LOCK)
            was = await connection.fetchval("SELECT feed FROM orders_live_log")
            await connection.execute(schema_sql(choice.feed))
            if choice.feed == "wal" and was != "wal":
                await connection.execute(
                    "UPDATE orders_live_log SET feed = 'wal', wal_from = pg_current_wal_insert_lsn()"
                )
            elif choice.feed == "wal" and created is not None:  # the slot was gone: what it held is lost
                log.warning("the replication slot %s was missing: every reader resyncs", choice.slot)
                await connection.execute(RESYNC, created - 1)
                await connection.execute("SELECT pg_notify($1, '')", CHANNEL)
            elif choice.feed == "triggers" and was == "wal":
                log.warning("the change feed goes from the WAL back to triggers: every reader resyncs")
                await connection.execute("UPDATE orders_live_log SET feed = 'triggers', wal_from = NULL")
                await connection.execute("INSERT INTO orders_live_changes (op, order_id) VALUES ('truncate', 0)")
                await connection.execute("SELECT pg_notify($1, '')", CHANNEL)
        if choice.feed == "triggers":
            await drop_slot(connection, choice.slot)
        self.feed = choice.feed

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        self._opened = False
        self.opened.clear()

    async def ping(self) -> None:
        async with asyncio.timeout(1.0), self.answering() as connection:
            await connection.fetchval("SELECT 1")

    @contextlib.asynccontextmanager
    async def answering(self) -> AsyncIterator[Any]:
        """A pooled connection; driver errors of an unreachable server leave as DatabaseUnavailable."""
        if self.pool is None:
            raise DatabaseUnavailable("the database has not been opened")
        try:
            async with self.pool.acquire() as connection:
                yield connection
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def news(self) -> asyncio.Event:
        """Set by the next notification: take it before reading, wait on it after."""
        return self._news

    async def wait_for_news(self, news: asyncio.Event, within: float) -> None:
        """Returns once ``news`` is set, or after ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):  # no inner task: safe inside a generator
                await news.wait()

    def _wake(self) -> None:
        self._news.set()
        self._news = asyncio.Event()

    async def listen(self) -> None:
        """One connection that LISTENs, reconnected with growing, capped delays; checked
        with ``SELECT 1`` when quiet, since a dead TCP peer may say nothing. Runs until
        cancelled (the job ``postgres.listen``)."""
        backoff = Backoff("listening for changes", log)
        while True:
            try:
                connection = await asyncpg.connect(self.url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await backoff.wait(exc)
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _, lost=lost: lost.set())
            try:
                await connection.add_listener(CHANNEL, self._on_notify)
                self.listening = True
                backoff.reset()
                self._wake()  # whatever was notified while we were away: read it now
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self.options.poll_interval * 5)
                    if not lost.is_set():
                        async with asyncio.timeout(5):
                            await connection.fetchval("SELECT 1")
                raise ConnectionError("the listening connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening = False
                await backoff.wait(exc)
            finally:
                self.listening = False
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 2)

    def _on_notify(self, *_: object) -> None:
        self._wake()  # the driver's callback only wakes the readers; they do the work
