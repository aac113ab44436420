"""Saving the hub's position as this instance's resume point, at most every ``interval``."""

from __future__ import annotations

import asyncio
import logging
import time

from orders_live.domain.source import Checkpoints
from orders_live.hub.position import FeedPosition

log = logging.getLogger(__name__)


class CheckpointSaver:
    def __init__(self, checkpoints: Checkpoints, feed: FeedPosition, interval: float) -> None:
        self.checkpoints, self.feed, self.interval = checkpoints, feed, interval
        self.instance = ""
        self.saved: str | None = None
        self.saved_at: float | None = None  # wall time of the last save
        self.closing = False
        self._saving = asyncio.Lock()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            async with self._saving:
                if self.closing:
                    continue
                try:
                    await self.save()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("could not save the resume position: %s", exc)

    async def quiesce(self) -> None:
        """Start no more periodic saves, and let the one under way finish: the stop then
        cancels a task that is only sleeping. (A driver call cancelled halfway can leave its
        connection unclosed: PyMongo's async connection set-up does, PYTHON-5867.)"""
        self.closing = True
        async with self._saving:
            pass

    async def save(self) -> None:
        """Save the position if it moved, and only while the feed is live (a position from
        before a rebuild is not one to resume from)."""
        position = self.feed.position
        if position is not None and position != self.saved and self.feed.ready:
            await self.checkpoints.save_checkpoint(self.instance, position)
            self.saved = position
            self.saved_at = time.time()
