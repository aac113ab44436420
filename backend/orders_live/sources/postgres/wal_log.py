"""The WAL feed's writer side: decoded transactions of ``orders`` appended to the change log that
every instance follows (``feed.py``), exactly as the triggers would have logged them.

``WalDecoder`` turns pgoutput messages (``pgoutput.py``) into committed transactions: the commit's
log position, its time and its changes in order (a delete and an update carry the old row's
status and customer: the table's REPLICA IDENTITY is FULL). ``append`` writes a batch of them in
one transaction: each commit is numbered by its commit position (``commit_seq``; the ``xid``
column, the log's join key, holds the same number), and its changes' rows are built by the
database from the decoded text (``jsonb_populate_record`` over the ``orders`` row type, so the
JSON is the triggers' ``to_jsonb(NEW)``). A commit already in the log (at or below the highest
number, after a restart that replays what was not confirmed) or before ``wal_from`` (logged by
the triggers before the switch) is skipped: appending is idempotent.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from orders_live.sources.postgres.pgoutput import (
    Commit,
    Delete,
    Insert,
    Relation,
    Truncate,
    Update,
    decode,
    row,
)

log = logging.getLogger(__name__)

POSTGRES_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
Row = dict[str, str | None]


class FeedChanged(Exception):
    """The database's feed is no longer the WAL (another instance went back to triggers)."""


@dataclass(slots=True)
class DecodedChange:
    op: str  # insert, update, delete, truncate
    order_id: int
    new: Row | None
    status_before: str | None
    customer_before: str | None


@dataclass(slots=True)
class DecodedCommit:
    lsn: int  # the commit record's position: the commit's number in the log
    end_lsn: int  # the position after it: confirmed to the slot once appended
    committed_at: datetime.datetime
    changes: list[DecodedChange] = field(default_factory=list)


_CHANGES = (Update, Insert, Delete, Truncate)


class WalDecoder:
    """pgoutput messages in, committed transactions out (``feed`` returns one at each Commit)."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self.changes: list[DecodedChange] | None = None  # the open transaction's, if any

    @property
    def in_transaction(self) -> bool:
        return self.changes is not None

    def feed(self, payload: bytes) -> DecodedCommit | None:
        if payload[:1] == b"B":  # a Begin: none of its fields is needed (the Commit repeats them)
            self.changes = []
            return None
        message = decode(payload)
        if isinstance(message, _CHANGES):  # a tuple of classes: a union type here costs an ABC check each time
            if self.changes is None:
                raise ValueError(f"a {type(message).__name__} outside a transaction")
            self.changes.append(self._change(message))
        elif isinstance(message, Relation):
            self.relations[message.oid] = message
        elif isinstance(message, Commit):
            changes, self.changes = self.changes or [], None
            at = POSTGRES_EPOCH + datetime.timedelta(microseconds=message.commit_time_us)
            return DecodedCommit(message.commit_lsn, message.end_lsn, at, changes)
        return None

    def _change(self, message: Insert | Update | Delete | Truncate) -> DecodedChange:
        if isinstance(message, Truncate):
            return DecodedChange("truncate", 0, None, None, None)
        relation = self.relations.get(message.relation_oid)
        if relation is None:
            raise ValueError(f"a change of relation {message.relation_oid} before its description")
        if isinstance(message, Insert):
            new = row(relation, message.new)
            return DecodedChange("insert", _id(new), new, None, None)
        if isinstance(message, Update):
            old = row(relation, message.old) if message.old is not None else None
            new = {**(old or {}), **row(relation, message.new)}  # an unchanged (TOASTed) value: the old one
            before = old or {}
            return DecodedChange("update", _id(new), new, before.get("status"), before.get("customer_name"))
        old = row(relation, message.old)
        return DecodedChange("delete", _id(old), None, old.get("status"), old.get("customer_name"))


def _id(values: Row) -> int:
    value = values.get("id")
    if value is None:
        raise ValueError("a row of orders without an id")
    return int(value)


# A mark in the log at which every reader must resync (what the log missed is not known).
RESYNC = """
WITH c AS (INSERT INTO orders_live_commits (commit_seq, xid) OVERRIDING SYSTEM VALUE VALUES ($1, $1::text::xid8))
INSERT INTO orders_live_changes (xid, op, order_id) VALUES ($1::text::xid8, 'truncate', 0)
"""
# One statement, one round trip: the commits not in the log yet (above its highest number, from
# the switch's WAL position on, and only while the database's feed is the WAL, read under a share
# lock that a switch of feed waits for), their changes in order, and a wake-up for the readers.
_APPEND = """
WITH state AS (
    SELECT feed, COALESCE((wal_from - '0/0'::pg_lsn)::bigint, 0) AS wal_from FROM orders_live_log FOR SHARE
),
fresh AS (
    INSERT INTO orders_live_commits (commit_seq, xid, committed_at) OVERRIDING SYSTEM VALUE
    SELECT t.lsn, t.lsn::text::xid8, t.at
    FROM unnest($1::bigint[], $2::timestamptz[]) AS t(lsn, at), state
    WHERE state.feed = 'wal' AND t.lsn >= state.wal_from
      AND t.lsn > (SELECT COALESCE(max(commit_seq), 0) FROM orders_live_commits)
    ON CONFLICT (commit_seq) DO NOTHING
    RETURNING commit_seq
),
logged AS (
    INSERT INTO orders_live_changes (xid, op, order_id, row_after, status_before, customer_before)
    SELECT c.lsn::text::xid8, c.op, c.order_id,
           CASE WHEN c.new IS NULL THEN NULL ELSE to_jsonb(jsonb_populate_record(NULL::orders, c.new::jsonb)) END,
           c.status_before, c.customer_before
    FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[])
         WITH ORDINALITY AS c(lsn, op, order_id, new, status_before, customer_before, n)
    WHERE c.lsn IN (SELECT commit_seq FROM fresh)
    ORDER BY c.n
    RETURNING 1
)
SELECT (SELECT feed FROM state) AS feed, (SELECT count(*) FROM fresh) AS commits,
       (SELECT count(*) FROM logged) AS changes, pg_notify('orders_live', '') AS woken
"""


async def append(db: Any, commits: list[DecodedCommit]) -> int:
    """Appends the commits not in the log yet and wakes the readers, in one statement; the number
    appended. FeedChanged when the database's feed is no longer the WAL."""
    commits = [c for c in commits if c.changes]
    if not commits:
        return 0
    changes = [(c.lsn, change) for c in commits for change in c.changes]
    arguments = (
        [c.lsn for c in commits],
        [c.committed_at for c in commits],
        [lsn for lsn, _ in changes],
        [change.op for _, change in changes],
        [change.order_id for _, change in changes],
        [None if change.new is None else json.dumps(change.new) for _, change in changes],
        [change.status_before for _, change in changes],
        [change.customer_before for _, change in changes],
    )
    try:
        row = await db.fetchrow(_APPEND, *arguments)
    except asyncpg.InternalServerError as exc:
        # The statement, prepared and cached by the driver, names the orders row type: a dropped
        # and recreated table leaves it pointing at a type that is gone. Forget and prepare again.
        if "cache lookup failed" not in str(exc):
            raise
        await db.reload_schema_state()
        row = await db.fetchrow(_APPEND, *arguments)
    if row["feed"] != "wal":
        raise FeedChanged(f"the database's change feed is now {row['feed']}")
    return int(row["commits"])
