"""The fan-out hub: follows the change source, keeps the mirror and history, feeds rooms.

It knows nothing about transports. A transport gives it one ``Sink`` per
subscription; the hub calls ``deliver`` (non-blocking) for every change in the
subscription's room, and ``resync`` when it cannot prove continuity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from .backoff import Backoff
from .change import CaughtUp, Change, HistoryLost, StreamInvalidated
from .change_history import ChangeHistory
from .mirror import OrderMirror
from .model import OrderJson
from .source import ChangeSource
from .subscription_filter import SubscriptionFilter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Delivery:
    """One change on its way out; transports cache their encodings of it here,
    so a change is encoded once, however many subscribers receive it."""

    change: Change
    encodings: dict[str, Any] = field(default_factory=dict)


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

    subscription: Subscription
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
        self._waiters_per_order: dict[int, list[tuple[int, asyncio.Future[None]]]] = {}

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
                await backoff.wait(exc)

    async def _follow_from(self, resume: str | None, seed: bool, backoff: Backoff) -> None:
        rebuilding = seed and any(self.rooms.values())
        async for item in self.source.watch(resume):
            backoff.reset()
            just_seeded = seed
            if seed:
                # The stream is open, so whatever the seed misses the stream brings;
                # what the seed already holds is skipped by version.
                self.mirror.seed(await self.source.load_orders())
                base = resume or item.position
                self.history.restart(base)
                self.position = base
                seed = False
            if isinstance(item, CaughtUp):
                self.position = item.position
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
        self.changes_in += 1
        if change.id in self._waiters_per_order:
            self._wake_waiters(change)
        delivery = Delivery(change)
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

    def _wake_waiters(self, change: Change) -> None:
        reached = change.order["version"] if change.order is not None else None
        for version, future in self._waiters_per_order[change.id]:
            if (reached is None or version <= reached) and not future.done():
                future.set_result(None)

    async def applied(self, order_id: int, version: int | None, within: float) -> bool:
        """Wait until the feed has applied ``order_id`` at ``version`` (None: its delete).

        Lets a writer read its own write: the REST API answers a write only once its
        change is in the mirror, so a subscribe or read that follows it sees it.
        """
        current = self.mirror.orders.get(order_id)
        if (current is None and version is None) or (
            current is not None and version is not None and current["version"] >= version
        ):
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters_per_order.setdefault(order_id, [])
        waiters.append((version if version is not None else 2**62, future))
        try:
            await asyncio.wait_for(future, within)
            return True
        except TimeoutError:
            return False
        finally:
            remaining = [(v, f) for v, f in self._waiters_per_order.get(order_id, []) if f is not future]
            if remaining:
                self._waiters_per_order[order_id] = remaining
            else:
                self._waiters_per_order.pop(order_id, None)

    def _resync_all(self, reason: str) -> None:
        assert self.position is not None
        for subscribers in self.rooms.values():
            for subscription in tuple(subscribers):
                self.resync(subscription, reason)

    def resync(self, subscription: Subscription, reason: str) -> None:
        """Send one subscription a fresh snapshot as of now."""
        assert self.position is not None
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

    # -- subscribers (all synchronous: nothing can slip in between) -------------------
    def open_view(self, wanted: SubscriptionFilter, sink: Sink, since: str | None = None) -> View:
        """Join ``wanted``'s room and return where the subscriber starts from.

        The snapshot (or the replay) and the join happen in one synchronous step,
        so every change after ``position`` reaches the sink and none before it does.
        """
        if not self._ready.is_set() or self.position is None:
            raise NotReady("the change feed is not running yet")
        position = self.position
        subscription = Subscription(wanted, sink)
        replayed: list[Change] | None = None
        reason: str | None = None
        if since is not None:
            reason = self._why_not_replayable(since)
            if reason is None:
                replayed = self.history.after(since, wanted.room)
        orders = None if replayed is not None else self.mirror.select(wanted)
        self.rooms.setdefault(wanted.room, set()).add(subscription)
        return View(subscription, position, replayed, orders, reason)

    def _why_not_replayable(self, since: str) -> str | None:
        key = self.source.position_key(since)
        if key is None:
            return "unknown_position"
        assert self.position is not None
        if key > (self.source.position_key(self.position) or key):
            return "position_ahead"
        if not self.history.covers(since):
            return "history_gone"
        return None

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
