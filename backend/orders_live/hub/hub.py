"""The fan-out hub: follows the change source, keeps the mirror and history, feeds rooms.

It knows nothing about transports. A transport gives it one ``Sink`` per
subscription; the hub calls ``deliver`` (non-blocking) for every change in the
subscription's room, and ``resync`` when it cannot prove continuity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from orders_live.domain.change import CaughtUp, Change, HistoryLost, StreamInvalidated
from orders_live.domain.order import OrderJson
from orders_live.domain.source import ChangeSource
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.hub.catch_up import TooFarBehind, read_changes_since
from orders_live.hub.history import ChangeHistory
from orders_live.hub.mirror import OrderMirror
from orders_live.hub.stats import HubStats
from orders_live.hub.write_waiters import WriteWaiters
from orders_live.runtime.backoff import Backoff

log = logging.getLogger(__name__)

POSITION_WAIT = 2.0  # how long to wait for a position this instance has not reached yet
CATCH_UP_STREAMS = 4  # change streams opened at once to catch clients up from old positions


@dataclass(slots=True)
class Delivery:
    """One change on its way out; transports cache their encodings of it here,
    so a change is encoded once, however many subscribers receive it."""

    change: Change
    encodings: dict[tuple[str, bool], Any] = field(default_factory=dict)

    def encoded(self, transport: str, conflated: bool, encode: Callable[[dict[str, Any]], Any]) -> Any:
        """``encode(order_change payload)``, computed once per transport and flag."""
        key = (transport, conflated)
        packet = self.encodings.get(key)
        if packet is None:
            payload = self.change.wire()
            if conflated:
                payload["conflated"] = True
            packet = self.encodings[key] = encode(payload)
        return packet


class Sink(Protocol):
    def deliver(self, delivery: Delivery) -> None: ...

    def resync(self, reason: str, orders: list[OrderJson], position: str) -> None: ...


@dataclass(eq=False, slots=True)
class Subscription:
    filter: SubscriptionFilter
    sink: Sink


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


class NotReady(Exception):
    pass


class Hub:
    def __init__(
        self,
        source: ChangeSource,
        instance: str,
        history_size: int = 10_000,
        checkpoint_interval: float = 1.0,
    ) -> None:
        self.source = source
        self.instance = instance
        self.mirror = OrderMirror()
        self.history = ChangeHistory(history_size, source.position_key)
        self.checkpoint_interval = checkpoint_interval
        self.position: str | None = None
        self.rooms: dict[str, set[Subscription]] = {}
        self.changes_in = 0
        self.deliveries = 0
        self._ready = asyncio.Event()
        self._saved: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._writes = WriteWaiters()
        self.stats = HubStats()
        self.stream_up = False  # the change stream answered last time it was read
        self._advanced = asyncio.Event()  # replaced each time it fires
        self._catch_up_slots = asyncio.Semaphore(CATCH_UP_STREAMS)

    # -- life cycle ----------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._follow(), name="hub-follow-changes"),
            asyncio.create_task(self._save_checkpoints(), name="hub-save-checkpoints"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._save_checkpoint()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, within: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            raise NotReady("the change feed is not running yet") from None

    # -- following the source ------------------------------------------------------
    async def _follow(self) -> None:
        backoff = Backoff("change stream", log)
        started = False
        while True:
            try:
                if not started:
                    await self.source.open()
                    self.position = await self.source.load_checkpoint(self.instance)
                    log.info(
                        "following %s from %s",
                        self.source.description,
                        f"saved position {self.position}" if self.position else "now",
                    )
                    started = True
                await self._follow_from(self.position, seed=not self._ready.is_set(), backoff=backoff)
            except asyncio.CancelledError:
                raise
            except (HistoryLost, StreamInvalidated) as exc:
                log.warning("cannot continue from %s (%s): rebuilding every view", self.position, exc)
                self._ready.clear()
                self.position = None
            except Exception as exc:
                self.stream_up = False
                await backoff.wait(exc)

    async def _follow_from(self, resume: str | None, seed: bool, backoff: Backoff) -> None:
        rebuilding = seed and any(self.rooms.values())
        async with contextlib.aclosing(self.source.watch(resume)) as feed:
            async for item in feed:
                backoff.reset()
                self.stream_up = True
                just_seeded = seed
                if seed:
                    # The stream is open, so whatever the seed misses the stream brings;
                    # what the seed already holds is skipped by version.
                    self.mirror.seed(await self.source.load_orders())
                    self._writes.seeded(self.mirror.orders)
                    base = resume or item.position
                    self.history.restart(base)
                    self.position = base
                    seed = False
                if isinstance(item, CaughtUp):
                    self.position = item.position
                    self._signal_advance()
                    # Only a mark read after the seed proves the mirror is exactly at it.
                    if not just_seeded and not self._ready.is_set():
                        self._ready.set()
                        log.info("change feed live at %s (%d orders)", self.position, len(self.mirror.orders))
                        if rebuilding:
                            self._resync_all("history_lost")
                            rebuilding = False
                    continue
                self._apply(item)

    def _apply(self, change: Change) -> None:
        rooms = self.mirror.apply(change)
        self.history.append(change, rooms)
        self.position = change.position
        self._signal_advance()
        self.changes_in += 1
        self._writes.applied(change)
        delivery = Delivery(change)
        started = time.perf_counter()
        for room in rooms:
            subscribers = self.rooms.get(room)
            if not subscribers:
                continue
            for subscription in tuple(subscribers):
                try:
                    subscription.sink.deliver(delivery)
                    self.deliveries += 1
                except Exception:
                    log.exception("a subscriber failed to take change %s", change.position)
        self.stats.fanned_out(time.perf_counter() - started, change.committed_at)

    def _signal_advance(self) -> None:
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def applied(self, order_id: int, version: int | None, within: float) -> bool:
        """Wait until the feed has applied ``order_id`` at ``version`` (None: its delete).

        Lets a writer read its own write: the REST API answers a write only once its
        change is in the mirror, so a subscribe or read that follows it sees it.
        """
        current = self.mirror.orders.get(order_id)
        if version is None and current is None:
            return True
        if version is not None and current is not None and current["version"] >= version:
            return True
        return await self._writes.wait(order_id, version, within)

    def _resync_all(self, reason: str) -> None:
        assert self.position is not None
        for subscribers in self.rooms.values():
            for subscription in tuple(subscribers):
                self.resync(subscription, reason)

    def resync(self, subscription: Subscription, reason: str) -> None:
        """Send one subscription a fresh snapshot as of now."""
        assert self.position is not None
        self.stats.resyncs[reason] += 1
        orders = self.mirror.select(subscription.filter)
        try:
            subscription.sink.resync(reason, orders, self.position)
        except Exception:
            log.exception("a subscriber failed to take a resync")

    # -- checkpoints -----------------------------------------------------------------
    async def _save_checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            try:
                await self._save_checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not save the resume position: %s", exc)

    async def _save_checkpoint(self) -> None:
        position = self.position
        if position is not None and position != self._saved and self._ready.is_set():
            await self.source.save_checkpoint(self.instance, position)
            self._saved = position
            self.stats.checkpoint_saved_at = time.time()

    # -- subscribers ---------------------------------------------------------------------
    async def open_view(self, wanted: SubscriptionFilter, sink: Sink, since: str | None = None) -> View:
        """Join ``wanted``'s room and return where the subscriber starts from: the changes
        after ``since``, or a snapshot when there is no ``since`` or it cannot be honoured.

        Whatever awaits happen first, the replay (or snapshot) is completed and the room
        joined in one synchronous step at the end, so every change after ``position``
        reaches the sink and none before it does.
        """
        older, last, reason = await self._read_older(wanted, since)
        return self._view(wanted, older, last, reason, sink)

    async def changes_since(self, wanted: SubscriptionFilter, since: str) -> View:
        """The same as ``open_view`` without joining: what a polling client gets."""
        older, last, reason = await self._read_older(wanted, since)
        return self._view(wanted, older, last, reason, None)

    async def _read_older(
        self, wanted: SubscriptionFilter, since: str | None
    ) -> tuple[list[Change], str | None, str | None]:
        """Changes after ``since`` that memory no longer holds, up to a position it does
        (``last``); or why ``since`` cannot be honoured."""
        self._check_ready()
        if since is None:
            return [], None, None
        key = self.source.position_key(since)
        if key is None:
            return [], None, "unknown_position"
        if not await self._reach(key, POSITION_WAIT):
            return [], None, "position_ahead"
        if self.history.covers(since):
            return [], since, None
        try:
            async with self._catch_up_slots:
                older, last = await read_changes_since(
                    self.source, since, wanted.room, self.history.covers, self.history.capacity
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
        self._check_ready()
        assert self.position is not None
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
            self.rooms.setdefault(wanted.room, set()).add(subscription)
        if reason is not None:
            self.stats.resyncs[reason] += 1
        return View(subscription, self.position, replayed, orders, reason)

    def _check_ready(self) -> None:
        if not self._ready.is_set() or self.position is None:
            raise NotReady("the change feed is not running yet")

    async def _reach(self, key: tuple[int, str], within: float) -> bool:
        """Wait (a bounded time) until the feed has reached a position another instance
        may already have handed out."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            current = self.source.position_key(self.position or "")
            if current is not None and current >= key:
                return True
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            advanced = self._advanced
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await advanced.wait()

    def close_view(self, subscription: Subscription) -> None:
        subscribers = self.rooms.get(subscription.filter.room)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self.rooms[subscription.filter.room]

    def select(self, wanted: SubscriptionFilter, limit: int | None = None) -> tuple[list[OrderJson], str]:
        if not self._ready.is_set() or self.position is None:
            raise NotReady("the change feed is not running yet")
        return self.mirror.select(wanted, limit), self.position
