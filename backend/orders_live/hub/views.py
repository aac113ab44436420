"""Views that agree with a position: what a subscriber (or a poll, or a list) starts from.

``open`` may await (checking the position, waiting for it, reading older changes from the
change stream); it ends with one synchronous step that takes the replay or the snapshot,
reads the position and joins the room, so every change after that position reaches the new
subscription and none before it does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from orders_live.domain.change import Change, HistoryLost, StreamInvalidated
from orders_live.domain.order import OrderJson
from orders_live.domain.source import ChangeFeed
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.hub.catch_up import TooFarBehind, read_changes_since
from orders_live.hub.fanout import Rooms, Sink, Subscription
from orders_live.hub.history import ChangeHistory
from orders_live.hub.mirror import OrderMirror
from orders_live.hub.position import FeedPosition
from orders_live.hub.stats import HubStats

log = logging.getLogger(__name__)

POSITION_WAIT = 2.0  # how long to wait for a position this instance has not reached yet
CATCH_UP_STREAMS = 4  # change streams opened at once to catch clients up from old positions


@dataclass(frozen=True, slots=True)
class View:
    """What a subscriber starts from: either the changes it missed since its
    position (``replayed``) or a fresh snapshot (``orders``, with ``resync_reason``
    when it had asked to catch up), both as of ``position``."""

    subscription: Subscription | None  # None for a one-off read (polling)
    position: str
    replayed: list[Change] | None
    orders: list[OrderJson] | None
    resync_reason: str | None = None


class Views:
    def __init__(
        self,
        changes: ChangeFeed,
        feed: FeedPosition,
        mirror: OrderMirror,
        history: ChangeHistory,
        rooms: Rooms,
        stats: HubStats,
    ) -> None:
        self.changes, self.feed, self.mirror, self.history = changes, feed, mirror, history
        self.rooms, self.stats = rooms, stats
        self._catch_up_slots = asyncio.Semaphore(CATCH_UP_STREAMS)

    async def open(self, wanted: SubscriptionFilter, sink: Sink | None, since: str | None) -> View:
        """Join ``wanted``'s room (unless ``sink`` is None) and return where the subscriber
        starts from: the changes after ``since``, or a snapshot when there is no ``since`` or
        it cannot be honoured."""
        older, last, reason = await self._read_older(wanted, since)
        return self._view(wanted, older, last, reason, sink)

    def select(self, wanted: SubscriptionFilter, limit: int | None = None) -> tuple[list[OrderJson], str]:
        position = self.feed.current()
        return self.mirror.select(wanted, limit), position

    def resync(self, subscription: Subscription, reason: str) -> None:
        """Send one subscription a fresh snapshot as of now."""
        position = self.feed.current()
        self.stats.resynced(reason)
        orders = self.mirror.select(subscription.filter)
        try:
            subscription.sink.resync(reason, orders, position)
        except Exception:
            log.exception("a subscriber failed to take a resync")

    def resync_all(self, reason: str) -> None:
        for subscription in self.rooms:
            self.resync(subscription, reason)

    async def _read_older(
        self, wanted: SubscriptionFilter, since: str | None
    ) -> tuple[list[Change], str | None, str | None]:
        """Changes after ``since`` that memory no longer holds, up to a position it does
        (``last``); or why ``since`` cannot be honoured."""
        self.feed.current()
        if since is None:
            return [], None, None
        key = self.changes.position_key(since)
        if key is None:
            return [], None, "unknown_position"
        if not await self.feed.reach(key, POSITION_WAIT):
            return [], None, "position_ahead"
        if self.history.covers(since):
            return [], since, None
        try:
            async with self._catch_up_slots:
                older, last = await read_changes_since(
                    self.changes, since, wanted.room, self.history.covers, self.history.capacity
                )
        except asyncio.CancelledError:
            raise
        except (HistoryLost, StreamInvalidated):
            return [], None, "history_gone"
        except TooFarBehind:
            return [], None, "too_far_behind"
        except Exception as exc:
            log.warning("catch-up from %s failed (%s): sending a snapshot", since, exc)
            return [], None, "catch_up_failed"
        return older, last, None

    def _view(
        self, wanted: SubscriptionFilter, older: list[Change], last: str | None, reason: str | None, sink: Sink | None
    ) -> View:
        """Synchronous: the replay or snapshot, the position and the join all agree."""
        position = self.feed.current()
        replayed: list[Change] | None = None
        if last is not None:
            if self.history.covers(last):
                replayed = older + self.history.after(last, wanted.room)
            else:
                reason = "history_gone"  # memory moved on while the stream was read
        orders = None if replayed is not None else self.mirror.select(wanted)
        subscription = None
        if sink is not None:
            subscription = Subscription(wanted, sink)
            self.rooms.join(subscription)
        if reason is not None:
            self.stats.resynced(reason)
        return View(subscription, position, replayed, orders, reason)
