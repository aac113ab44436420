"""Following the feed: the one live reader of the database's changes.

It opens the source (idempotent: a no-op when the service's start already opened it),
resumes from this instance's checkpoint (or from now), seeds the index once the stream is
open, and applies every change in commit order: index, history, position, waiting writers,
then the fan-out (once per read: ``batching``). When continuity cannot be proven it rebuilds
every view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from orders_live.domain.change import CaughtUp, Change, HistoryLost, StreamInvalidated
from orders_live.domain.source import Source
from orders_live.hub.batching import ReadBatcher
from orders_live.hub.fanout import Rooms
from orders_live.hub.history import ChangeHistory
from orders_live.hub.index import OrderIndex
from orders_live.hub.position import FeedPosition
from orders_live.hub.routes import routes_of
from orders_live.hub.stats import HubStats
from orders_live.hub.write_waiters import WriteWaiters
from orders_live.runtime.backoff import Backoff

log = logging.getLogger(__name__)


class Follower:
    def __init__(
        self,
        source: Source,
        feed: FeedPosition,
        index: OrderIndex,
        history: ChangeHistory,
        rooms: Rooms,
        batcher: ReadBatcher,
        writes: WriteWaiters,
        stats: HubStats,
        resync_all: Callable[[str], None],
    ) -> None:
        self.source, self.feed, self.index, self.history = source, feed, index, history
        self.rooms, self.batcher, self.writes, self.stats = rooms, batcher, writes, stats
        self._resync_all = resync_all
        self.instance = ""
        self.backoff = Backoff("change stream", log)
        self._started = False  # opened the source and read the checkpoint (kept across restarts)

    async def run(self) -> None:
        while True:
            try:
                if not self._started:
                    await self.source.connection.open()
                    resume = await self.source.checkpoints.load_checkpoint(self.instance)
                    self.feed.position = resume
                    log.info(
                        "following %s from %s",
                        self.source.description,
                        f"saved position {resume}" if resume else "now",
                    )
                    self._started = True
                await self._follow_from(self.feed.position, seed=not self.feed.ready)
            except asyncio.CancelledError:
                raise
            except (HistoryLost, StreamInvalidated) as exc:
                log.warning("cannot continue from %s (%s): rebuilding every view", self.feed.position, exc)
                self.feed.lose()
            except Exception as exc:
                self.feed.stream_up = False
                await self.backoff.wait(exc)

    async def _follow_from(self, resume: str | None, seed: bool) -> None:
        rebuilding = seed and bool(self.rooms)
        async with contextlib.aclosing(self.source.feed.watch(resume)) as changes:
            async for item in changes:
                self.backoff.reset()
                self.feed.stream_up = True
                just_seeded = seed
                if seed:
                    # The stream is open, so whatever the seed misses the stream brings;
                    # what the seed already holds is skipped by version.
                    started = time.perf_counter()
                    await self.index.seed(self.source.store.index_rows())
                    self.writes.seeded(self.index.version_of)
                    log.info(
                        "read %d orders' status and version in %.1f s", len(self.index), time.perf_counter() - started
                    )
                    base = resume or item.position
                    self.history.restart(base)
                    self.feed.position = base
                    seed = False
                if isinstance(item, CaughtUp):
                    self.feed.advance(item.position)
                    # Only a mark read after the seed proves the index is exactly at it: the
                    # first, read before it, is passed over, and every feed yields a second one
                    # promptly (the marks rule of domain/source.py, held by tests/contract).
                    if not just_seeded and not self.feed.ready:
                        self.feed.go_live()
                        log.info("change feed live at %s (%d orders)", item.position, len(self.index))
                        if rebuilding:
                            self.batcher.flush()
                            self._resync_all("history_lost")
                            rebuilding = False
                    continue
                self.apply(item)

    def apply(self, change: Change) -> None:
        routing = self.index.apply(change)
        self.history.append(change, routing)
        self.feed.advance(change.position)
        self.writes.applied(change)
        self.batcher.push(routes_of(change, routing, self.index, self.rooms))
