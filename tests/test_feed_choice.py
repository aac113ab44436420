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


async def opened_with_auto(url: str, caplog: pytest.LogCaptureFixture) -> dict[str, object]:
    """Opens the database with ``auto`` (set here: the second pass sets triggers) and closes it:
    the feed chosen, the log's record of it, the trigger feed's triggers and the database's
    replication slots there, and what the service said of its choice."""
    caplog.set_level(logging.INFO, logger="orders_live.sources.postgres")
    source = postgres_source(url, PostgresOptions(changes="auto"))
    await source.connection.open()
    try:
        db = await asyncpg.connect(url)
        try:
            found: dict[str, object] = {
                "feed": source.connection.feed,
                "logged": await db.fetchval("SELECT feed FROM orders_live_log"),
                "triggers": await db.fetchval(
                    "SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_live_after_write'"
                ),
                "slots": await db.fetchval(
                    "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
                ),
            }
        finally:
            await db.close()
    finally:
        await source.connection.close()
    found["said"] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("PostgreSQL change feed")]
    return found


async def test_auto_reads_the_wal_on_a_server_that_can_give_it(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert await opened_with_auto(postgres_url, caplog) == {
        "feed": "wal",
        "logged": "wal",
        "triggers": 0,
        "slots": 1,
        "said": ["PostgreSQL change feed: wal (ORDERS_LIVE_PG_CHANGES=auto: the server has wal_level=logical)"],
    }


async def test_auto_keeps_the_triggers_for_a_role_that_may_not_replicate_and_says_why_once(
    pg: PgServer, caplog: pytest.LogCaptureFixture
) -> None:
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
    assert await opened_with_auto(owned.replace("//orders_live@", f"//{role}@"), caplog) == {
        "feed": "triggers",
        "logged": "triggers",
        "triggers": 1,
        "slots": 0,
        "said": [
            "PostgreSQL change feed: triggers"
            " (ORDERS_LIVE_PG_CHANGES=auto: the role may not replicate (ALTER ROLE … REPLICATION))"
        ],
    }


async def test_auto_keeps_the_triggers_when_no_replication_slot_is_free(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every slot of the server taken (physical slots, by something else that replicates): the
    database keeps the trigger feed, and the service says so. (Each test worker has a server of
    its own, and a worker's tests run one at a time, so no other test meets the full server.)"""
    admin = await asyncpg.connect(postgres_url)
    taken: list[str] = []
    try:
        limit = int(await admin.fetchval("SELECT current_setting('max_replication_slots')"))
        while len(taken) <= limit:  # until the server refuses one more (whoever else holds some)
            slot = f"elsewhere_{uuid.uuid4().hex[:12]}"
            try:
                await admin.execute("SELECT pg_create_physical_replication_slot($1)", slot)
            except asyncpg.ConfigurationLimitExceededError:
                break
            taken.append(slot)
        found = await opened_with_auto(postgres_url, caplog)
    finally:
        for slot in taken:
            await admin.execute("SELECT pg_drop_replication_slot($1)", slot)
        await admin.close()
    said = found.pop("said")
    assert found == {"feed": "triggers", "logged": "triggers", "triggers": 1, "slots": 0}
    assert isinstance(said, list) and len(said) == 1
    assert said[0].startswith(
        "PostgreSQL change feed: triggers (ORDERS_LIVE_PG_CHANGES=auto: no replication slot is free (all replication"
    )
