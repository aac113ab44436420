"""Fast tier: what lets the bench run at 10,000 and 20,000 clients and what it reports there
(per-write latency, the service's loop lag from its histogram, the source-address and process
plans, the SIGTERM counts), on small synthetic inputs; and its listing's patience with a
service that refuses it for now."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from orders_live.bench import websocket_floor
from orders_live.bench.balancer import metrics_text
from orders_live.bench.capacity import (
    clients_per_address,
    ephemeral_ports,
    processes_for,
    source_plan,
    workers_for,
)
from orders_live.bench.clients import STAMP, Counter
from orders_live.bench.generator import _connect, endings, split
from orders_live.bench.loop_lag import lag_over_window, matched, parse_buckets, worker_of
from orders_live.bench.scale_report import scale_lines
from orders_live.bench.stats import merge_endings, merge_worst, per_write, shutdown_counts
from orders_live.bench.writer import listing
from orders_live.cli.bench import _cases, _workers

pytestmark = pytest.mark.fast


def _change(order_id: int, version: int, stamp: str) -> dict[str, object]:
    return {"id": order_id, "op": "update", "order": {"id": order_id, "version": version, "product_name": stamp}}


def test_latencies_are_grouped_by_the_write_their_stamp_names() -> None:
    first, second = Counter(sampled=True), Counter(sampled=True)
    first.changes([_change(1, 2, f"{STAMP}1000.000000"), _change(2, 2, f"{STAMP}1000.500000")])
    second.changes([_change(1, 2, f"{STAMP}1000.000000"), _change(3, 2, "not a bench write")])
    assert set(first.worst) == {"1000.000000", "1000.500000"}
    assert set(second.worst) == {"1000.000000"}
    # the received time is later for the second client: its latency is the write's worst
    worst = merge_worst([first.worst, second.worst])
    assert worst["1000.000000"] == max(first.worst["1000.000000"], second.worst["1000.000000"])
    assert worst["1000.500000"] == first.worst["1000.500000"]


def test_per_write_counts_slow_writes_and_places_the_slowest_in_the_window() -> None:
    worst = {f"{100 + n * 0.5:.6f}": 20.0 for n in range(40)}
    worst["112.500000"], worst["125.000000"], worst["110.000000"] = 900.0, 1200.0, 251.0
    summary = per_write(worst, window_start=100.0)
    assert summary["writes"] == 41
    assert summary["over_250ms"] == 3
    assert summary["slowest"][:3] == [
        {"at_s": 25.0, "max_ms": 1200.0},
        {"at_s": 12.5, "max_ms": 900.0},
        {"at_s": 10.0, "max_ms": 251.0},
    ]
    assert len(summary["slowest"]) == 5
    assert summary["worst_ms"]["max"] == 1200.0


METRICS = """# HELP orders_live_event_loop_lag_seconds lag
# TYPE orders_live_event_loop_lag_seconds histogram
orders_live_event_loop_lag_seconds_bucket{{worker="1",le="0.001"}} {a}
orders_live_event_loop_lag_seconds_bucket{{worker="1",le="0.01"}} {b}
orders_live_event_loop_lag_seconds_bucket{{worker="1",le="0.1"}} {c}
orders_live_event_loop_lag_seconds_bucket{{worker="1",le="1.0"}} {d}
orders_live_event_loop_lag_seconds_bucket{{worker="1",le="+Inf"}} {e}
orders_live_event_loop_lag_seconds_count{{worker="1"}} {e}
orders_live_connected_clients{{transport="socketio"}} 3.0
"""


def test_the_windows_lag_is_the_difference_of_the_bucket_counts() -> None:
    before = parse_buckets(METRICS.format(a=100, b=110, c=110, d=110, e=110))
    after = parse_buckets(METRICS.format(a=1090, b=1208, c=1209, d=1210, e=1210))
    assert before is not None and after is not None
    assert after[math.inf] == 1210.0 and after[0.001] == 1090.0
    # the window: 990 under 1 ms, 8 more under 10 ms, one under 100 ms, one under 1 s
    lag = lag_over_window(before, after)
    assert lag == {"samples": 1100, "p99_s": 0.01, "max_s": 1.0, "as": "bucket upper bounds"}


def test_a_lag_past_the_last_bucket_is_infinite_and_a_missing_metric_is_none() -> None:
    before = parse_buckets(METRICS.format(a=0, b=0, c=0, d=0, e=0))
    after = parse_buckets(METRICS.format(a=100, b=100, c=100, d=100, e=101))
    lag = lag_over_window(before, after)
    assert lag is not None and lag["max_s"] == math.inf and lag["p99_s"] == 0.001
    assert parse_buckets('orders_live_connected_clients{transport="socketio"} 3.0\n') is None
    assert lag_over_window(None, after) is None
    assert lag_over_window(before, before) == {"samples": 0, "p99_s": None, "max_s": None, "as": "bucket upper bounds"}


def test_buckets_are_summed_over_workers() -> None:
    two = METRICS.format(a=1, b=2, c=3, d=4, e=5) + METRICS.format(a=1, b=2, c=3, d=4, e=5).replace(
        'worker="1"', 'worker="2"'
    )
    assert parse_buckets(two) == {0.001: 2.0, 0.01: 4.0, 0.1: 6.0, 1.0: 8.0, math.inf: 10.0}


def test_clients_take_more_source_addresses_only_past_what_one_holds(tmp_path: Path) -> None:
    ports = tmp_path / "range"
    ports.write_text("32768\t60999\n")
    assert ephemeral_ports(ports) == 28232
    per = clients_per_address(28232)
    assert 10_000 < per < 28232  # a margin below the whole range
    assert source_plan(0, 2500, 10_000, per) == [(None, 2500)]
    assert source_plan(0, 0, 10_000, per) == []
    # 20,000 clients over 8 processes of 2,500, 7,000 per address
    plans = [source_plan(n * 2500, 2500, 20_000, 7000) for n in range(8)]
    assert plans[0] == [("127.0.0.1", 2500)]
    assert plans[2] == [("127.0.0.1", 2000), ("127.0.0.2", 500)]
    assert plans[7] == [("127.0.0.3", 2500)]
    taken: dict[str | None, int] = {}
    for plan in plans:
        for address, count in plan:
            taken[address] = taken.get(address, 0) + count
    assert taken == {"127.0.0.1": 7000, "127.0.0.2": 7000, "127.0.0.3": 6000}
    with pytest.raises(ValueError, match="254 source addresses"):
        source_plan(0, 300_000, 300_000, 1000)


def test_the_service_takes_workers_enough_for_its_open_files_limit() -> None:
    assert workers_for(10_000, 20_000) == 1
    assert workers_for(20_000, 20_000) == 2  # a hard limit of 20,000 the bench may not raise
    assert workers_for(20_000, 21_024) == 1
    assert workers_for(40_000, 11_024) == 4
    assert _workers(None) is None


def test_one_generator_per_2500_clients_unless_given() -> None:
    assert processes_for(1000, None) == 2
    assert processes_for(10_000, None) == 4
    assert processes_for(20_000, None) == 8
    assert processes_for(10_001, None) == 5
    assert processes_for(20_000, 3) == 3


async def test_a_client_connects_from_the_source_address_it_is_given() -> None:
    peers: list[str] = []
    seen = asyncio.Event()

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[0])
        seen.set()
        writer.close()

    server = await asyncio.start_server(accepted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        await _connect(loop, asyncio.Protocol, "127.0.0.1", port, "127.0.0.3")
        await asyncio.wait_for(seen.wait(), 10)
    finally:
        server.close()
        await server.wait_closed()
    assert peers == ["127.0.0.3"]


def test_endings_after_a_sigterm_tell_told_closed_and_dropped_apart() -> None:
    counters = [Counter(sampled=False) for _ in range(6)]
    counters[0].ended = ("close", 10.5)
    counters[1].ended = ("close", 11.0)
    counters[2].ended = ("tcp", 11.5)
    counters[3].ended = ("tcp", 12.5)  # after the exit: with the process
    counters[4].ended = ("disconnect", 10.2)
    ended = endings(counters, (10.0, 12.0))
    assert ended["close"] == 2 and ended["tcp"] == 2 and ended["disconnect"] == 1 and ended["open"] == 1
    merged = merge_endings([ended, endings([Counter(sampled=False)], (10.0, 12.0))])
    assert merged["open"] == 2
    counts = shutdown_counts(merged, 7)
    assert counts["told_to_reconnect"] == 2
    assert counts["closed_before_exit"] == 1
    assert counts["told_to_disconnect"] == 1
    assert counts["dropped"] == 3
    assert counts["first_end_s"] == pytest.approx(0.2) and counts["last_end_s"] == pytest.approx(1.5)
    assert "SIGTERM" in scale_lines([_scale_result(counts)])


def _scale_result(shutdown: dict[str, object]) -> dict[str, object]:
    return {
        "transport": "socketio",
        "clients": 7,
        "connect_s": 1.5,
        "connect_failures": 2,
        "connect_retries": 9,
        "rss_per_connection_kb": 18.0,
        "event_loop_lag": {"samples": 10, "p99_s": 0.01, "max_s": math.inf, "as": "bucket upper bounds"},
        "per_write": per_write({"100.000000": 300.0}, 99.0),
        "deliveries_per_s": 14.0,
        "service_cpu_per_process": [0.1, 0.4],
        "shutdown": {"exit_s": 2.5, **shutdown},
    }


def test_the_scale_table_shows_bounds_and_the_slowest_writes() -> None:
    table = scale_lines([_scale_result(shutdown_counts({}, 7))])
    row = table.splitlines()[-1]
    assert "| 1.5 | 2 (9) | 18.0 | ≤ 10 | > 5000 |" in row
    assert "300 ms at 1.0 s" in row
    assert "10% / 40%" in row
    assert "exit 2.5 s" in row and "dropped 7" in row


def _args(**given: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "clients": "1000",
        "rates": "5,10,20,50,70,100",
        "duration": 10.0,
        "sse_clients": None,
        "poll_clients": None,
        "poll_interval": 2.0,
        "customers": None,
        "unscoped": False,
        "unscoped_orders": False,
        "baseline": True,
    }
    return argparse.Namespace(**(values | given))


def test_the_default_run_compares_transports_and_a_run_at_scale_is_socketio_alone() -> None:
    small = _cases(_args())
    assert {c.transport for c in small} == {"socketio", "sse", "polling"}
    assert [c.rate for c in small if c.transport == "socketio"] == [5, 10, 20, 50, 70, 100]
    large = _cases(_args(clients="10000,20000", rates="2", duration=60.0))
    assert [(c.transport, c.clients, c.rate, c.duration) for c in large] == [
        ("socketio", 10_000, 2.0, 60.0),
        ("socketio", 20_000, 2.0, 60.0),
    ]
    given = _cases(_args(clients="10_000", rates="2", sse_clients=50))
    assert [(c.transport, c.clients) for c in given] == [("socketio", 10_000), ("sse", 50), ("sse", 50)]
    assert _workers("1,2") == [1, 2]
    with pytest.raises(SystemExit):
        _cases(_args(clients="0"))


async def test_a_listing_refused_for_now_is_asked_again(capsys: pytest.CaptureFixture[str]) -> None:
    asked = []

    async def orders(request: web.Request) -> web.Response:
        asked.append(request.query_string)
        if len(asked) == 1:
            body = {"error": {"code": "database_unavailable", "message": "the database did not answer"}}
            return web.json_response(body, status=503, headers={"Retry-After": "0"})
        page = {"orders": [{"id": 1, "version": 3, "customer_name": "A"}], "next_before": None}
        return web.Response(text=json.dumps(page), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/orders", orders)
    async with TestServer(app) as server:
        found = await listing(str(server.make_url("")).rstrip("/"), {})
    assert found == {1: (3, "A")}
    assert len(asked) == 2
    assert "503" in capsys.readouterr().out


async def test_a_listing_refused_for_good_says_what_the_service_answered() -> None:
    async def orders(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "bad", "message": "no"}}, status=400)

    app = web.Application()
    app.router.add_get("/api/orders", orders)
    async with TestServer(app) as server:
        with pytest.raises(RuntimeError, match="400"):
            await listing(str(server.make_url("")).rstrip("/"), {})


def test_each_generator_gets_its_clients_sources_and_share_of_the_handshakes_in_flight() -> None:
    case = argparse.Namespace(transport="socketio", clients=20_000, poll_interval=2.0)
    configs = split("http://127.0.0.1:1", case, 8, 100, (None, 1, {}), per_address=7000)
    assert [c["clients"] for c in configs] == [2500] * 8
    assert [len(c["sampled"]) for c in configs] == [13] * 8  # 100 sampled, rounded up per process
    assert configs[2]["sources"] == [("127.0.0.1", 2000), ("127.0.0.2", 500)]
    assert {c["in_flight"] for c in configs} == {16}
    small = split(
        "http://127.0.0.1:1",
        argparse.Namespace(transport="socketio", clients=1000, poll_interval=2.0),
        2,
        100,
        (None, 1, {}),
        7000,
    )
    assert [c["sources"] for c in small] == [[(None, 500)], [(None, 500)]]
    assert {c["in_flight"] for c in small} == {64}


async def test_a_connection_the_service_drops_is_asked_again(capsys: pytest.CaptureFixture[str]) -> None:
    calls = {"metrics": 0, "orders": 0}

    async def metrics(request: web.Request) -> web.Response:
        calls["metrics"] += 1
        if calls["metrics"] <= 2 and request.transport is not None:  # aiohttp itself asks twice
            request.transport.abort()  # as a busy service closing a kept-alive connection
        return web.Response(text='orders_live_connected_clients{transport="socketio"} 2.0\n')

    async def orders(request: web.Request) -> web.Response:
        calls["orders"] += 1
        if calls["orders"] <= 2 and request.transport is not None:
            request.transport.abort()
        return web.json_response({"orders": [{"id": 1, "version": 2, "customer_name": "A"}], "next_before": None})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/orders", orders)
    async with TestServer(app) as server:
        url = str(server.make_url("")).rstrip("/")
        async with ClientSession() as session:
            assert "connected_clients" in await metrics_text(session, url)
        assert await listing(url, {}) == {1: (2, "A")}
    assert calls == {"metrics": 3, "orders": 3}
    assert "connection failed" in capsys.readouterr().out


def test_each_workers_counts_are_kept_apart_and_only_those_read_twice_are_summed() -> None:
    def text(worker: str, counts: tuple[int, int, int, int, int]) -> str:
        a, b, c, d, e = counts
        info = f'orders_live_worker_info{{pid="12",worker="{worker}"}} 1.0\n'
        return info + METRICS.format(a=a, b=b, c=c, d=d, e=e)

    assert worker_of(text("2", (1, 1, 1, 1, 1))) == "2"
    assert worker_of(METRICS.format(a=1, b=1, c=1, d=1, e=1)) is None
    one, two = text("1", (10, 10, 10, 10, 10)), text("2", (5, 5, 5, 5, 5))
    before = {"w1": parse_buckets(one), "w2": parse_buckets(two)}
    after = {
        "w1": parse_buckets(text("1", (110, 110, 110, 110, 110))),  # 100 quick ones
        "w2": parse_buckets(text("2", (5, 5, 5, 6, 6))),  # one under 1 s
        "w3": parse_buckets(text("3", (0, 0, 0, 0, 900))),  # not read before: left out
    }
    lag = lag_over_window(*matched({k: v for k, v in before.items() if v}, {k: v for k, v in after.items() if v}))
    assert lag == {"samples": 101, "p99_s": 0.001, "max_s": 1.0, "as": "bucket upper bounds"}
    assert matched({"w1": {1.0: 1.0}}, {"w2": {1.0: 2.0}}) == (None, None)


def test_the_websocket_floor_connects_the_bench_clients_to_a_bare_aiohttp_server(
    capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    websocket_floor.main(40, unused_tcp_port)
    line = capsys.readouterr().out
    assert line.startswith("bare aiohttp, 40 clients: connected in ") and "KB RSS per connection" in line
