"""Fast tier: paged snapshots over the in-memory source: pages and their bounds, windows and
counts, and changes made between pages (neither lost nor applied twice); the fan-out once per
read (one batch per room) and a replay joined while a fan-out is pending."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from conftest import until
from orders_live.client.live_view import LiveView
from orders_live.domain.change import Change
from orders_live.domain.order import OrderCreate, OrderJson, OrderPatch
from orders_live.domain.page import Cursor, newest_first
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.hub import Batch, Delivery, Hub, SnapshotEnd
from orders_live.sources.memory import MemoryDatabase
from orders_live.transports.snapshot_pages import RecentPage, snapshot_packets

pytestmark = pytest.mark.fast

PAGE = 10
ALL = SubscriptionFilter("all")
PENDING = SubscriptionFilter("status", status="pending")


class PagedSink:
    """Records what a client would get; ``between_pages`` runs each time a page is handed over."""

    def __init__(self, between_pages: Callable[[], Awaitable[None]] | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.between_pages = between_pages

    def deliver(self, delivery: Delivery) -> None:
        self.events.append(("change", delivery.encoded("test", False, dict)))

    def deliver_batch(self, batch: Batch) -> None:
        for delivery in batch.deliveries:
            self.deliver(delivery)

    def begin_resync(self) -> None:
        return None

    def page(self, orders: list[OrderJson], removed: list[int], first: bool) -> None:
        self.events.append(("page", {"orders": orders, "removed": removed, "reset": first}))

    async def drained(self) -> None:
        if self.between_pages is not None:
            await self.between_pages()

    def end_resync(self, end: SnapshotEnd) -> None:
        self.events.append(("resync", end))

    def pages(self) -> list[dict[str, Any]]:
        return [payload for kind, payload in self.events if kind == "page"]

    def view(self, wanted: dict[str, Any], end: SnapshotEnd) -> LiveView:
        """The view a client builds: the pages, the end, then every change after it."""
        view = LiveView(wanted)
        for kind, payload in self.events:
            if kind == "page":
                if payload["reset"]:
                    view.begin()
                view.add(payload["orders"], payload["removed"])
        view.end(end.position, end.counts)
        return view


@pytest_asyncio.fixture
async def source() -> MemoryDatabase:
    return MemoryDatabase()


@pytest_asyncio.fixture
async def hub(source: MemoryDatabase) -> AsyncIterator[Hub]:
    running = Hub(source.source(), instance="fast", page_orders=PAGE)
    await running.start()
    await running.wait_ready(2)
    yield running
    await running.stop()


async def fill(source: MemoryDatabase, count: int) -> list[int]:
    statuses = ("pending", "shipped", "delivered")
    return [
        (await source.create(OrderCreate(customer_name=f"C{n}", product_name="P", status=statuses[n % 3]))).id
        for n in range(count)
    ]


async def settle(hub: Hub, source: MemoryDatabase) -> None:
    await until(lambda: hub.position == f"m:{source._seq}", within=2, what="the hub to catch up")


def stored(source: MemoryDatabase, status: str | None = None) -> dict[int, OrderJson]:
    return {i: o.to_json() for i, o in source._orders.items() if status is None or o.status == status}


async def test_a_snapshot_comes_in_pages_of_the_bound_the_first_with_reset(hub: Hub, source: MemoryDatabase) -> None:
    await fill(source, 35)
    await settle(hub, source)
    sink = PagedSink()
    view = await hub.open_view(ALL, sink)
    pages = sink.pages()
    assert [len(page["orders"]) for page in pages] == [10, 10, 10, 5]
    assert [page["reset"] for page in pages] == [True, False, False, False]
    assert view.sent == 35 and view.counts == {"pending": 12, "shipped": 12, "delivered": 11}
    assert sink.view({}, SnapshotEnd(view.position, view.counts, view.sent)).orders == stored(source)


async def test_an_empty_snapshot_is_one_empty_page_with_reset(hub: Hub) -> None:
    sink = PagedSink()
    view = await hub.open_view(PENDING, sink)
    assert sink.pages() == [{"orders": [], "removed": [], "reset": True}]
    assert view.counts == {"pending": 0}


async def test_a_window_is_the_newest_orders_with_the_counts_of_the_whole_filter(
    hub: Hub, source: MemoryDatabase
) -> None:
    ids = await fill(source, 60)
    for order_id in ids[:5]:  # the oldest five become the newest
        await source.update(order_id, OrderPatch(product_name="again"), None)
    await settle(hub, source)
    sink = PagedSink()
    view = await hub.open_view(PENDING, sink, limit=15)
    pending = sorted(stored(source, "pending").values(), key=newest_first, reverse=True)
    got = [order for page in sink.pages() for order in page["orders"]]
    assert got == pending[:15]  # newest first, across two pages
    assert [len(page["orders"]) for page in sink.pages()] == [10, 5]
    assert view.counts == {"pending": 20}


async def test_changes_made_between_pages_are_neither_lost_nor_applied_twice(hub: Hub, source: MemoryDatabase) -> None:
    ids = await fill(source, 95)
    await settle(hub, source)
    step = 0

    async def write_between_pages() -> None:
        nonlocal step
        step += 1
        victim = ids[(step * 13) % len(ids)]
        if victim in source._orders:
            if step % 4 == 0:
                await source.delete(victim, None)
            elif step % 4 == 1:
                await source.update(victim, OrderPatch(status="shipped"), None)  # may move out of pending
            else:
                await source.update(victim, OrderPatch(status="pending"), None)  # may move in
        ids.append((await source.create(OrderCreate(customer_name="New", product_name="P"))).id)
        await settle(hub, source)

    for wanted, wire in ((ALL, {}), (PENDING, {"status": "pending"})):
        sink = PagedSink(write_between_pages)
        view = await hub.open_view(wanted, sink)
        end = SnapshotEnd(view.position, view.counts, view.sent)
        client = sink.view(wire, end)
        assert client.orders == stored(source, wanted.status)  # exact at the end's position
        assert client.counts == view.counts == {k: len(stored(source, k)) for k in view.counts}
        sink.between_pages = None
        await write_between_pages()  # after the end: live
        changes = [payload for kind, payload in sink.events if kind == "change"]
        assert changes, "a live change after the snapshot"
        key = source.position_key
        for change in changes:
            assert key(change["position"]) > key(view.position)  # nothing from before the end
            held = client.orders.get(change["id"])
            if change["order"] is not None and held is not None:
                assert change["order"]["version"] == held["version"] + 1  # none twice, none skipped
            client.apply(change)
        assert client.orders == stored(source, wanted.status)
        assert client.counts == {k: len(stored(source, k)) for k in view.counts}
        assert view.subscription is not None
        hub.close_view(view.subscription)


async def test_a_resync_is_sent_in_pages_and_ends_with_its_position(hub: Hub, source: MemoryDatabase) -> None:
    await fill(source, 25)
    await settle(hub, source)
    sink = PagedSink()
    view = await hub.open_view(ALL, sink)
    assert view.subscription is not None
    sink.events.clear()
    hub.resync(view.subscription, "slow_client")
    await until(lambda: any(kind == "resync" for kind, _ in sink.events), what="the resync's end")
    (end,) = [payload for kind, payload in sink.events if kind == "resync"]
    assert end.reason == "slow_client" and end.sent == 25 and end.position == hub.position
    assert [len(page["orders"]) for page in sink.pages()] == [10, 10, 5]
    assert sink.view({}, end).orders == stored(source)


async def test_a_page_of_the_rest_list_is_exact_and_continues_by_cursor(hub: Hub, source: MemoryDatabase) -> None:
    await fill(source, 30)
    await settle(hub, source)
    newest = sorted(stored(source).values(), key=newest_first, reverse=True)
    first, _, counts = await hub.page(ALL, None, 12)
    assert first == newest[:12] and counts == {"pending": 10, "shipped": 10, "delivered": 10}
    second, _, _ = await hub.page(ALL, Cursor.after(first[-1]), 12)
    assert second == newest[12:24]
    assert Cursor.parse(Cursor.after(first[-1]).wire()) == Cursor.after(first[-1])
    assert Cursor.parse("yesterday_3") is None and Cursor.parse("2026-01-01T00:00:00.000Z_x") is None


async def test_views_opened_while_nothing_changes_share_each_page_and_a_change_ends_the_sharing(
    hub: Hub, source: MemoryDatabase
) -> None:
    await fill(source, 15)
    await settle(hub, source)
    first, second = PagedSink(), PagedSink()
    await hub.open_view(ALL, first)
    await hub.open_view(ALL, second)
    assert all(a["orders"] is b["orders"] for a, b in zip(first.pages(), second.pages(), strict=True))
    await source.update(1, OrderPatch(product_name="changed"), None)
    await settle(hub, source)
    third = PagedSink()
    view = await hub.open_view(ALL, third)
    assert not any(a["orders"] is c["orders"] for a, c in zip(first.pages(), third.pages(), strict=True))
    assert third.view({}, SnapshotEnd(view.position, view.counts, view.sent)).orders == stored(source)


def test_a_page_handed_to_many_sinks_is_encoded_once_and_only_the_same_page_is_reused() -> None:
    encoded: list[dict[str, Any]] = []

    def encode(payload: dict[str, Any]) -> str:
        encoded.append(payload)
        return json.dumps(payload)

    recent = RecentPage(encode)
    orders: list[OrderJson] = [{"id": 1, "customer_name": "A", "product_name": "P", "status": "pending"}]
    packets = [recent.packets(4096, {}, orders, [], True) for _ in range(3)]
    assert len(encoded) == 1 and packets[0] is packets[1] is packets[2]
    assert recent.packets(4096, {}, list(orders), [], True) == packets[0]  # rebuilt list: encoded again
    recent.packets(4096, {}, orders, [], False)  # not the first page
    recent.packets(4096, {"status": "pending"}, orders, [], False)  # another view
    recent.packets(4096, {"status": "pending"}, orders, [2], False)  # with a removal
    assert len(encoded) == 5 and recent.reused == 2
    assert json.loads(recent.packets(4096, {"status": "pending"}, orders, [2], False)[0])["removed"] == [2]


def test_a_page_too_large_for_its_bytes_is_halved_until_every_packet_fits() -> None:
    orders: list[OrderJson] = [
        {"id": n, "customer_name": "x" * 150, "product_name": "y", "status": "pending", "version": 1}
        for n in range(1, 101)
    ]
    packets = snapshot_packets(json.dumps, 2048, {}, orders, [7, 8, 9], True)
    assert all(len(packet.encode()) <= 2048 for packet in packets)
    payloads = [json.loads(packet) for packet in packets]
    assert [p.get("reset", False) for p in payloads] == [True] + [False] * (len(payloads) - 1)
    assert [o["id"] for p in payloads for o in p["orders"]] == list(range(1, 101))
    assert [i for p in payloads for i in p.get("removed", [])] == [7, 8, 9]


class CallSink(PagedSink):
    """Records how changes arrive: one by one or as a batch (and which Batch object)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    def deliver(self, delivery: Delivery) -> None:
        self.calls.append(("one", delivery.change.position))
        super().deliver(delivery)

    def deliver_batch(self, batch: Batch) -> None:
        self.calls.append(("batch", batch))
        for delivery in batch.deliveries:
            super().deliver(delivery)


