"""The change log, read in commit order; positions; the proof of continuity.

A position is ``pg:<commit>`` (after every change of that commit) or ``pg:<commit>.<seq>``
(after that change of it). Commit numbers become visible in the order they are taken (see
``schema.sql``), so reading "after (commit, seq)" never skips a change whose transaction
committed late: a reader that sees commit N already sees every commit before it. Each read
takes the log's retention horizon and the rows in one snapshot, so a position retention has
passed is refused (HistoryLost), never skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator
from typing import Any

from orders_live.domain.change import CaughtUp, Change, HistoryLost, StreamInvalidated
from orders_live.domain.source import DatabaseUnavailable, PositionAhead, PositionKey, TooManyChanges
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.sources.postgres.connection import PostgresConnection
from orders_live.sources.postgres.documents import change_from_row, position_of
from orders_live.sources.postgres.slot import unconfirmed_now

log = logging.getLogger(__name__)

_POSITION = re.compile(r"pg:(\d{1,18})(?:\.(\d{1,18}))?")
WHOLE_COMMIT = 2**63 - 1  # the seq of "after every change of the commit"
BATCH = 1_000
MARK_POLL = 0.05  # seconds between looks at the WAL reader's progress while a mark waits for it
CAUGHT_UP_WITHIN = 15.0  # seconds "now" waits for the WAL reader to have appended what committed before it
_STATE = "SELECT horizon, feed, to_regclass('orders')::oid AS orders_oid FROM orders_live_log"
_CHANGES = """
SELECT c.commit_seq, c.committed_at, l.seq, l.op, l.order_id, l.row_after, l.status_before, l.customer_before
FROM orders_live_commits c JOIN orders_live_changes l ON l.xid = c.xid
WHERE c.commit_seq >= $1 AND (c.commit_seq, l.seq) > ($1, $2)
ORDER BY c.commit_seq, l.seq
LIMIT $3
"""
# The log's state and the changes after ($1, $2), in one statement: one snapshot for both (a
# position retention has passed is refused, never skipped), and the state's row even with no
# change (the LEFT JOIN).
_READ = f"""
SELECT s.horizon, s.feed, s.orders_oid, c.*
FROM ({_STATE}) AS s
LEFT JOIN LATERAL ({_CHANGES}) AS c ON true
ORDER BY c.commit_seq, c.seq
"""
_BOUNDS = "SELECT horizon, (SELECT COALESCE(max(commit_seq), 0) FROM orders_live_commits) AS head FROM orders_live_log"
# The changes after ($1, $2) up to and including ($3, $4), in commit order.
_RANGE = """
FROM orders_live_commits c JOIN orders_live_changes l ON l.xid = c.xid
WHERE c.commit_seq >= $1 AND c.commit_seq <= $3
  AND (c.commit_seq, l.seq) > ($1, $2) AND (c.commit_seq, l.seq) <= ($3, $4)
