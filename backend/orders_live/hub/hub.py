"""The hub: one per service instance, between the source and the transports.

It knows nothing about transports: a transport hands it one ``Sink`` per subscription and
gets changes back through it. The parts, one module each: ``follower`` (the one live reader
of the feed), ``index`` and ``history`` (what it remembers: each order's status and version,
the last changes), ``fanout`` (rooms), ``batching`` (the fan-out once per read), ``views``
(replays and snapshots that agree with a position), ``snapshot`` (snapshots read from the
database in pages), ``catch_up`` (older positions, from the change stream),
``write_waiters`` (read-your-writes), ``checkpoints`` and ``stats``. Its background tasks run
under a ``Supervisor`` (the service's, handed in; else one of its own): a task that dies is
logged, counted, reported by ``problems`` and restarted.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from orders_live.domain.order import OrderJson
from orders_live.domain.page import Counts, Cursor
from orders_live.domain.source import Source
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.hub.batching import ReadBatcher
from orders_live.hub.checkpoints import CheckpointSaver
from orders_live.hub.fanout import Rooms, Sink, Subscription
from orders_live.hub.follower import Follower
from orders_live.hub.history import ChangeHistory
from orders_live.hub.index import OrderIndex
from orders_live.hub.position import FeedPosition
from orders_live.hub.snapshot import PAGE_ORDERS, SnapshotReader
from orders_live.hub.stats import HubStats
from orders_live.hub.views import ANONYMOUS, View, Views
from orders_live.hub.write_waiters import WriteWaiters
from orders_live.runtime.supervisor import Supervisor

FOLLOW_TASK, CHECKPOINTS_TASK = "hub.follow", "hub.checkpoints"


class Hub:
    def __init__(
        self,
        source: Source,
        instance: str,
        history_size: int = 10_000,
        checkpoint_interval: float = 1.0,
        registry: CollectorRegistry | None = None,
        page_orders: int = PAGE_ORDERS,
        catch_up_rows: int = 10_000,
        catch_up_timeout: float = 5.0,
        tasks: Supervisor | None = None,
    ) -> None:
        """``tasks``: the supervisor its tasks run under (the service's); else one of its own."""
        self.source = source
        self.registry = registry if registry is not None else CollectorRegistry()
        self.stats = HubStats(self.registry)
        self.feed = FeedPosition(source.feed.position_key)
        self.index = OrderIndex()
        self.history = ChangeHistory(history_size, source.feed.position_key)
        self.rooms = Rooms()
        self._writes = WriteWaiters()
        self.batcher = ReadBatcher(self.rooms, self.stats)
        flush = self.batcher.flush
        snapshots = SnapshotReader(source.store, self.index, self.feed, self._writes, flush, page_orders)
        self.views = Views(
            source.feed,
            self.feed,
            self.index,
            self.history,
            self.rooms,
            self.stats,
            snapshots,
            flush,
            catch_up_rows,
            catch_up_timeout,
        )
        self.follower = Follower(
            source,
            self.feed,
            self.index,
            self.history,
            self.rooms,
            self.batcher,
            self._writes,
            self.stats,
            self.views.resync_all,
        )
        self.checkpoints = CheckpointSaver(source.checkpoints, self.feed, checkpoint_interval)
        self._own_tasks = tasks is None
        self.tasks = Supervisor() if tasks is None else tasks
        self.tasks.death_listeners.append(lambda name: self.stats.task_deaths.labels(name).inc())
        self.instance = instance

    @property
    def instance(self) -> str:
        return self._instance

    @instance.setter
    def instance(self, name: str) -> None:
        self._instance = self.follower.instance = self.checkpoints.instance = name

    # -- life cycle ----------------------------------------------------------------
    async def start(self) -> None:
        self.tasks.start(FOLLOW_TASK, self.follower.run)
        self.tasks.start(CHECKPOINTS_TASK, self.checkpoints.run)

    async def stop(self) -> None:
        """Stops its own tasks (every task of its supervisor when that is its own) and saves the position."""
        await self.views.stop()
        await self.checkpoints.quiesce()
        await (self.tasks.stop() if self._own_tasks else self.tasks.stop(FOLLOW_TASK, CHECKPOINTS_TASK))
        self.batcher.flush()
        await self.checkpoints.save()

    @property
    def ready(self) -> bool:
        return self.feed.ready

    @property
    def stream_up(self) -> bool:
        return self.feed.stream_up

    @property
    def position(self) -> str | None:
        return self.feed.position

    @property
    def problems(self) -> list[str]:
        """Why this hub is not serving as it should (empty when it is)."""
        found = list(self.tasks.problems)
        if not self.feed.ready:
            found.append("change feed: not live yet")
        elif not self.feed.stream_up:
            found.append("change feed: the change stream is not answering")
        return found

    async def wait_ready(self, within: float) -> None:
        await self.feed.wait_ready(within)

    # -- subscribers ---------------------------------------------------------------
    async def open_view(
        self,
        wanted: SubscriptionFilter,
        sink: Sink,
        since: str | None = None,
        limit: int | None = None,
        client: str = ANONYMOUS,
    ) -> View:
        """Join ``wanted``'s room and return the replay after ``since``, or send a snapshot
        (the newest ``limit`` orders, when given) through ``sink`` and return its end.
        ``client`` (``catch_up_client``): whose catch-up it is, for a fair share of the
        catch-up slots. Raises PositionRefused and CatchUpBusy (see ``check_position``)."""
        return await self.views.open(wanted, sink, since, limit, client)

    async def changes_since(self, wanted: SubscriptionFilter, since: str, client: str = ANONYMOUS) -> View:
        """The same as ``open_view`` without joining: what a polling client gets."""
        return await self.views.open(wanted, None, since, None, client)

    async def check_position(self, since: str | None, client: str = ANONYMOUS) -> None:
        """Before a stream is opened: PositionRefused when ``since`` is past the newest change
        of the database's log, CatchUpBusy when ``client`` got no catch-up slot to ask in time."""
        await self.views.check_position(since, client)

    def close_view(self, subscription: Subscription) -> None:
        self.views.close(subscription)

    def resync(self, subscription: Subscription, reason: str) -> None:
        self.views.resync(subscription, reason)

    async def page(
        self, wanted: SubscriptionFilter, before: Cursor | None, limit: int
    ) -> tuple[list[OrderJson], str, Counts]:
        """Up to ``limit`` matching orders older than ``before``, newest first, the position
        they are exact at, and the counts for ``wanted`` there."""
        return await self.views.page(wanted, before, limit)

    def owner_of(self, order_id: int) -> str | None:
        """The customer of ``order_id`` as the feed has it now, or None when there is no such order."""
        return self.index.owner_of(order_id)

    async def applied(self, order_id: int, version: int | None, within: float) -> bool:
        """Wait until the feed has applied ``order_id`` at ``version`` (None: its delete).

        Lets a writer read its own write: the REST API answers a write only once its
        change is in the index, so a subscribe or read that follows it sees it.
        """
        current = self.index.version_of(order_id)
        if version is None and current is None:
            return True
        if version is not None and current is not None and current >= version:
            return True
        return await self._writes.wait(order_id, version, within)

    @property
    def changes_in(self) -> int:
        """Changes applied so far (read from the metrics: not for a hot path)."""
        return int(self.registry.get_sample_value("orders_live_changes_in_total") or 0)
