"""Which PostgreSQL change feed a database gets by default (ORDERS_LIVE_PG_CHANGES=auto): the WAL
when the server can give it (wal_level=logical, a role that may replicate, room for a slot and a
WAL sender), else the triggers, said in one log line that names what is missing. On a real server."""

from __future__ import annotations

import logging
import uuid

import asyncpg
import pytest

from conftest import PgServer
from orders_live.sources.options import PostgresOptions
from orders_live.sources.postgres import postgres_source
from orders_live.sources.postgres.embedded import create_database

pytestmark = [pytest.mark.database]


def test_the_default_feed_is_auto() -> None:
    assert PostgresOptions.model_fields["changes"].default == "auto"


async def test_auto_reads_the_wal_on_a_server_that_can_give_it(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orders_live.sources.postgres")
    source = postgres_source(postgres_url, PostgresOptions(changes="auto"))  # the second pass sets triggers
    await source.connection.open()
    try:
        assert source.connection.feed == "wal"
        db = await asyncpg.connect(postgres_url)
        try:
            assert await db.fetchval("SELECT feed FROM orders_live_log") == "wal"
            slots = await db.fetchval("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()")
            assert slots == 1
        finally:
            await db.close()
    finally:
        await source.connection.close()
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("PostgreSQL change feed")]
    assert said == ["PostgreSQL change feed: wal (ORDERS_LIVE_PG_CHANGES=auto: the server has wal_level=logical)"]


async def test_auto_keeps_the_triggers_for_a_role_that_may_not_replicate_and_says_why_once(
    pg: PgServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orders_live.sources.postgres")
    role = f"plain_{uuid.uuid4().hex[:10]}"
    name = f"t_{uuid.uuid4().hex[:12]}"
    await create_database(pg.url("postgres"), name)
    owned = pg.url(name)  # the role owns it: it may create the tables, not replicate
    admin = await asyncpg.connect(owned)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN NOREPLICATION")  # a generated name, not input
        await admin.execute(f"ALTER DATABASE {name} OWNER TO {role}")
    finally:
        await admin.close()
    url = owned.replace("//orders_live@", f"//{role}@")
    source = postgres_source(url, PostgresOptions(changes="auto"))
    await source.connection.open()
    try:
        assert source.connection.feed == "triggers"
        db = await asyncpg.connect(url)
        try:
            assert await db.fetchval("SELECT feed FROM orders_live_log") == "triggers"
            triggers = await db.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_live_after_write'")
            assert triggers == 1
            slots = await db.fetchval("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()")
            assert slots == 0
        finally:
            await db.close()
    finally:
        await source.connection.close()
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("PostgreSQL change feed")]
    assert said == [
        "PostgreSQL change feed: triggers"
        " (ORDERS_LIVE_PG_CHANGES=auto: the role may not replicate (ALTER ROLE … REPLICATION))"
    ]
