"""The agent's action log in memory: the fast tier's, with the stores' rules (a seq per
record, at most one ``action`` per trigger, order and version)."""

from __future__ import annotations

import copy

from orders_live.domain.agent_action import EVERY_ACTION, ActionFilter, AgentActionJson, NewAgentAction
from orders_live.domain.order import iso_millis, utc_now
from orders_live.domain.source import AlreadyRecorded


class MemoryActionLog:
    def __init__(self) -> None:
        self._records: list[AgentActionJson] = []
        self._actions: dict[tuple[str, int, int], AgentActionJson] = {}

    async def append(self, new: NewAgentAction, customer_name: str | None = None) -> AgentActionJson:
        key = new.unique_key
        if key is not None and key in self._actions:
            raise AlreadyRecorded(copy.deepcopy(self._actions[key]))
        record: AgentActionJson = {
            "seq": len(self._records) + 1,
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
        # seq n is self._records[n - 1]
        later = (r for r in self._records[max(seq, 0) :] if filters.matches(r))
        found: list[AgentActionJson] = []
        for record in later:
            if len(found) >= limit:
                break
            found.append(record)
        return copy.deepcopy(found)
