"""Fast tier: the agent's triggers, guardrails, tools and offline planner, with no service."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from orders_live.agent.agent import refused_call
from orders_live.agent.chat_model import ChatModel
from orders_live.agent.guardrails import HourBudget, Refusal, check_call
from orders_live.agent.metrics import AgentMetrics
from orders_live.agent.planner import NeedsModel, OfflinePlanner
from orders_live.agent.tools import FindOrders, parse_duration, tool_schemas
from orders_live.agent.trigger_queue import TriggerQueue
from orders_live.agent.triggers import Trigger, TriggerWatch
from orders_live.cli import _parser
from orders_live.cli.agent import _planner
from orders_live.client.live_orders import LiveEvent
from orders_live.domain.order import iso_millis

pytestmark = pytest.mark.fast


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def order(order_id: int, status: str, version: int, at: float, name: str = "Ada") -> dict[str, Any]:
    return {
        "id": order_id,
        "customer_name": name,
        "product_name": "Lamp",
        "status": status,
        "updated_at": iso_millis(datetime.fromtimestamp(at, UTC)),
        "version": version,
    }


def change(after: dict[str, Any] | None, order_id: int, before: dict[str, Any] | None) -> LiveEvent:
    return LiveEvent("change", {"op": "update", "id": order_id, "order": after, "position": "p"}, before=before)


def drain(watch: TriggerWatch) -> list[tuple[str, int, int]]:
    fired = []
    while (trigger := watch.ready.take()) is not None:
        watch.done_with(trigger)
        fired.append(trigger.key)
    return fired


def test_pending_orders_fire_when_their_time_comes_and_not_before() -> None:
    clock = Clock()
    watch = TriggerWatch(pending_after=60, clock=clock)
    view = {1: order(1, "pending", 1, clock.now - 100), 2: order(2, "pending", 3, clock.now - 30)}
    watch.observe(LiveEvent("snapshot"), view)
    assert watch.due() == pytest.approx(30)
    assert drain(watch) == [("pending_too_long", 1, 1)]  # overdue at start: at once
    clock.now += 29.9
    watch.due()
    assert drain(watch) == []
    clock.now += 0.2
    watch.due()
    assert drain(watch) == [("pending_too_long", 2, 3)]


def test_an_order_that_moves_on_or_changes_before_its_time_does_not_fire() -> None:
    clock = Clock()
    watch = TriggerWatch(pending_after=60, clock=clock)
    view = {n: order(n, "pending", 1, clock.now) for n in (1, 2, 3)}
    watch.observe(LiveEvent("snapshot"), view)
    view[1] = order(1, "shipped", 2, clock.now + 10)
    watch.observe(change(view[1], 1, order(1, "pending", 1, clock.now)), view)
    del view[2]
    watch.observe(change(None, 2, None), view)
    view[3] = order(3, "pending", 2, clock.now + 20)  # changed, still pending: its clock restarts
    watch.observe(change(view[3], 3, order(3, "pending", 1, clock.now)), view)
    drain(watch)  # the shipped trigger of order 1
    clock.now += 61
    watch.due()
    assert drain(watch) == []
    clock.now += 20
    watch.due()
    assert drain(watch) == [("pending_too_long", 3, 2)]


def test_shipped_fires_on_the_change_to_shipped_only() -> None:
    clock = Clock()
    watch = TriggerWatch(pending_after=3600, clock=clock)
    view = {1: order(1, "pending", 1, clock.now)}
    watch.observe(LiveEvent("snapshot"), view)
    view[1] = order(1, "shipped", 2, clock.now)
    watch.observe(change(view[1], 1, order(1, "pending", 1, clock.now)), view)
    view[1] = order(1, "shipped", 3, clock.now, name="Ada L.")  # still shipped: no second trigger
    watch.observe(change(view[1], 1, order(1, "shipped", 2, clock.now)), view)
    assert drain(watch) == [("shipped", 1, 2)]


def test_after_a_resync_orders_that_shipped_meanwhile_fire_and_old_shipped_ones_at_start_do_not() -> None:
    clock = Clock()
    watch = TriggerWatch(pending_after=3600, shipped_lookback=600, clock=clock)
    view = {1: order(1, "shipped", 2, clock.now - 7200), 2: order(2, "pending", 1, clock.now - 10)}
    view[3] = order(3, "shipped", 4, clock.now - 60)  # shipped a minute ago: perhaps while the agent was down
    watch.observe(LiveEvent("snapshot"), view)
    first = [watch.ready.take() for _ in range(len(watch.ready))]
    assert [(t.key, t.from_snapshot) for t in first if t is not None] == [(("shipped", 3, 4), True)]
    view = {1: view[1], 2: order(2, "shipped", 2, clock.now), 3: view[3]}
    watch.observe(LiveEvent("resync", reason="history_lost"), view)
    assert drain(watch) == [("shipped", 2, 2)]  # 3 is still queued: not twice


async def test_the_timer_task_wakes_for_new_events() -> None:
    clock = Clock()
    watch = TriggerWatch(pending_after=0.05, clock=lambda: clock.now)
    task = asyncio.create_task(watch.run_timers())
    try:
        view = {1: order(1, "pending", 1, clock.now)}
        watch.observe(LiveEvent("snapshot"), view)
        clock.now += 1
        watch.observe(LiveEvent("change", {"op": "delete", "id": 2, "order": None, "position": "p"}), view)
        trigger = await asyncio.wait_for(watch.ready.get(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert trigger.key == ("pending_too_long", 1, 1)


def test_the_timer_heap_stays_bounded_under_many_changes() -> None:
    clock = Clock()
    watch = TriggerWatch(pending_after=86_400, clock=clock)
    view = {1: order(1, "pending", 1, clock.now)}
    watch.observe(LiveEvent("snapshot"), view)
    for version in range(2, 10_000):
        after = order(1, "pending", version, clock.now)
        watch.observe(change(after, 1, view[1]), view)
        view[1] = after
    assert watch.armed <= 2 * 1 + 1024 + 1


def _flip(watch: TriggerWatch, view: dict[int, dict[str, Any]], status: str, at: float) -> None:
    before = view[1]
    view[1] = order(1, status, before["version"] + 1, at)
    watch.observe(change(view[1], 1, before), view)


def test_a_flapping_order_gets_one_trigger_of_a_kind_per_window_and_the_rest_are_counted() -> None:
    clock = Clock()
    metrics = AgentMetrics()
    watch = TriggerWatch(pending_after=86_400, clock=clock, window=600, on_drop=metrics.dropped)
    view = {1: order(1, "pending", 1, clock.now), 2: order(2, "pending", 1, clock.now)}
    watch.observe(LiveEvent("snapshot"), view)
    fired = []
    for _ in range(50):  # shipped, pending, shipped, ...: 50 changes to shipped, a second apart
        _flip(watch, view, "shipped", clock.now)
        fired += drain(watch)  # the worker keeps up: nothing waits
        clock.now += 0.5
        _flip(watch, view, "pending", clock.now)
        clock.now += 0.5
    assert fired == [("shipped", 1, 2)]
    suppressed = 'orders_live_agent_triggers_suppressed_total{trigger="shipped"}'
    assert _sample(metrics, suppressed) == 49
    assert watch.ready.dropped["suppressed"] == 49
    view[2] = order(2, "shipped", 2, clock.now)  # another order is not held back by the flapping one
    watch.observe(change(view[2], 2, order(2, "pending", 1, clock.now)), view)
    assert drain(watch) == [("shipped", 2, 2)]
    clock.now += 600  # a window later the flapping order may fire once more
    _flip(watch, view, "shipped", clock.now)
    _flip(watch, view, "pending", clock.now)
    _flip(watch, view, "shipped", clock.now)
    assert drain(watch) == [("shipped", 1, 102)]
    assert _sample(metrics, suppressed) == 50


def test_a_full_trigger_queue_drops_the_oldest_and_counts_it_under_its_policy() -> None:
    clock = Clock()
    metrics = AgentMetrics()
    watch = TriggerWatch(pending_after=86_400, clock=clock, capacity=3, on_drop=metrics.dropped)
    view = {n: order(n, "pending", 1, clock.now) for n in range(1, 6)}
    watch.observe(LiveEvent("snapshot"), view)
    for n in range(1, 6):  # five orders ship while the worker is busy
        view[n] = order(n, "shipped", 2, clock.now)
        watch.observe(change(view[n], n, order(n, "pending", 1, clock.now)), view)
        assert len(watch.ready) <= 3
    overflow = 'orders_live_agent_queue_overflow_total{policy="drop_oldest",trigger="shipped"}'
    assert _sample(metrics, overflow) == 2
    assert drain(watch) == [("shipped", 3, 2), ("shipped", 4, 2), ("shipped", 5, 2)]
    assert watch.ready.put(Trigger("shipped", view[1]))  # a dropped trigger is not held as waiting


async def test_a_trigger_queue_hands_triggers_to_a_waiting_worker_in_order() -> None:
    queue = TriggerQueue(capacity=2, window=0, clock=Clock())
    worker = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # the worker waits on an empty queue
    queue.put(Trigger("shipped", order(1, "shipped", 2, 1_800_000_000)))
    first = await asyncio.wait_for(worker, 5)
    assert first.key == ("shipped", 1, 2)
    assert not queue.put(Trigger("shipped", order(1, "shipped", 2, 1_800_000_000)))  # still being handled
    queue.done_with(first)
    assert queue.put(Trigger("shipped", order(1, "shipped", 2, 1_800_000_000)))


def test_the_hourly_budget_refuses_at_once_past_its_limit_and_has_room_an_hour_later() -> None:
    clock = Clock()
    budget = HourBudget(3, clock=clock)
    for _ in range(3):
        budget.take()
        clock.now += 60
    assert budget.left == 0
    with pytest.raises(Refusal) as refused:
        budget.take()
    assert refused.value.code == "hourly_budget" and refused.value.reason.startswith("skipped:")
    clock.now += 3600 - 180  # the first call is an hour old
    budget.take()
    assert budget.left == 0


async def test_the_agent_commands_take_their_spend_limits() -> None:
    args = _parser().parse_args(
        ["agent", "--model", "m", "--max-tokens", "64", "--model-calls-per-hour", "9", "--trigger-window", "0"]
    )
    assert (args.max_tokens, args.model_calls_per_hour, args.trigger_window, args.queue_size) == (64, 9, 0.0, 1000)
    planner = _planner(args)
    try:
        assert isinstance(planner, ChatModel) and planner.max_tokens == 64
    finally:
        await planner.close()
    assert _parser().parse_args(["agent", "--model", "m"]).max_tokens == 1024
    with pytest.raises(SystemExit):
        _parser().parse_args(["agent", "--max-tokens", "0"])


def _sample(metrics: AgentMetrics, sample: str) -> float:
    name, labels = sample.split("{", 1)
    wanted = dict(pair.split("=", 1) for pair in labels.rstrip("}").split(","))
    value = metrics.registry.get_sample_value(name, {k: v.strip('"') for k, v in wanted.items()})
    assert value is not None, sample
    return value


@pytest.mark.parametrize(
    ("tool", "arguments", "code"),
    [
        ("notify_customer", {"order_id": 7, "message": "Shipped"}, None),
        ("draft_follow_up", {"order_id": 7, "message": "Sorry"}, "tool_not_allowed"),
        ("find_orders", {}, "tool_not_allowed"),
        ("update_order", {"id": 7, "status": "delivered"}, "unknown_tool"),
        ("notify_customer", {"order_id": 8, "message": "Shipped"}, "wrong_order"),
        ("notify_customer", {"order_id": 7, "message": "   "}, "invalid_arguments"),
        ("notify_customer", {"order_id": 7}, "invalid_arguments"),
    ],
)
def test_check_call_for_a_shipped_trigger(tool: str, arguments: dict[str, Any], code: str | None) -> None:
    if code is None:
        assert check_call("shipped", 7, tool, json.dumps(arguments)).model_dump() == arguments
        return
    with pytest.raises(Refusal) as refused:
        check_call("shipped", 7, tool, json.dumps(arguments))
    assert refused.value.code == code


def test_questions_may_only_read() -> None:
    assert isinstance(
        check_call("question", None, "find_orders", '{"status": "pending", "older_than": "1d"}'), FindOrders
    )
    for tool in ("notify_customer", "draft_follow_up"):
        with pytest.raises(Refusal, match="tool_not_allowed"):
            check_call("question", None, tool, '{"order_id": 1, "message": "hi"}')
    with pytest.raises(Refusal, match="invalid_arguments"):
        check_call("question", None, "find_orders", '{"status": "pending; DROP TABLE orders"}')
    with pytest.raises(Refusal, match="invalid_arguments"):
        check_call("question", None, "find_orders", '{"older_than": {"$gt": ""}}')


def test_durations_and_schemas() -> None:
    assert [parse_duration(t) for t in ("30s", "90m", "36h", "1d", "2w", "1.5h")] == [
        30,
        5400,
        129600,
        86400,
        1209600,
        5400,
    ]
    for bad in ("", "1", "1y", "-1d", "1d; x"):
        with pytest.raises(ValueError, match="a duration is"):
            parse_duration(bad)
    (schema,) = tool_schemas(["notify_customer"])
    parameters = schema["function"]["parameters"]
    assert schema["function"]["name"] == "notify_customer"
    assert parameters["required"] == ["order_id", "message"] and parameters["additionalProperties"] is False
    assert parameters["properties"]["message"]["maxLength"] == 1000


async def test_the_offline_planner_makes_the_templated_call_then_stops() -> None:
    planner = OfflinePlanner()
    shipped = Trigger("shipped", order(5, "shipped", 2, 1_800_000_000, name="Ada"))
    reply = await planner.reply([], [], shipped)
    (call,) = reply.calls
    assert call.name == "notify_customer"
    assert json.loads(call.arguments) == {
        "order_id": 5,
        "message": "Hello Ada, good news: your order #5 (Lamp) has shipped.",
    }
    assert check_call("shipped", 5, call.name, call.arguments)  # its own calls pass the guardrails
    done = await planner.reply([{"role": "tool", "content": "{}"}], [], shipped)
    assert done.calls == []
    pending = await planner.reply([], [], Trigger("pending_too_long", order(6, "pending", 1, 1_800_000_000)))
    assert pending.calls[0].name == "draft_follow_up"
    with pytest.raises(NeedsModel, match="questions need a model"):
        await planner.reply([], [], None)


@pytest.mark.parametrize(
    "raw", ['"' * 5000, "\\" * 5000, "x" * 10_000, '{"order_id": 1, "message": "' + "é" * 3000 + '"}']
)
def test_a_refused_call_is_kept_within_the_logs_bound(raw: str) -> None:
    tool, kept = refused_call("notify_customer", raw)
    assert tool == "notify_customer"
    assert 0 < len(json.dumps(kept)) <= 4000
    assert refused_call("Robert'); DROP TABLE--", "{}") == (None, {"tool": "Robert'); DROP TABLE--", "arguments": {}})
