"""Fast tier: customer scopes in the hub, over the in-memory source. A scoped subscription gets
its customer's orders and nothing else, in its changes, replays, catch-ups, snapshots, pages and
counts; an order that moves between customers leaves the old one's rooms (as a delete) and
arrives in the new one's exactly once; and the work per change follows the rooms, not the
number of subscribers."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from conftest import until
from orders_live.domain.change import CaughtUp, Change
from orders_live.domain.order import OrderCreate, OrderPatch
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.hub import Batch, Delivery, Hub, SnapshotEnd
from orders_live.hub.routes import routes_of
from orders_live.sources.memory import MemoryDatabase

pytestmark = pytest.mark.fast

ALL = SubscriptionFilter("all")
PENDING = SubscriptionFilter("status", status="pending")


class Sink:
    """Records what a subscription is handed: each Delivery (the object itself), and the snapshot."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.snapshot: dict[int, dict[str, Any]] = {}
        self.resyncs: list[SnapshotEnd] = []

    @property
    def changes(self) -> list[dict[str, Any]]:
        return [{**d.change.wire(), "counts": d.counts} for d in self.deliveries]

    def deliver(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)

    def deliver_batch(self, batch: Batch) -> None:
        self.deliveries.extend(batch.deliveries)

    def begin_resync(self) -> None:
        return None

    def page(self, orders: list[dict[str, Any]], removed: list[int], first: bool) -> None:
        if first:
            self.snapshot = {}
        self.snapshot.update((o["id"], o) for o in orders)
        for order_id in removed:
            self.snapshot.pop(order_id, None)

    async def drained(self) -> None:
        return None

    def end_resync(self, end: SnapshotEnd) -> None:
        self.resyncs.append(end)


class NoPreImages(MemoryDatabase):
    """Like nx-27017: an update's change does not say whose the order was before it."""

    async def watch(self, resume_after: str | None) -> AsyncGenerator[Change | CaughtUp, None]:
        async for item in super().watch(resume_after):
            yield _without_owner(item) if isinstance(item, Change) else item

    async def changes_between(self, after: str, upto: str, wanted: SubscriptionFilter, budget: int) -> list[Change]:
        every = await super().changes_between(after, upto, SubscriptionFilter("all"), budget)
        return [change for change in map(_without_owner, every) if wanted.may_concern(change)]


def _without_owner(item: Change) -> Change:
    if item.op != "update":
        return item
    return Change(item.op, item.id, item.order, item.position, item.committed_at, item.before_status)


@pytest_asyncio.fixture
async def source() -> MemoryDatabase:
    return MemoryDatabase()


async def started(source: MemoryDatabase, history: int = 100) -> Hub:
    hub = Hub(source.source(), instance="fast", history_size=history, checkpoint_interval=0.01)
    await hub.start()
    await hub.wait_ready(2)
    return hub


@pytest_asyncio.fixture
async def hub(source: MemoryDatabase) -> AsyncIterator[Hub]:
    running = await started(source)
    yield running
    await running.stop()


async def create(source: MemoryDatabase, customer: str, status: Any = "pending") -> int:
    return (await source.create(OrderCreate(customer_name=customer, product_name="P", status=status))).id


async def settle(hub: Hub, source: MemoryDatabase) -> None:
    await until(lambda: hub.position == f"m:{source._seq}", within=2, what="the hub to catch up")


def of(customer: str, wanted: SubscriptionFilter = ALL) -> SubscriptionFilter:
    return wanted.within(customer)


