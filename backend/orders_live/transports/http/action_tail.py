"""The live end of the agent's action log, for its event streams: one tail per instance.

While at least one stream is open, the tail reads ``after(last seq)`` from the log: at once
when this instance appended (``appended``), and otherwise every ``poll_interval`` seconds, so
that records appended through another instance arrive within about that long. Each stream
has a bounded queue; a stream that falls more than ``capacity`` records behind is ended (its
EventSource reconnects with Last-Event-ID and reads the rest from the log).

The tail's ``run`` is a long-running job the service runs under its one Supervisor (``TASK``:
named, restarted after a death, counted, shown on ``/readyz``). A stream joins under the
tail's lock: when no stream was open, the tail first takes the log's newest seq, so the
stream's own backlog, read after joining, reaches at least as far as the tail's first read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from orders_live.domain.agent_action import EVERY_ACTION, ActionFilter, AgentActionJson
from orders_live.domain.source import ActionLog
from orders_live.runtime.backoff import Backoff

log = logging.getLogger(__name__)

TASK = "agent_actions.tail"
PAGE = 500


class ActionStream:
    """One event stream's queue of live records, filtered and bounded."""

    def __init__(self, filters: ActionFilter, capacity: int) -> None:
        self.filters, self.capacity = filters, capacity
        self.pending: collections.deque[AgentActionJson] = collections.deque()
        self.overflowed = False
        self.ready = asyncio.Event()

    def offer(self, record: AgentActionJson) -> None:
        if self.overflowed or not self.filters.matches(record):
            return
        if len(self.pending) >= self.capacity:
            self.overflowed = True  # the stream ends; its client reads the rest from the log
            self.pending.clear()
        else:
            self.pending.append(record)
        self.ready.set()

    def take(self) -> list[AgentActionJson]:
        records = list(self.pending)
        self.pending.clear()
        self.ready.clear()
        return records


class ActionTail:
    def __init__(self, actions: ActionLog, poll_interval: float = 1.0, capacity: int = 1_000) -> None:
        self.actions = actions
        self.poll_interval, self.capacity = poll_interval, capacity
        self.streams: set[ActionStream] = set()
        self.last_seq = 0  # the highest seq handed to the streams (valid while any is open)
        self._lock = asyncio.Lock()  # one reader of the log at a time: joins and tail reads
        self._wake = asyncio.Event()  # a local append, or the first stream
        self._backoff = Backoff("reading the agent action log", log)

    def appended(self) -> None:
        """A record was appended through this instance: read it now."""
        self._wake.set()

    async def join(self, filters: ActionFilter) -> ActionStream:
        """A stream that gets every matching record appended from now on (and perhaps a few
        from just before: the caller skips those its backlog already holds). Raises
        DatabaseUnavailable."""
        stream = ActionStream(filters, self.capacity)
        async with self._lock:
            if not self.streams:  # idle: last_seq is stale, or was never known
                newest = await self.actions.recent(1, EVERY_ACTION)
                self.last_seq = newest[-1]["seq"] if newest else 0
            self.streams.add(stream)
        self._wake.set()
        return stream

    def leave(self, stream: ActionStream) -> None:
        self.streams.discard(stream)

    async def run(self) -> None:
        """Reads the log for the open streams until cancelled (the service supervises it)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval if self.streams else None):
                    await self._wake.wait()
            self._wake.clear()
            if not self.streams:
                continue
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # DatabaseUnavailable: streams wait, the tail retries
                await self._backoff.wait(exc)
            else:
                self._backoff.reset()

    async def _read(self) -> None:
        async with self._lock:
            while self.streams:
                records = await self.actions.after(self.last_seq, PAGE, EVERY_ACTION)
                for record in records:
                    for stream in list(self.streams):
                        stream.offer(record)
                if records:
                    self.last_seq = records[-1]["seq"]
                if len(records) < PAGE:
                    return
