"""PostgreSQL through asyncpg: the brief's trigger → ``pg_notify`` → ``LISTEN`` design, with
the change log as the truth and NOTIFY only as a wake-up.

``connection`` owns the pool, the listening connection (the job ``postgres.listen``) and the
schema (``sql/schema.sql``, the repository's ``postgres/`` folder); ``store``, ``feed``,
``checkpoints`` and ``actions`` implement one contract each over it; ``documents`` turns rows into orders and
changes; ``retention`` keeps the log bounded (the job ``postgres.retention``); ``embedded`` runs a private server.
The change log is appended either by the writers' triggers (``sql/triggers.sql``) or, with the WAL feed
(``slot``), by the one instance that reads the replication slot (``wal_leader``, the job ``postgres.wal``:
``replication`` streams it, ``pgoutput`` decodes it, ``wal_log`` appends it); ``slot_watch`` (the job
``postgres.slot``) reports how much WAL the slot holds back.
"""

from __future__ import annotations

from orders_live.domain.source import Source, SourceHealth
from orders_live.sources.options import PostgresOptions
from orders_live.sources.postgres.actions import PostgresActionLog
from orders_live.sources.postgres.checkpoints import PostgresCheckpoints
from orders_live.sources.postgres.connection import PostgresConnection
from orders_live.sources.postgres.feed import PostgresChangeFeed
from orders_live.sources.postgres.retention import LogRetention
from orders_live.sources.postgres.slot_watch import SlotWatch
from orders_live.sources.postgres.store import PostgresOrderStore
from orders_live.sources.postgres.wal_leader import WalLeader

__all__ = ["PostgresConnection", "PostgresOptions", "postgres_source"]


def postgres_source(url: str, options: PostgresOptions | None = None) -> Source:
    connection = PostgresConnection(url, options or PostgresOptions())
    leader, watch = WalLeader(connection), SlotWatch(connection)
    return Source(
        connection=connection,
        store=PostgresOrderStore(connection),
        feed=PostgresChangeFeed(connection),
        checkpoints=PostgresCheckpoints(connection),
        actions=PostgresActionLog(connection),
        jobs={
            "postgres.listen": connection.listen,
            "postgres.retention": LogRetention(connection).run,
            "postgres.wal": leader.run,  # idle with the trigger feed
            "postgres.slot": watch.run,
        },
        health=SourceHealth(
            problems=lambda: watch.problems,
            gauges={
                "orders_live_wal_slot_retained_bytes": (
                    "Bytes of WAL the WAL feed's replication slot holds back (0: no slot, or the trigger feed).",
                    lambda: watch.retained,
                ),
                "orders_live_wal_slot_unconfirmed_bytes": (
                    "Bytes of WAL since the position the slot's reader last confirmed.",
                    lambda: watch.unconfirmed,
                ),
                "orders_live_wal_leader": (
                    "1 while this instance reads the WAL feed's replication slot, else 0.",
                    lambda: 1.0 if leader.leading else 0.0,
                ),
            },
        ),
    )