async def test_a_scoped_subscription_gets_its_customers_changes_with_its_customers_counts(
    hub: Hub, source: MemoryDatabase
) -> None:
    ada, bo, everyone = Sink(), Sink(), Sink()
    await hub.open_view(of("Ada"), ada)
    await hub.open_view(of("Bo"), bo)
    await hub.open_view(ALL, everyone)
    a1 = await create(source, "Ada")
    b1 = await create(source, "Bo", status="shipped")
    await source.update(a1, OrderPatch(status="shipped"), None)
    await source.delete(b1, None)
    await settle(hub, source)
    assert [(c["op"], c["id"]) for c in ada.changes] == [("insert", a1), ("update", a1)]
    assert [(c["op"], c["id"]) for c in bo.changes] == [("insert", b1), ("delete", b1)]
    assert len(everyone.changes) == 4
    # Counts: the customer's own, after each change; the unscoped ones the whole table's.
    assert [c["counts"] for c in ada.changes] == [
        {"pending": 1, "shipped": 0, "delivered": 0},
        {"pending": 0, "shipped": 1, "delivered": 0},
    ]
    assert [c["counts"] for c in bo.changes] == [
        {"pending": 0, "shipped": 1, "delivered": 0},
        {"pending": 0, "shipped": 0, "delivered": 0},
    ]
    assert everyone.changes[1]["counts"] == {"pending": 1, "shipped": 1, "delivered": 0}


async def test_an_order_that_moves_leaves_the_old_customer_as_a_delete_and_arrives_once(
    hub: Hub, source: MemoryDatabase
) -> None:
    order = await create(source, "Ada")
    await settle(hub, source)
    sinks = {
        "ada all": (of("Ada"), Sink()),
        "ada pending": (of("Ada", PENDING), Sink()),
        "ada id": (of("Ada", SubscriptionFilter("id", id=order)), Sink()),
        "bo all": (of("Bo"), Sink()),
        "bo shipped": (of("Bo", SubscriptionFilter("status", status="shipped")), Sink()),
        "bo id": (of("Bo", SubscriptionFilter("id", id=order)), Sink()),
        "cy all": (of("Cy"), Sink()),
        "everyone": (ALL, Sink()),
    }
    for wanted, sink in sinks.values():
        await hub.open_view(wanted, sink)
    await source.update(order, OrderPatch(customer_name="Bo", status="shipped"), None)
    await settle(hub, source)
    got = {name: [(c["op"], c["id"], c["position"]) for c in sink.changes] for name, (_, sink) in sinks.items()}
    leave, arrive = [("delete", order, "m:2")], [("update", order, "m:2")]
    assert got == {
        "ada all": leave,
        "ada pending": leave,
        "ada id": leave,
        "bo all": arrive,
        "bo shipped": arrive,
        "bo id": arrive,
        "cy all": [],
        "everyone": arrive,
    }
    assert sinks["ada all"][1].deliveries[0].change.order is None  # nothing of Bo's order reaches Ada
    assert sinks["ada all"][1].changes[0]["counts"] == {"pending": 0, "shipped": 0, "delivered": 0}
    assert sinks["bo all"][1].changes[0]["counts"] == {"pending": 0, "shipped": 1, "delivered": 0}


async def test_scoped_snapshots_windows_pages_and_counts_hold_only_the_customers_orders(
    hub: Hub, source: MemoryDatabase
) -> None:
    ada = [await create(source, "Ada", status=("pending", "shipped")[n % 2]) for n in range(5)]
    for _ in range(7):
        await create(source, "Bo", status="pending")
    await settle(hub, source)
    whole, pending, window = Sink(), Sink(), Sink()
    view = await hub.open_view(of("Ada"), whole)
    assert sorted(whole.snapshot) == ada and view.sent == 5
    assert view.counts == {"pending": 3, "shipped": 2, "delivered": 0}
    view = await hub.open_view(of("Ada", PENDING), pending)
    assert sorted(pending.snapshot) == [ada[0], ada[2], ada[4]] and view.counts == {"pending": 3}
    view = await hub.open_view(of("Ada"), window, limit=2)
    assert sorted(window.snapshot) == ada[-2:]  # the newest two of Ada's, not of the table
    orders, _, counts = await hub.page(of("Ada"), None, 3)
    assert [o["id"] for o in orders] == ada[::-1][:3]
    assert counts == {"pending": 3, "shipped": 2, "delivered": 0}
    orders, _, _ = await hub.page(of("Bo", SubscriptionFilter("id", id=ada[0])), None, 3)
    assert orders == []
    assert hub.owner_of(ada[0]) == "Ada" and hub.owner_of(9999) is None


