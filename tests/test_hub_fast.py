"""Fast tier: the hub's logic over the in-memory change source (no database, no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from conftest import until
from orders_live.domain.order import OrderCreate, OrderJson, OrderPatch
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.hub import Batch, Delivery, Hub, NotReady, SnapshotEnd
from orders_live.sources.memory import MemoryDatabase

pytestmark = pytest.mark.fast


class RecordingSink:
    """Records changes, snapshot pages (``snapshot``: the orders since the last reset) and resyncs."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        self.snapshot: dict[int, OrderJson] = {}
        self.pages = 0
        self.resyncs: list[tuple[str, list[OrderJson], str]] = []

    def deliver(self, delivery: Delivery) -> None:
        self.changes.append(delivery.change.wire())

    def deliver_batch(self, batch: Batch) -> None:
        for delivery in batch.deliveries:
            self.deliver(delivery)

    def begin_resync(self) -> None:
        return None

    def page(self, orders: list[OrderJson], removed: list[int], first: bool) -> None:
        if first:
            self.snapshot = {}
        self.pages += 1
        self.snapshot.update((o["id"], o) for o in orders)
        for order_id in removed:
            self.snapshot.pop(order_id, None)

    async def drained(self) -> None:
        return None

    def end_resync(self, end: SnapshotEnd) -> None:
        assert end.reason is not None
        self.resyncs.append((end.reason, list(self.snapshot.values()), end.position))


class BrokenSink(RecordingSink):
    def deliver(self, delivery: Delivery) -> None:
        raise RuntimeError("this subscriber is broken")


@pytest_asyncio.fixture
async def source() -> MemoryDatabase:
    return MemoryDatabase()


@pytest_asyncio.fixture
async def hub(source: MemoryDatabase) -> AsyncIterator[Hub]:
    running = Hub(source.source(), instance="fast", history_size=5, checkpoint_interval=0.01)
    await running.start()
    await running.wait_ready(2)
    yield running
    await running.stop()


ALL = SubscriptionFilter("all")
PENDING = SubscriptionFilter("status", status="pending")
SHIPPED = SubscriptionFilter("status", status="shipped")


async def create(source: MemoryDatabase, name: str = "Ada", status: Any = "pending") -> int:
    return (await source.create(OrderCreate(customer_name=name, product_name="P", status=status))).id


async def settle(hub: Hub, source: MemoryDatabase) -> None:
    await until(lambda: hub.position == f"m:{source._seq}", within=2, what="the hub to catch up")


async def test_a_status_move_reaches_the_old_and_the_new_status_rooms(hub: Hub, source: MemoryDatabase) -> None:
    order_id = await create(source)
    await settle(hub, source)
    pending, shipped = RecordingSink(), RecordingSink()
    await hub.open_view(PENDING, pending)
    await hub.open_view(SHIPPED, shipped)
    await source.update(order_id, OrderPatch(status="shipped"), None)
    await source.update(order_id, OrderPatch(customer_name="Ada L."), None)
    await source.delete(order_id, None)
    await settle(hub, source)
    assert [(c["op"], c["order"] and c["order"]["status"]) for c in pending.changes] == [("update", "shipped")]
    assert [(c["op"], c["order"] and c["order"]["status"]) for c in shipped.changes] == [
        ("update", "shipped"),
        ("update", "shipped"),
        ("delete", None),
    ]


async def test_snapshot_and_join_share_one_position(hub: Hub, source: MemoryDatabase) -> None:
    first = await create(source)
    await settle(hub, source)
    sink = RecordingSink()
    view = await hub.open_view(ALL, sink)
    assert view.position == "m:1"
    assert view.replayed is None and view.sent == 1
    assert list(sink.snapshot) == [first]
    await source.update(first, OrderPatch(status="shipped"), None)
    await settle(hub, source)
    assert [c["position"] for c in sink.changes] == ["m:2"]


async def test_catch_up_replays_only_the_matching_changes_after_the_position(hub: Hub, source: MemoryDatabase) -> None:
    a = await create(source, "A")
    await settle(hub, source)
    since = hub.position
    assert since is not None
    b = await create(source, "B", status="shipped")
    await source.update(a, OrderPatch(status="shipped"), None)
    await source.update(b, OrderPatch(status="delivered"), None)
    await settle(hub, source)
    view = await hub.open_view(PENDING, RecordingSink(), since)
    assert view.replayed is not None
    assert [(c.id, c.position) for c in view.replayed] == [(a, "m:3")]  # a moved out of pending; b never in it


