"""The agent's action log in the ``agent_actions`` table (``sql/schema.sql``): a seq from an
identity column, a partial unique index for actions, and triggers that refuse UPDATE, DELETE
and TRUNCATE, except the retention's deletes (``trim``: transactions that first set
``orders_live.agent_actions_retention``). Every statement is a fixed text; filters are typed
parameters."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from orders_live.domain.agent_action import (
    EVERY_ACTION,
    ActionFilter,
    AgentActionJson,
    NewAgentAction,
    encode_arguments,
)
from orders_live.domain.order import iso_millis
from orders_live.domain.source import AlreadyRecorded
from orders_live.sources.postgres.connection import PostgresConnection

APPEND_LOCK = (7362519, 2)  # pg_advisory_xact_lock keys: one append at a time, until it commits
COLUMNS = (
    "seq, kind, trigger, order_id, order_version, tool, arguments, message, reason, model, customer_name, recorded_at"
)
_MATCH = (
    "($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR trigger = $2)"
    " AND ($3::bigint IS NULL OR order_id = $3) AND ($4::bigint IS NULL OR order_version = $4)"
    " AND ($5::text IS NULL OR customer_name = $5)"
)
_RECENT = f"SELECT {COLUMNS} FROM agent_actions WHERE {_MATCH} ORDER BY seq DESC LIMIT $6"
_AFTER = f"SELECT {COLUMNS} FROM agent_actions WHERE {_MATCH} AND seq > $6 ORDER BY seq LIMIT $7"
_EXISTING = (
    f"SELECT {COLUMNS} FROM agent_actions"
    " WHERE kind = 'action' AND trigger = $1 AND order_id = $2 AND order_version = $3"
)
_INSERT = (
    "INSERT INTO agent_actions"
    " (kind, trigger, order_id, order_version, tool, arguments, message, reason, model, customer_name)"
    f" VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10) RETURNING {COLUMNS}"
)

TRIM_BATCH = 1_000  # records deleted per transaction
_TRIM_BELOW = (
    "SELECT GREATEST("
    " COALESCE((SELECT seq FROM agent_actions ORDER BY seq DESC OFFSET $1 LIMIT 1), 0),"
    " COALESCE((SELECT max(seq) FROM agent_actions"
    " WHERE recorded_at <= clock_timestamp() - make_interval(secs => $2::float8)), 0))"
)
_TRIM = "DELETE FROM agent_actions WHERE seq IN (SELECT seq FROM agent_actions WHERE seq <= $1 ORDER BY seq LIMIT $2)"


def record_of(row: Any) -> AgentActionJson:
    arguments = row["arguments"]
    return {
        "seq": row["seq"],
        "kind": row["kind"],
        "trigger": row["trigger"],
        "order_id": row["order_id"],
        "order_version": row["order_version"],
        "tool": row["tool"],
        "arguments": json.loads(arguments) if isinstance(arguments, str) else dict(arguments),
        "message": row["message"],
        "reason": row["reason"],
        "model": row["model"],
        "customer_name": row["customer_name"],
        "recorded_at": iso_millis(row["recorded_at"]),
    }


def _match(filters: ActionFilter) -> tuple[str | None, str | None, int | None, int | None, str | None]:
    return (filters.kind, filters.trigger, filters.order_id, filters.order_version, filters.customer)


class PostgresActionLog:
    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection

    async def append(self, new: NewAgentAction, customer_name: str | None = None) -> AgentActionJson:
        """Under a lock held until commit, so that seqs commit in order (readers of ``after``
        never skip a late one), and so that a refusal costs no seq."""
        key = new.unique_key
        async with self.connection.answering() as db:
            try:
                async with db.transaction():
                    await db.execute("SELECT pg_advisory_xact_lock($1, $2)", *APPEND_LOCK)
                    if key is not None:
                        existing = await db.fetchrow(_EXISTING, *key)
                        if existing is not None:
                            raise AlreadyRecorded(record_of(existing))
                    row = await db.fetchrow(
                        _INSERT,
                        new.kind,
                        new.trigger,
                        new.order_id,
                        new.order_version,
                        new.tool,
                        encode_arguments(new.arguments),
                        new.message,
                        new.reason,
                        new.model,
                        customer_name,
                    )
            except asyncpg.UniqueViolationError:  # a writer that took no lock (psql) came first
                if key is None:
                    raise
                existing = await db.fetchrow(_EXISTING, *key)
                if existing is None:
                    raise
                raise AlreadyRecorded(record_of(existing)) from None
        return record_of(row)

    async def recent(self, limit: int, filters: ActionFilter = EVERY_ACTION) -> list[AgentActionJson]:
        async with self.connection.answering() as db:
            rows = await db.fetch(_RECENT, *_match(filters), limit)
        return [record_of(row) for row in reversed(rows)]

    async def after(self, seq: int, limit: int, filters: ActionFilter = EVERY_ACTION) -> list[AgentActionJson]:
        async with self.connection.answering() as db:
            rows = await db.fetch(_AFTER, *_match(filters), seq, limit)
        return [record_of(row) for row in rows]

    async def trim(self, keep: int, keep_seconds: float) -> int:
        """Records are appended in time order (under the append lock), so the ones to delete
        are those up to one seq: below the newest ``keep``, or the newest one too old."""
        removed = 0
        async with self.connection.answering() as db:
            upto = int(await db.fetchval(_TRIM_BELOW, keep, keep_seconds))
            while True:
                async with db.transaction():
                    await db.execute("SET LOCAL orders_live.agent_actions_retention = 'on'")
                    deleted = int((await db.execute(_TRIM, upto, TRIM_BATCH)).split()[-1])
                removed += deleted
                if deleted < TRIM_BATCH:
                    return removed
