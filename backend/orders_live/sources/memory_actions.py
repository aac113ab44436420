"""The agent's action log in memory: the fast tier's, with the stores' rules (a seq per
record, at most one ``action`` per trigger, order and version, retention by count and age)."""

from __future__ import annotations

import bisect
import copy
from datetime import timedelta

from orders_live.domain.agent_action import EVERY_ACTION, ActionFilter, AgentActionJson, NewAgentAction
from orders_live.domain.order import iso_millis, utc_now
from orders_live.domain.page import parse_instant
from orders_live.domain.source import AlreadyRecorded


class MemoryActionLog:
    def __init__(self) -> None:
        self._records: list[AgentActionJson] = []  # by seq; trimmed from the front
        self._actions: dict[tuple[str, int, int], AgentActionJson] = {}
        self._last_seq = 0

    async def append(self, new: NewAgentAction, customer_name: str | None = None) -> AgentActionJson:
        key = new.unique_key
        if key is not None and key in self._actions:
            raise AlreadyRecorded(copy.deepcopy(self._actions[key]))
        self._last_seq += 1
        record: AgentActionJson = {
            "seq": self._last_seq,
            **copy.deepcopy(new.model_dump()),  # type: ignore[typeddict-item]
            "customer_name": customer_name,
            "recorded_at": iso_millis(utc_now()),
        }
        self._records.append(record)
        if key is not None:
            self._actions[key] = record
        return copy.deepcopy(record)

    async def recent(self, limit: int, filters: ActionFilter = EVERY_ACTION) -> list[AgentActionJson]:
        found: list[AgentActionJson] = []
        for record in reversed(self._records):
            if len(found) >= limit:
                break
            if filters.matches(record):
                found.append(record)
        return copy.deepcopy(found[::-1])

    async def after(self, seq: int, limit: int, filters: ActionFilter = EVERY_ACTION) -> list[AgentActionJson]:
        start = bisect.bisect_right(self._records, seq, key=lambda r: r["seq"])
        later = (r for r in self._records[start:] if filters.matches(r))
        found: list[AgentActionJson] = []
        for record in later:
            if len(found) >= limit:
                break
            found.append(record)
        return copy.deepcopy(found)

    async def trim(self, keep: int, keep_seconds: float) -> int:
        cutoff = utc_now() - timedelta(seconds=keep_seconds)
        first = max(len(self._records) - keep, 0)
        while first < len(self._records) and parse_instant(self._records[first]["recorded_at"]) <= cutoff:
            first += 1  # appended in time order: the old ones are a prefix
        trimmed, self._records = self._records[:first], self._records[first:]
        for record in trimmed:
            if record["kind"] == "action" and record["order_id"] is not None and record["order_version"] is not None:
                self._actions.pop((record["trigger"], record["order_id"], record["order_version"]), None)
        return len(trimmed)
