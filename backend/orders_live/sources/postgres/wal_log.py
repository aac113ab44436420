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

from orders_live.sources.postgres.pgoutput import (
    Begin,
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


class WalDecoder:
    """pgoutput messages in, committed transactions out (``feed`` returns one at each Commit)."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self.changes: list[DecodedChange] | None = None  # the open transaction's, if any

    @property
    def in_transaction(self) -> bool:
        return self.changes is not None

    def feed(self, payload: bytes) -> DecodedCommit | None:
        message = decode(payload)
        if isinstance(message, Begin):
            self.changes = []
        elif isinstance(message, Relation):
            self.relations[message.oid] = message
        elif isinstance(message, Insert | Update | Delete | Truncate):
            if self.changes is None:
                raise ValueError(f"a {type(message).__name__} outside a transaction")
            self.changes.extend(self._changes(message))
        elif isinstance(message, Commit):
            changes, self.changes = self.changes or [], None
            at = POSTGRES_EPOCH + datetime.timedelta(microseconds=message.commit_time_us)
            return DecodedCommit(message.commit_lsn, message.end_lsn, at, changes)
        return None

    def _changes(self, message: Insert | Update | Delete | Truncate) -> list[DecodedChange]:
        if isinstance(message, Truncate):
            return [DecodedChange("truncate", 0, None, None, None)]
        relation = self.relations.get(message.relation_oid)
        if relation is None:
            raise ValueError(f"a change of relation {message.relation_oid} before its description")
        if isinstance(message, Insert):
            new = row(relation, message.new)
            return [DecodedChange("insert", _id(new), new, None, None)]
        if isinstance(message, Update):
            old = row(relation, message.old) if message.old is not None else None
            new = {**(old or {}), **row(relation, message.new)}  # an unchanged (TOASTed) value: the old one
            before = old or {}
            return [DecodedChange("update", _id(new), new, before.get("status"), before.get("customer_name"))]
        old = row(relation, message.old)
        return [DecodedChange("delete", _id(old), None, old.get("status"), old.get("customer_name"))]


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
_STATE = "SELECT feed, wal_from FROM orders_live_log FOR SHARE"  # a pg_lsn reads as an int
_HIGHEST = "SELECT COALESCE(max(commit_seq), 0) FROM orders_live_commits"
_COMMITS = """
INSERT INTO orders_live_commits (commit_seq, xid, committed_at) OVERRIDING SYSTEM VALUE
SELECT lsn, lsn::text::xid8, at FROM unnest($1::bigint[], $2::timestamptz[]) AS t(lsn, at)
"""
_CHANGES = """
INSERT INTO orders_live_changes (xid, op, order_id, row_after, status_before, customer_before)
SELECT c.lsn::text::xid8, c.op, c.order_id,
       CASE WHEN c.new IS NULL THEN NULL ELSE to_jsonb(jsonb_populate_record(NULL::orders, c.new::jsonb)) END,
       c.status_before, c.customer_before
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
     WITH ORDINALITY AS c(lsn, op, order_id, new, status_before, customer_before, n)
ORDER BY c.n
"""


async def append(db: Any, commits: list[DecodedCommit]) -> int:
    """Appends the commits not in the log yet, in one transaction, and wakes the readers; the
    number appended. FeedChanged when the database's feed is no longer the WAL."""
    async with db.transaction():
        state = await db.fetchrow(_STATE)
        if state["feed"] != "wal":
            raise FeedChanged(f"the database's change feed is now {state['feed']}")
        floor = int(state["wal_from"] or 0)
        highest = int(await db.fetchval(_HIGHEST))
        fresh = [c for c in commits if c.lsn >= floor and c.lsn > highest and c.changes]
        if not fresh:
            return 0
        await db.execute(_COMMITS, [c.lsn for c in fresh], [c.committed_at for c in fresh])
        changes = [(c.lsn, change) for c in fresh for change in c.changes]
        await db.execute(
            _CHANGES,
            [lsn for lsn, _ in changes],
            [change.op for _, change in changes],
            [change.order_id for _, change in changes],
            [None if change.new is None else json.dumps(change.new) for _, change in changes],
            [change.status_before for _, change in changes],
            [change.customer_before for _, change in changes],
        )
        await db.execute("SELECT pg_notify('orders_live', '')")
    return len(fresh)
