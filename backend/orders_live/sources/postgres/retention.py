"""Retention of the change log, by age and by rows, in small batches that never block writers.

A pass finds the newest commit that is both older than ``log_keep_seconds`` and behind the
newest ``log_keep_rows`` changes, raises the log's horizon to it and deletes what is at or
below it, ``retention_batch`` commits per transaction. Deletes take no lock a writer waits
for; a reader whose position the horizon passes gets HistoryLost (a resync), never a gap.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from orders_live.domain.source import DatabaseUnavailable
from orders_live.sources.postgres.connection import PostgresConnection

log = logging.getLogger(__name__)

_TARGET = """
SELECT LEAST(
    (SELECT COALESCE(max(commit_seq), 0) FROM orders_live_commits
     WHERE committed_at < clock_timestamp() - make_interval(secs => $1)),
    (SELECT COALESCE(max(c.commit_seq), 0) - 1 FROM orders_live_changes l JOIN orders_live_commits c ON c.xid = l.xid
     WHERE l.seq <= (SELECT COALESCE(max(seq), 0) FROM orders_live_changes) - $2)
) AS target, (SELECT horizon FROM orders_live_log) AS horizon
"""


_NTH_AFTER = (
    "SELECT commit_seq FROM orders_live_commits WHERE commit_seq > $1 ORDER BY commit_seq OFFSET $2 - 1 LIMIT 1"
)


class LogRetention:
    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection

    async def run(self) -> None:
        """Passes every ``retention_interval`` seconds until cancelled (the job ``postgres.retention``):
        a pass the database does not answer is logged once and tried again at the next interval."""
        interval = self.connection.options.retention_interval
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                await self.pass_once()
                failing = False
            except (DatabaseUnavailable, asyncpg.PostgresError) as exc:  # else a bug: the task dies, is counted
                if not failing:
                    log.warning("change log retention failed (%s: %s); trying again later", type(exc).__name__, exc)
                failing = True

    async def pass_once(self) -> int:
        """One pass; the number of commits removed."""
        options = self.connection.options
        removed = 0
        async with self.connection.answering() as db:
            bounds = await db.fetchrow(_TARGET, options.log_keep_seconds, options.log_keep_rows)
            target, horizon = int(bounds["target"]), int(bounds["horizon"])
            while horizon < target:
                # Commit numbers are not dense (the WAL feed numbers a commit by its log position):
                # a batch ends at the retention_batch-th commit after the horizon, not at a sum.
                nth = await db.fetchval(_NTH_AFTER, horizon, options.retention_batch)
                upto = target if nth is None else min(target, int(nth))
                async with db.transaction():
                    await db.execute("UPDATE orders_live_log SET horizon = $1 WHERE horizon < $1", upto)
                    await db.execute(
                        "DELETE FROM orders_live_changes WHERE xid IN"
                        " (SELECT xid FROM orders_live_commits WHERE commit_seq > $1 AND commit_seq <= $2)",
                        horizon,
                        upto,
                    )
                    removed += int(
                        (
                            await db.execute(
                                "DELETE FROM orders_live_commits WHERE commit_seq > $1 AND commit_seq <= $2",
                                horizon,
                                upto,
                            )
                        ).split()[-1]
                    )
                horizon = upto
        return removed
