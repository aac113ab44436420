"""Views that agree with a position: what a subscriber (or a poll, or a list) starts from.

``open`` may await (checking the position, waiting for it, reading older changes from the
change stream). A replay ends with one synchronous step that takes the replayed changes,
reads the position and joins the room, so every change after that position reaches the new
subscription and none before it does. A snapshot joins the room first, with its changes
held, and is read from the database a page at a time (``snapshot``); it goes live at the
position its last page is exact at. Resyncs are snapshots too, each in a task of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from orders_live.domain.change import Change, HistoryLost, StreamInvalidated
from orders_live.domain.order import OrderJson
from orders_live.domain.page import Counts, Cursor
from orders_live.domain.source import ChangeFeed, PositionAhead, TooManyChanges
from orders_live.domain.subscription import ScopeUnknown, SubscriptionFilter
from orders_live.hub.catch_up import CatchUpBusy, CatchUpSlots, PositionRefused, read_changes_since
from orders_live.hub.fanout import Batch, Delivery, Rooms, Sink, SnapshotEnd, Subscription
from orders_live.hub.history import ChangeHistory
from orders_live.hub.index import OrderIndex
from orders_live.hub.position import FeedPosition
from orders_live.hub.snapshot import SnapshotReader
from orders_live.hub.stats import HubStats
from orders_live.runtime.backoff import Backoff

log = logging.getLogger(__name__)

POSITION_WAIT = 2.0  # how long to wait for a position this instance has not reached yet
CATCH_UP_STREAMS = 4  # reads of the database's log at once to catch clients up from old positions
ANONYMOUS = "address:?"  # the client of a read whose transport did not say


@dataclass(frozen=True, slots=True)
class View:
    """What a subscriber starts from, as of ``position``: the changes it missed since its
    position (``replayed``), or a snapshot its sink has already been sent in pages
    (``replayed`` None; ``sent`` orders; ``resync_reason`` when it had asked to catch up)."""

    subscription: Subscription | None  # None for a one-off read (polling)
    position: str
    replayed: list[Change] | None
    counts: Counts
    sent: int = 0
    resync_reason: str | None = None


class _NoSink:
    """The sink of a one-off read: it is only ever held."""

    def deliver(self, delivery: Delivery) -> None:
        return None

    def deliver_batch(self, batch: Batch) -> None:
        return None

    def begin_resync(self) -> None:
        return None

    def page(self, orders: list[OrderJson], removed: list[int], first: bool) -> None:
        return None

    async def drained(self) -> None:
        return None

    def end_resync(self, end: SnapshotEnd) -> None:
        return None


class Views:
    def __init__(
        self,
        changes: ChangeFeed,
        feed: FeedPosition,
        index: OrderIndex,
        history: ChangeHistory,
        rooms: Rooms,
        stats: HubStats,
        snapshots: SnapshotReader,
        settle: Callable[[], None],
        catch_up_rows: int = 10_000,
        catch_up_timeout: float = 5.0,
    ) -> None:
        self.settle = settle  # fans out what is applied: the replay, the position and the rooms agree
        self.changes, self.feed, self.index, self.history = changes, feed, index, history
        self.rooms, self.stats, self.snapshots = rooms, stats, snapshots
        self.catch_up_rows, self.catch_up_timeout = catch_up_rows, catch_up_timeout
        self.catch_up_slots = CatchUpSlots(CATCH_UP_STREAMS, catch_up_timeout)
        self._resyncs: dict[Subscription, asyncio.Task[None]] = {}

    async def open(
        self,
        wanted: SubscriptionFilter,
        sink: Sink | None,
        since: str | None,
        limit: int | None = None,
        client: str = ANONYMOUS,
    ) -> View:
        """Join ``wanted``'s room and return where the subscriber starts from: the changes
        after ``since``, or a snapshot (sent through ``sink``, ending live) when there is no
        ``since`` or it cannot be honoured. Without a sink (polling) nothing is joined and a
        snapshot is not sent: the view only says why (``resync_reason``). Raises
        PositionRefused for a position past the log's head, CatchUpBusy when ``client`` got
        no catch-up slot in time."""
        older, last, reason = await self._read_older(wanted, since, client)
        self.settle()
        position = self.feed.current()
        if last is not None:
            if self.history.covers(last):
                try:
                    replayed = older + self.history.after(last, wanted)
                except ScopeUnknown:
                    replayed, reason = None, "scope_unknown"
                if replayed is not None:
                    subscription = None
                    if sink is not None:
                        subscription = Subscription(wanted, sink, limit)
                        self.rooms.join(subscription)
                    return View(subscription, position, replayed, self.index.counts(wanted))
            else:
                reason = "history_gone"  # memory moved on while the stream was read
        if reason is not None:
            self.stats.resynced(reason)
        if sink is None:
            return View(None, position, None, self.index.counts(wanted), 0, reason or "no_position")
        subscription = Subscription(wanted, sink, limit, held={})
        self.rooms.join(subscription)
        try:
            end = await self.snapshots.send(subscription, reason)
        except BaseException:
            self.rooms.leave(subscription)
            raise
        return View(subscription, end.position, None, end.counts, end.sent, reason)

    async def page(
        self, wanted: SubscriptionFilter, before: Cursor | None, limit: int
    ) -> tuple[list[OrderJson], str, Counts]:
        """One newest-first page of orders, each exact at the position returned."""
        self.feed.current()
        self.settle()  # the probe holds every change applied from here on
        probe = Subscription(wanted, _NoSink(), held={})
        self.rooms.join(probe)
        try:
            orders = await self.snapshots.page(probe, before, limit)
            return orders, self.feed.current(), self.index.counts(wanted)
        finally:
            self.rooms.leave(probe)

    def close(self, subscription: Subscription) -> None:
        self.rooms.leave(subscription)
        task = self._resyncs.pop(subscription, None)
        if task is not None:
            task.cancel()

    def resync(self, subscription: Subscription, reason: str) -> None:
        """Send one subscription a fresh snapshot, in pages, in a task of its own (one at a
        time: a resync asked for while one runs is covered by it)."""
        if subscription in self._resyncs:
            return
        self.stats.resynced(reason)
        task = asyncio.create_task(self._resync(subscription, reason), name=f"hub.resync.{subscription.filter.room}")
        self._resyncs[subscription] = task
        task.add_done_callback(lambda done: self._resync_done(subscription, done))

    def resync_all(self, reason: str) -> None:
        for subscription in self.rooms:
            self.resync(subscription, reason)

    async def stop(self) -> None:
        tasks = list(self._resyncs.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _resync(self, subscription: Subscription, reason: str) -> None:
        backoff = Backoff(f"resync of {subscription.filter.room}", log)
        subscription.held = subscription.held if subscription.held is not None else {}
        while True:
            try:
                subscription.sink.begin_resync()
                end = await self.snapshots.send(subscription, reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or the feed: the changes stay held, try again
                await backoff.wait(exc)
                continue
            subscription.sink.end_resync(end)
            return

    def _resync_done(self, subscription: Subscription, task: asyncio.Task[None]) -> None:
        if self._resyncs.get(subscription) is task:
            del self._resyncs[subscription]
        if not task.cancelled() and task.exception() is not None:
            log.error("a resync failed", exc_info=task.exception())

    async def check_position(self, since: str | None, client: str = ANONYMOUS) -> None:
        """PositionRefused when ``since`` is past the newest change of the database's log
        (asked only for a position this instance has not reached; one bounded query, in the
        client's catch-up slot). A database that does not answer refuses nothing here."""
        key = self.changes.position_key(since) if since is not None else None
        current = self.changes.position_key(self.feed.position or "")
        if key is None or (current is not None and key <= current):
            return
        try:
            async with self.catch_up_slots.hold(client), asyncio.timeout(self.catch_up_timeout):
                await self.changes.check_position(since or "")
        except PositionAhead:
            raise PositionRefused(since or "") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("could not check position %s against the log (%s: %s)", since, type(exc).__name__, exc)

    async def _read_older(
        self, wanted: SubscriptionFilter, since: str | None, client: str
    ) -> tuple[list[Change], str | None, str | None]:
        """Changes after ``since`` that memory no longer holds, up to where it starts
        (``last``); or why ``since`` cannot be honoured."""
        self.feed.current()
        if since is None:
            return [], None, None
        key = self.changes.position_key(since)
        if key is None:
            return [], None, "unknown_position"
        await self.check_position(since, client)
        if not await self.feed.reach(key, POSITION_WAIT):
            return [], None, "position_ahead"
        if self.history.covers(since):
            return [], since, None
        upto = self.history.base
        if upto is None:
            return [], None, "history_gone"
        try:
            async with self.catch_up_slots.hold(client), asyncio.timeout(self.catch_up_timeout):
                older, read = await read_changes_since(self.changes, since, upto, wanted, self.catch_up_rows)
        except (asyncio.CancelledError, CatchUpBusy):
            raise
        except PositionAhead:
            raise PositionRefused(since) from None
        except (HistoryLost, StreamInvalidated):
            return [], None, "history_gone"
        except ScopeUnknown:
            return [], None, "scope_unknown"
        except TooManyChanges:
            return [], None, "too_far_behind"
        except TimeoutError:
            log.info("catch-up from %s took more than %gs: sending a snapshot", since, self.catch_up_timeout)
            return [], None, "catch_up_failed"
        except Exception as exc:
            log.warning("catch-up from %s failed (%s): sending a snapshot", since, exc)
            return [], None, "catch_up_failed"
        self.stats.catch_up_changes_read.inc(read)
        return older, upto, None
