"""Fast tier: a slow client's queue is bounded, conflates, and resyncs only past its bound."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from conftest import until
from orders_live.domain.change import Change
from orders_live.domain.order import OrderCreate, OrderPatch
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.hub import Delivery, Hub
from orders_live.sources.memory import MemoryDatabase
from orders_live.transports.client_queue import ClientQueue
from orders_live.transports.snapshot_pages import RecentPage
from orders_live.transports.socketio._engine import Engine
from orders_live.transports.socketio.connection import ClientConnection, SocketSink

pytestmark = pytest.mark.fast


def delivery(order_id: int, version: int, seq: int) -> Delivery:
    order = {
        "id": order_id,
        "customer_name": "A",
        "product_name": "P",
        "status": "pending",
        "updated_at": "2026-11-24T00:00:00.000Z",
        "version": version,
    }
    return Delivery(Change("update", order_id, order, f"m:{seq}", "2026-11-24T00:00:00.000Z"))


def encode(item: Delivery, conflated: bool) -> tuple[int, int, bool]:
    assert item.change.order is not None
    return (item.change.id, item.change.order["version"], conflated)


def test_changes_queue_in_order_while_the_client_keeps_up() -> None:
    resyncs: list[str] = []
    queue: ClientQueue[Any] = ClientQueue("c", encode, lambda: resyncs.append("r"), capacity=4)
    for seq in range(1, 4):
        queue.put_change("all", delivery(1, seq, seq))
    assert queue.take() == [(1, 1, False), (1, 2, False), (1, 3, False)]
    assert queue.take() == [] and not resyncs


def test_a_client_behind_its_capacity_gets_the_latest_state_per_order_flagged_conflated() -> None:
    queue: ClientQueue[Any] = ClientQueue("c", encode, lambda: None, capacity=2, conflation_capacity=10)
    seq = 0
    for version in range(1, 6):
        for order_id in (1, 2):
            seq += 1
            queue.put_change("all", delivery(order_id, version, seq))
    queue.put_control("ack")  # control packets are never merged or dropped
    assert queue.behind and queue.backlog == 5  # two queued changes, the ack, two merged orders
    assert queue.take() == [(1, 1, False), (2, 1, False), "ack"]
    assert queue.take() == [(1, 5, True), (2, 5, True)]
    assert not queue.behind and queue.take() == []


def test_past_the_merged_bound_the_client_is_resynced_and_keeps_its_acks() -> None:
    resyncs: list[str] = []
    queue: ClientQueue[Any] = ClientQueue(
        "c", encode, lambda: queue.put_control("resync"), capacity=2, conflation_capacity=3
    )
    queue.put_change("all", delivery(1, 1, 1))
    queue.put_control("ack")
    for order_id in range(2, 10):
        queue.put_change("all", delivery(order_id, 1, order_id))
    assert queue.backlog <= 2 + 3 + 1
    assert queue.take() == ["ack", "resync"]
    assert not resyncs and queue.take() == []


async def test_a_stalled_socket_client_converges_through_conflation_without_blocking_the_hub() -> None:
    source = MemoryDatabase()
    hub = Hub(source.source(), instance="fast")
    await hub.start()
    await hub.wait_ready(2)
    channel = RecordingChannel()
    channel.release.clear()

    def resync(connection: ClientConnection) -> None:
        for subscription in connection.subscriptions.values():
            hub.resync(subscription, "slow_client")

    engine = Engine(direct=False)
    connection = ClientConnection("slow", channel, engine, 3, resync, unbroken)
    connection.start()
    try:
        view = await hub.open_view(
            SubscriptionFilter("all"),
            SocketSink(connection, "all", {}, RecentPage(lambda p: engine.encode_event("snapshot", p))),
        )
        connection.subscriptions["all"] = view.subscription
        order = await source.create(OrderCreate(customer_name="A", product_name="P"))
        for n in range(30):
            await source.update(order.id, OrderPatch(product_name=f"P{n}"), None)
        await until(lambda: hub.position == "m:31", what="the hub to take every change")
        assert connection.queue.backlog <= 3 + 1
        channel.release.set()
        await until(lambda: connection.queue.backlog == 0 and len(channel.changes) >= 2, what="the queue to drain")
    finally:
        await connection.close()
        await hub.stop()
    sent = channel.changes
    assert sent[-1]["order"]["version"] == 31 and sent[-1]["conflated"] is True
    versions = [change["order"]["version"] for change in sent]
    assert versions == sorted(versions)


def test_a_resync_drops_the_changes_still_waiting_for_that_subscription_only() -> None:
    queue: ClientQueue[Any] = ClientQueue("c", encode, lambda: None, capacity=10)
    queue.put_change("all", delivery(1, 1, 1))
    queue.put_change("status:pending", delivery(1, 1, 1))
    queue.put_control("ack")
    queue.put_change("all", delivery(2, 1, 2))
    queue.drop_room("all")
    queue.put_control("resync all")
    assert queue.take() == [(1, 1, False), "ack", "resync all"]


def test_a_run_of_changes_goes_out_as_one_batch_and_a_lone_change_as_a_shared_frame() -> None:
    connection = ClientConnection("c", RecordingChannel(), Engine(direct=True), 10, lambda _: None, unbroken)
    first, second, third = delivery(1, 1, 1), delivery(1, 2, 2), delivery(2, 1, 3)
    ack = '3["ack",{}]'
    packets = list(connection._packets([(first, False), (second, False), ack, (third, True)]))
    assert [json.loads(text[1:])[0] for text, _ in packets] == ["order_changes", "ack", "order_change"]
    batch = json.loads(packets[0][0][1:])[1]["changes"]
    assert [c["order"]["version"] for c in batch] == [1, 2]
    assert json.loads(packets[2][0][1:])[1]["conflated"] is True
    assert packets[0][1] is None and packets[1][1] is None
    frame = packets[2][1]
    assert frame is not None and frame[0] == 0x81 and frame.endswith(b"4" + packets[2][0].encode())
    other = ClientConnection("d", RecordingChannel(), Engine(direct=True), 10, lambda _: None, unbroken)
    assert next(iter(other._packets([(third, True)])))[1] is frame  # built once, shared


class RecordingChannel:
    """A client's way out that records what it is given (Engine.IO's path), and can stall."""

    direct = None

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.changes: list[dict[str, Any]] = []
        self.others: list[tuple[str, Any]] = []  # snapshot pages, resyncs
        self.dropped = False

    async def send(self, packet: str) -> None:
        await self.release.wait()
        event, payload = json.loads(packet[1:])
        if event == "order_changes":
            self.changes.extend(payload["changes"])
        elif event == "order_change":
            self.changes.append(payload)
        else:
            self.others.append((event, payload))

    async def wait_writable(self) -> None:
        return None

    def drop(self) -> None:
        self.dropped = True


def unbroken(connection: ClientConnection, error: BaseException) -> None:
    raise AssertionError(f"the writer of {connection.sid} broke: {error!r}")
