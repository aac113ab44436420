"""Retention of the agent's action log: it keeps the newest ``keep`` records, and none recorded
more than ``keep_seconds`` ago (settings ``agent_actions_keep`` and ``agent_actions_keep_days``).

One pass at start and one every ``interval`` seconds (``ActionLog.trim``, in small batches);
between passes the log can grow by at most the append rate limit times the interval. The task
runs under the service's Supervisor (``agent_actions.retention``); a pass the database does not
answer is logged once and tried again at the next interval. The records it deletes are counted
in ``orders_live_agent_actions_trimmed_total``.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter

from orders_live.domain.source import ActionLog, DatabaseUnavailable

log = logging.getLogger(__name__)

TASK = "agent_actions.retention"


class ActionRetention:
    def __init__(
        self, actions: ActionLog, keep: int, keep_seconds: float, trimmed: Counter, interval: float = 60.0
    ) -> None:
        self.actions, self.keep, self.keep_seconds, self.interval = actions, keep, keep_seconds, interval
        self.trimmed = trimmed  # records deleted
        self.passes = 0  # passes finished since start

    async def run(self) -> None:
        failing = False
        while True:
            try:
                removed = await self.actions.trim(self.keep, self.keep_seconds)
            except DatabaseUnavailable as exc:
                if not failing:
                    log.warning("agent action log retention failed (%s); trying again later", exc)
                failing = True
            else:
                failing = False
                self.trimmed.inc(removed)
                self.passes += 1
                if removed:
                    log.info("agent action log retention deleted %d records", removed)
            await asyncio.sleep(self.interval)