async def test_a_replay_from_memory_carries_the_leaves_and_the_arrivals(hub: Hub, source: MemoryDatabase) -> None:
    moving = await create(source, "Ada")
    staying = await create(source, "Ada")
    await settle(hub, source)
    since = hub.position
    await source.update(moving, OrderPatch(customer_name="Bo"), None)
    await source.update(staying, OrderPatch(product_name="Q"), None)
    await create(source, "Bo")
    await settle(hub, source)
    view = await hub.open_view(of("Ada"), Sink(), since)
    assert view.replayed is not None
    assert [(c.op, c.id, c.order is None) for c in view.replayed] == [
        ("delete", moving, True),
        ("update", staying, False),
    ]
    view = await hub.open_view(of("Bo"), Sink(), since)
    assert view.replayed is not None
    assert [(c.op, c.id) for c in view.replayed] == [("update", moving), ("insert", 3)]


async def test_a_catch_up_from_the_change_stream_carries_the_leaves(source: MemoryDatabase) -> None:
    hub = await started(source, history=3)
    try:
        moving = await create(source, "Ada")
        await settle(hub, source)
        since = hub.position
        await source.update(moving, OrderPatch(customer_name="Bo"), None)
        for n in range(5):  # past the history's 3: the catch-up reads the change stream
            await create(source, f"Other {n}")
        await settle(hub, source)
        assert since is not None and not hub.history.covers(since)
        view = await hub.open_view(of("Ada"), Sink(), since)
        assert view.replayed is not None
        assert [(c.op, c.id, c.order) for c in view.replayed] == [("delete", moving, None)]
    finally:
        await hub.stop()


async def test_a_scoped_catch_up_that_cannot_know_the_previous_owner_resyncs_instead_of_guessing() -> None:
    source = NoPreImages()
    hub = await started(source, history=3)
    try:
        mine = await create(source, "Ada")
        theirs = await create(source, "Bo")
        await settle(hub, source)
        since = hub.position
        await source.update(theirs, OrderPatch(product_name="Q"), None)  # whose was it before? the stream cannot say
        for n in range(5):
            await create(source, f"Other {n}")
        await settle(hub, source)
        sink = Sink()
        view = await hub.open_view(of("Ada"), sink, since)
        assert view.replayed is None and view.resync_reason == "scope_unknown"
        assert list(sink.snapshot) == [mine]
        unscoped = await hub.open_view(ALL, Sink(), since)  # an unscoped view has nothing to fear
        assert unscoped.replayed is not None and len(unscoped.replayed) == 6
    finally:
        await hub.stop()


async def test_live_changes_without_pre_images_still_route_by_the_owner_the_index_holds() -> None:
    source = NoPreImages()
    hub = await started(source)
    try:
        order = await create(source, "Ada")
        await settle(hub, source)
        ada = Sink()
        await hub.open_view(of("Ada"), ada)
        await source.update(order, OrderPatch(customer_name="Bo"), None)
        await settle(hub, source)
        assert [(c["op"], c["order"]) for c in ada.changes] == [("delete", None)]
    finally:
        await hub.stop()


async def test_a_change_is_delivered_once_per_scope_whatever_the_number_of_subscribers(
    hub: Hub, source: MemoryDatabase
) -> None:
    crowd = [Sink() for _ in range(200)]
    for sink in crowd:
        await hub.open_view(of("Ada"), sink)
    await create(source, "Ada")
    await settle(hub, source)
    deliveries = {id(sink.deliveries[0]) for sink in crowd}
    assert len(deliveries) == 1  # one Delivery (so one encoding per transport) for the whole room
    # A customer no one subscribes as costs its changes no scoped delivery at all.
    change = Change("insert", 99, {"id": 99, "customer_name": "Nobody", "status": "pending", "version": 1}, "m:9", "t")
    routing = hub.index.apply(change)
    routes = routes_of(change, routing, hub.index, hub.rooms)
    assert [rooms for _, rooms in routes] == [routing.unscoped]