async def test_changes_read_together_go_out_as_one_batch_per_room_a_lone_one_alone(
    hub: Hub, source: MemoryDatabase
) -> None:
    first, second = CallSink(), CallSink()
    await hub.open_view(ALL, first)
    await hub.open_view(ALL, second)
    pending_only = CallSink()
    await hub.open_view(PENDING, pending_only)
    for n in range(5):  # no await suspends between them: the follower reads them in one go
        await source.create(OrderCreate(customer_name=f"B{n}", product_name="P", status=("pending", "shipped")[n % 2]))
    await settle(hub, source)
    await until(lambda: bool(first.calls), what="the fan-out")
    ((kind, batch),) = first.calls
    assert kind == "batch" and [d.change.position for d in batch.deliveries] == [f"m:{n}" for n in range(1, 6)]
    assert second.calls == [("batch", batch)]  # the same Batch: encoded once for the room
    ((kind, pending_batch),) = pending_only.calls
    assert [d.change.position for d in pending_batch.deliveries] == ["m:1", "m:3", "m:5"]
    await source.create(OrderCreate(customer_name="Alone", product_name="P"))
    await settle(hub, source)
    await until(lambda: len(first.calls) == 2, what="the lone change")
    assert first.calls[1] == ("one", "m:6")


async def test_a_replay_joined_while_a_fan_out_is_pending_gets_no_change_twice(
    hub: Hub, source: MemoryDatabase
) -> None:
    order_id = (await source.create(OrderCreate(customer_name="A", product_name="P"))).id
    await settle(hub, source)
    since = hub.position
    assert since is not None
    await until(lambda: not hub.batcher.pending, what="the fan-out")
    # A change the follower has applied (index, history, position) but not yet fanned out:
    change = Change("update", order_id, {**stored(source)[order_id], "version": 2}, "m:2", "2026-01-01T00:00:00.000Z")
    hub.follower.apply(change)
    assert hub.batcher.pending
    late = PagedSink()
    view = await hub.open_view(ALL, late, since)
    assert view.replayed is not None and [c.position for c in view.replayed] == ["m:2"]
    await until(lambda: not hub.batcher.pending, what="the fan-out")
    assert [kind for kind, _ in late.events] == []  # the replay has it; the fan-out did not send it again