"""
_COUNT = f"SELECT count(*) FROM (SELECT 1 {_RANGE} LIMIT $5) AS range"


def _between(kind: str, scoped: bool) -> str:
    """The range's changes that may concern a filter (its order; its status or customer before
    or after; or a before the log did not record), and every truncate: a fixed text per form,
    the values are parameters."""
    conditions, n = [], 4
    if kind == "id":
        n += 1
        conditions.append(f"l.order_id = ${n}")
    if kind == "status":
        n += 1
        conditions.append(
            f"(l.row_after->>'status' = ${n} OR l.status_before = ${n}"
            " OR (l.op <> 'insert' AND l.status_before IS NULL))"
        )
    if scoped:
        n += 1
        conditions.append(
            f"(l.row_after->>'customer_name' = ${n} OR l.customer_before = ${n}"
            " OR (l.op <> 'insert' AND l.customer_before IS NULL))"
        )
    wanted = f" AND (l.op = 'truncate' OR ({' AND '.join(conditions)}))" if conditions else ""
    columns = "c.commit_seq, c.committed_at, l.seq, l.op, l.order_id, l.row_after, l.status_before, l.customer_before"
    return f"SELECT {columns} {_RANGE}{wanted} ORDER BY c.commit_seq, l.seq"


_BETWEEN = {(k, s): _between(k, s) for k in ("all", "status", "id") for s in (False, True)}


def parse_position(position: str) -> tuple[int, int] | None:
    found = _POSITION.fullmatch(position)
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2)) if found.group(2) else WHOLE_COMMIT


def _gone(commit: int, seq: int, horizon: int) -> bool:
    """Retention has removed commits up to ``horizon``: is any change after (commit, seq) gone?"""
    return horizon > commit or (horizon == commit and seq != WHOLE_COMMIT)


class PostgresChangeFeed:
    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection

    def position_key(self, position: str) -> PositionKey | None:
        return parse_position(position)  # (commit, seq): "after the whole commit" is seq 2**63 - 1

    async def watch(self, resume_after: str | None) -> AsyncGenerator[Change | CaughtUp, None]:
        commit, seq, table = await self._start(resume_after)
        options = self.connection.options
        marks = 0
        feed: str | None = self.connection.feed  # the database's, as of the last read (another may switch it)
        target: int | None = None  # with the WAL feed: the WAL position a mark must cover
        while True:
            news = self.connection.news()  # taken before reading: a NOTIFY during the read still wakes us
            caught = True
            # The log trails the WAL: with the WAL feed, a mark only once the reader appended what
            # was before it (its progress is taken before the rows are read).
            rows, feed, progress = await self._read(commit, seq, table, with_progress=feed == "wal")
            if progress is not None:
                now, confirmed = progress
                target = now if target is None else target
                caught = confirmed is not None and confirmed >= target
            for row in rows:
                commit, seq = row["commit_seq"], row["seq"]
                if row["op"] == "truncate":
                    raise StreamInvalidated("the orders table was truncated")
                try:
                    change = change_from_row(row)
                except (KeyError, ValueError, TypeError) as exc:
                    log.error("skipping change %s: not an order (%s)", position_of(commit, seq), exc)
                    continue
                yield change
            if len(rows) < BATCH:
                if not caught and feed == "wal":
                    await self.connection.wait_for_news(news, MARK_POLL)
                    continue
                target = None
                seq = WHOLE_COMMIT  # everything visible is read: the last commit is whole
                yield CaughtUp(position_of(commit))
                marks += 1
                if marks > 1:  # the first mark is followed by a read at once: a reader that seeds
                    await self.connection.wait_for_news(news, options.poll_interval)  # needs a mark after it

    async def check_position(self, position: str) -> None:
        async with self.connection.answering() as db:
            bounds = await db.fetchrow(_BOUNDS)
        self._within(position, int(bounds["horizon"]), int(bounds["head"]))

    @staticmethod
    def _within(position: str, horizon: int, head: int) -> tuple[int, int]:
        parsed = parse_position(position)
        if parsed is None:
            raise HistoryLost(f"not a position of this database: {position!r}")
        if parsed[0] > head:
            raise PositionAhead(f"position {position!r} is ahead of this database's log")
        if _gone(parsed[0], parsed[1], horizon):
            raise HistoryLost(f"the change log no longer holds what follows {position!r}")
        return parsed

    async def changes_between(self, after: str, upto: str, wanted: SubscriptionFilter, budget: int) -> list[Change]:
        values: list[object] = []
        if wanted.kind == "id":
            values.append(wanted.id)
        if wanted.kind == "status":
            values.append(wanted.status)
        if wanted.customer is not None:
            values.append(wanted.customer)
        async with self.connection.answering() as db, db.transaction(isolation="repeatable_read", readonly=True):
            bounds = await db.fetchrow(_BOUNDS)
            horizon, head = int(bounds["horizon"]), int(bounds["head"])
            start, end = self._within(after, horizon, head), self._within(upto, horizon, head)
            if await db.fetchval(_COUNT, *start, *end, budget + 1) > budget:
                raise TooManyChanges(f"more than {budget} changes between {after} and {upto}")
            rows = await db.fetch(_BETWEEN[wanted.kind, wanted.customer is not None], *start, *end, *values)
        changes = []
        for row in rows:
            if row["op"] == "truncate":
                raise StreamInvalidated("the orders table was truncated")
            try:
                changes.append(change_from_row(row))
            except (KeyError, ValueError, TypeError) as exc:
                log.error("skipping change %s: not an order (%s)", position_of(row["commit_seq"], row["seq"]), exc)
        return changes

    async def _start(self, resume_after: str | None) -> tuple[int, int, int]:
        """Where to read from, and the orders table's identity (a change of it ends the stream)."""
        async with self.connection.answering() as db:
            state = await db.fetchrow(_STATE)
            latest = await db.fetchval("SELECT COALESCE(max(commit_seq), 0) FROM orders_live_commits")
        if state is None or state["orders_oid"] is None:
            raise DatabaseUnavailable("the orders table does not exist")
        if resume_after is None:
            if self.connection.feed == "wal":  # "now" is after every commit made before it
                latest = await self._appended_up_to_now()
            return int(latest), WHOLE_COMMIT, int(state["orders_oid"])
        parsed = parse_position(resume_after)
        if parsed is None:
            raise HistoryLost(f"not a position of this database: {resume_after!r}")
        if parsed[0] > latest:
            raise HistoryLost(f"position {resume_after!r} is ahead of this database's log")
        if _gone(parsed[0], parsed[1], state["horizon"]):
            raise HistoryLost(f"the change log no longer holds what follows {resume_after!r}")
        return parsed[0], parsed[1], int(state["orders_oid"])

    async def _appended_up_to_now(self) -> int:
        """With the WAL feed the log trails the table by the reader's delay (or by any time when no
        instance reads the slot): waits until the reader has confirmed the WAL position of now, so
        that "now" holds every commit made before it; the log's latest commit then."""
        loop = asyncio.get_running_loop()
        deadline, target = loop.time() + CAUGHT_UP_WITHIN, None
        while True:
            news = self.connection.news()
            async with self.connection.answering() as db:
                now, confirmed = await unconfirmed_now(db, self.connection.slot)
                target = now if target is None else target
                if confirmed is not None and confirmed >= target:
                    return int(await db.fetchval("SELECT COALESCE(max(commit_seq), 0) FROM orders_live_commits"))
            if loop.time() > deadline:
                raise DatabaseUnavailable(
                    f"the WAL reader has not reached the log's present within {CAUGHT_UP_WITHIN:g} s"
                )
            await self.connection.wait_for_news(news, MARK_POLL)

    async def _read(
        self, commit: int, seq: int, table: int, with_progress: bool
    ) -> tuple[list[Any], str, tuple[int, int | None] | None]:
        """The changes after (commit, seq) and the database's feed, from one statement (one
        snapshot, one round trip); with ``with_progress``, first the WAL position now and what
        the slot's reader has confirmed, taken before that snapshot."""
        async with self.connection.answering() as db:
            progress = await unconfirmed_now(db, self.connection.slot) if with_progress else None
            rows: list[Any] = await db.fetch(_READ, commit, seq, BATCH)
        state = rows[0] if rows else None
        if state is None or state["orders_oid"] != table:
            raise StreamInvalidated("the orders table was dropped, renamed or replaced")
        if _gone(commit, seq, state["horizon"]):
            raise HistoryLost(f"retention passed {position_of(commit, seq)} while it was being read")
        if state["commit_seq"] is None:  # the state's row alone: no change after (commit, seq)
            rows = []
        return rows, str(state["feed"]), progress