@pytest.mark.parametrize(("since", "reason"), [("nonsense", "unknown_position")])
async def test_a_position_that_cannot_be_replayed_gets_a_snapshot_and_a_reason(
    hub: Hub, source: MemoryDatabase, since: str, reason: str
) -> None:
    for n in range(8):  # more than the history holds (5)
        await create(source, f"C{n}")
    await settle(hub, source)
    sink = RecordingSink()
    view = await hub.open_view(ALL, sink, since)
    assert view.replayed is None
    assert view.resync_reason == reason
    assert len(sink.snapshot) == view.sent == 8


async def test_one_broken_subscriber_does_not_stop_the_others(hub: Hub, source: MemoryDatabase) -> None:
    await hub.open_view(ALL, BrokenSink())
    healthy = RecordingSink()
    await hub.open_view(ALL, healthy)
    await create(source)
    await create(source)
    await settle(hub, source)
    assert len(healthy.changes) == 2


async def test_lost_history_under_the_feed_resyncs_every_subscriber(hub: Hub, source: MemoryDatabase) -> None:
    sink = RecordingSink()
    await hub.open_view(PENDING, sink)
    await hub.stop()  # the feed stops; meanwhile the log rolls over
    order_id = await create(source)
    await create(source, status="shipped")
    source.forget_history()
    await hub.start()
    await hub.wait_ready(2)
    await until(lambda: len(sink.resyncs) == 1, within=2, what="the resync")
    reason, orders, position = sink.resyncs[0]
    assert reason == "history_lost"
    assert [o["id"] for o in orders] == [order_id]
    assert position == "m:2"


async def test_a_writer_can_wait_for_its_own_change(hub: Hub, source: MemoryDatabase) -> None:
    order_id = await create(source)
    assert await hub.applied(order_id, 1, within=2)
    await source.delete(order_id, None)
    assert await hub.applied(order_id, None, within=2)
    assert not await hub.applied(12345, 3, within=0.05)


async def test_nothing_is_served_before_the_feed_is_live(source: MemoryDatabase) -> None:
    idle = Hub(source.source(), instance="idle")
    with pytest.raises(NotReady):
        await idle.open_view(ALL, RecordingSink())
    with pytest.raises(NotReady):
        await idle.wait_ready(0.01)


async def test_a_position_older_than_memory_is_caught_up_from_the_change_stream(
    hub: Hub, source: MemoryDatabase
) -> None:
    ids = [await create(source, f"C{n}", status=("pending", "shipped")[n % 2]) for n in range(8)]
    await settle(hub, source)
    assert not hub.history.covers("m:1")  # memory holds the last 5 only
    await source.update(ids[1], OrderPatch(status="pending"), None)  # back in pending: in memory
    await settle(hub, source)
    view = await hub.open_view(PENDING, RecordingSink(), "m:1")
    assert view.replayed is not None
    assert [(c.id, c.position) for c in view.replayed] == [
        (ids[2], "m:3"),
        (ids[4], "m:5"),
        (ids[6], "m:7"),
        (ids[1], "m:9"),
    ]
    assert view.position == "m:9"


async def test_a_position_the_source_no_longer_holds_gets_a_snapshot(hub: Hub, source: MemoryDatabase) -> None:
    for n in range(8):
        await create(source, f"C{n}")
    await settle(hub, source)
    source.forget_history(keep=2)
    sink = RecordingSink()
    view = await hub.open_view(ALL, sink, "m:1")
    assert view.replayed is None and view.resync_reason == "history_gone"
    assert len(sink.snapshot) == 8


async def test_a_seed_that_already_holds_a_write_answers_its_writer(source: MemoryDatabase) -> None:
    order_id = await create(source)  # written before the hub has seeded: no change will wake it
    idle = Hub(source.source(), instance="late")
    waiting = asyncio.create_task(idle.applied(order_id, 1, within=5))
    await idle.start()
    try:
        assert await asyncio.wait_for(waiting, 2)
    finally:
        await idle.stop()
