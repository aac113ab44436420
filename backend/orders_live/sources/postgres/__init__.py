"""PostgreSQL through asyncpg: the brief's trigger → ``pg_notify`` → ``LISTEN`` design, with
the change log as the truth and NOTIFY only as a wake-up.

``connection`` owns the pool, the listening connection (the job ``postgres.listen``) and the
schema (``sql/schema.sql``, the repository's ``postgres/`` folder); ``store``, ``feed``,
``checkpoints`` and ``actions`` implement one contract each over it; ``documents`` turns rows into orders and
changes; ``retention`` keeps the log bounded (the job ``postgres.retention``); ``embedded`` runs a private server.
"""

from __future__ import annotations

from orders_live.domain.source import Source
from orders_live.sources.options import PostgresOptions
from orders_live.sources.postgres.actions import PostgresActionLog
from orders_live.sources.postgres.checkpoints import PostgresCheckpoints
from orders_live.sources.postgres.connection import PostgresConnection
from orders_live.sources.postgres.feed import PostgresChangeFeed
from orders_live.sources.postgres.retention import LogRetention
from orders_live.sources.postgres.store import PostgresOrderStore

__all__ = ["PostgresConnection", "PostgresOptions", "postgres_source"]


def postgres_source(url: str, options: PostgresOptions | None = None) -> Source:
    connection = PostgresConnection(url, options or PostgresOptions())
    return Source(
        connection=connection,
        store=PostgresOrderStore(connection),
        feed=PostgresChangeFeed(connection),
        checkpoints=PostgresCheckpoints(connection),
        actions=PostgresActionLog(connection),
        jobs={"postgres.listen": connection.listen, "postgres.retention": LogRetention(connection).run},
    )
