"""Fast tier: the plumbing of ``orders-live bench --attack`` (hostile clients): choosing the
scenarios, what Linux says of a process, the Engine.IO exchange of a refused session and the
REST probe (against small in-process stand-ins), and the report. No service process is
started: the scenarios themselves run in the bench (docs/performance.md, "Hostile clients")."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp import web

from conftest import until
from orders_live.bench.attack_target import PeakSampler, open_files, resident_mb, warning_lines
from orders_live.bench.attacks import ATTACKS, attack_names, table, write_results
from orders_live.bench.forged_polls import first_position
from orders_live.bench.refused_sessions import Session, connect_packet, engine_session, hold, refused_one
from orders_live.bench.subscribe_flood import RestProbe
from orders_live.cli.bench import add_bench_parser, run_bench_command

pytestmark = pytest.mark.fast


def test_the_attacks_are_chosen_by_name_or_all_and_an_unknown_name_is_refused() -> None:
    assert attack_names("all") == ["subscribe-flood", "forged-polls", "refused-sessions", "bad-tokens"]
    assert attack_names("bad-tokens, forged-polls") == ["bad-tokens", "forged-polls"]
    with pytest.raises(ValueError, match="unknown attack nope"):
        attack_names("subscribe-flood,nope")
    with pytest.raises(ValueError, match="unknown attack ','"):
        attack_names(",")


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


def test_the_command_takes_attack_and_tag_and_stops_at_an_unknown_name_before_starting_anything() -> None:
    args = parsed("--attack", "refused-sessions", "--database", "postgres", "--tag", "before")
    assert (args.attack, args.database, args.tag) == ("refused-sessions", "postgres", "before")
    with pytest.raises(SystemExit, match="--attack: unknown attack flood"):
        run_bench_command(parsed("--attack", "flood"))


def test_resident_memory_and_open_files_come_from_proc(tmp_path: Path) -> None:
    me = os.getpid()
    assert resident_mb(me) == pytest.approx(psutil.Process(me).memory_info().rss / 2**20, rel=0.2)
    before = open_files(me)
    with (tmp_path / "held").open("w"):
        assert open_files(me) == before + 1
    assert open_files(me) == before


def test_warning_lines_are_counted_from_an_offset_in_either_log_format(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    assert warning_lines(log) == 0  # no log yet
    log.write_text("2026-12-04 WARNING old line\n")
    offset = log.stat().st_size
    with log.open("a") as file:
        file.write("2026-12-04 WARNING refused a connect\n2026-12-04 INFO fine\n")
        file.write(json.dumps({"level": "WARNING", "message": "refused"}) + "\n")
    assert warning_lines(log) == 3
    assert warning_lines(log, offset) == 2


async def test_the_peak_sampler_keeps_the_highest_reading() -> None:
    readings = iter([5.0, 9.0, 7.0, *([6.0] * 1000)])
    async with PeakSampler(lambda: next(readings), period=0.001) as sampler:
        await until(lambda: sampler.peak >= 9.0, 5, "the sampler to read the highest value")
    assert sampler.peak == 9.0


def test_a_forged_position_is_the_first_of_its_kind() -> None:
    assert first_position("pg:52311") == "pg:1"
    assert first_position("nx:9") == "nx:1"
    opaque = "8265D0C1E6000000012B0229296E04"  # MongoDB's resume token: nothing to forge from
    assert first_position(opaque) == opaque


def test_a_connect_carries_the_token_or_no_auth() -> None:
    assert connect_packet(None) == "40"
    assert json.loads(connect_packet("wrong-1")[2:]) == {"token": "wrong-1"}


Handler = Callable[[web.Request], Any]


@asynccontextmanager
async def served(handler: Handler, path: str) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def engine_stand_in(closes: bool, received: list[str]) -> Handler:
    """An Engine.IO endpoint that refuses every connect (``44``) and pings; when ``closes``, it
    closes the socket once its ping is answered (else the client has to leave)."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str('0{"sid":"s","pingInterval":25000,"pingTimeout":20000}')
        async for message in socket:
            received.append(message.data)
            if str(message.data).startswith("40"):
                await socket.send_str('44{"message":"unauthorized"}')
                await socket.send_str("2")
            elif message.data == "3" and closes:
                await socket.close()
        return socket

    return handler


async def test_a_refused_session_answers_pings_and_notes_the_refusal_and_the_servers_close() -> None:
    received: list[str] = []
    async with served(engine_stand_in(True, received), "/socket.io/") as url:
        fate = Session()
        async with aiohttp.ClientSession() as session:
            await asyncio.wait_for(refused_one(session, url, "wrong", fate), 10)
        assert fate.refused and not fate.accepted and fate.answered.is_set() and fate.opened.is_set()
        assert fate.closed_at is not None and fate.refused_at is not None and fate.closed_at >= fate.refused_at
        assert received == ['40{"token": "wrong"}', "3"]  # the connect, then the answer to the ping


async def test_a_session_the_server_keeps_stays_open_until_the_client_leaves() -> None:
    received: list[str] = []
    async with served(engine_stand_in(False, received), "/socket.io/") as url:
        fate, answers = Session(), list[str]()
        async with aiohttp.ClientSession() as session:
            socket = await engine_session(session, url)
            holding = asyncio.create_task(hold(socket, fate, answers))
            for n in range(3):
                await socket.send_str(connect_packet(f"wrong-{n}"))
            await asyncio.wait_for(fate.answered.wait(), 10)
            await socket.close()
            await asyncio.wait_for(holding, 10)
        assert answers == ['44{"message":"unauthorized"}'] * 3
        assert fate.refused and not fate.accepted


async def test_the_rest_probe_times_each_call_and_keeps_the_failures() -> None:
    calls: list[float] = []

    async def orders(request: web.Request) -> web.Response:
        calls.append(time.monotonic())
        assert request.query["limit"] == "100"
        return web.json_response({"orders": []}, status=503 if len(calls) == 2 else 200)

    async with served(orders, "/api/orders") as url:
        async with RestProbe(url) as probe:
            await until(lambda: len(probe.latencies_ms) >= 4, 10, "four timed calls")
        assert probe.failures == ["503"]
        assert probe.between(0.0, math.inf) == probe.latencies_ms
        assert probe.between(probe.started_at[1], probe.started_at[2]) == [probe.latencies_ms[1]]
        assert all(0 < latency < 5_000 for latency in probe.latencies_ms)
        assert calls[3] - calls[0] >= 0.25  # one call every 0.1 s, not a tight loop


@pytest.mark.parametrize(("stall", "failures"), [(0.3, []), (5.0, ["unanswered"])])
async def test_a_call_in_flight_when_the_probe_stops_is_awaited_a_while_then_counted_unanswered(
    monkeypatch: pytest.MonkeyPatch, stall: float, failures: list[str]
) -> None:
    monkeypatch.setattr("orders_live.bench.subscribe_flood.STOP_GRACE", 1.0)
    calls: list[float] = []
    release = asyncio.Event()

    async def orders(request: web.Request) -> web.Response:
        calls.append(time.monotonic())
        if len(calls) == 2:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), stall)  # the service stalls on this one
        return web.json_response({"orders": []})

    async with served(orders, "/api/orders") as url:
        async with RestProbe(url) as probe:
            await until(lambda: len(calls) == 2, 10, "the second call")
        release.set()
        assert probe.failures == failures
        assert len(calls) == len(probe.latencies_ms) == 2  # no call after the stop
        assert min(stall, 1.0) * 1000 * 0.9 <= probe.latencies_ms[1] < 5_000


def results() -> list[dict[str, Any]]:
    return [
        {
            "scenario": "subscribe-flood",
            "database": "postgres",
            "subscribes_sent": 100,
            "rss_start_mb": 90.0,
            "rss_peak_mb": 165.0,
            "rss_after_close_mb": 160.5,
            "rss_growth_mb": 75.0,
            "rest_calls": 220,
            "rest_failures": [],
            "rest_latency_ms": {"p50": 5.1, "p95": 20.0, "p99": 49.9, "max": 183.2, "count": 220.0},
            "rest_latency_ms_by_phase": {
                "before": {"p50": 4.0, "p95": 5.0, "p99": 6.0, "max": 6.0, "count": 10.0},
                "during": {"p50": 5.5, "p95": 25.0, "p99": 60.0, "max": 183.2, "count": 180.0},
                "after": {"p50": 4.2, "p95": 5.1, "p99": 7.0, "max": 7.0, "count": 30.0},
            },
            "done_when": {"RSS growth <= 20 MB": False, "REST <= 100 ms throughout": False},
        },
        {
            "scenario": "forged-polls",
            "database": "postgres",
            "forged_since": "pg:1",
            "forged_polls": [{"seconds": 0.2, "status": 200, "outcome": "history_gone"}] * 4,
            "catch_up_contested": {"seconds": 1.2, "status": 200, "outcome": "caught_up"},
            "catch_up_alone": {"seconds": 1.1, "status": 200, "outcome": "caught_up"},
            "done_when": {"each forged poll <= 1 s": True, "the other's catch-up answered <= 1.5 s": True},
        },
        {
            "scenario": "refused-sessions",
            "database": "nx-27017",
            "sessions": 300,
            "refused": 300,
            "accepted": 0,
            "closed_unanswered": 0,
            "service_open_files_before": 17,
            "marks": [
                {"after_s": 1.0, "still_open": 300, "service_open_files": 317},
                {"after_s": 10.0, "still_open": 0, "service_open_files": 17},
            ],
            "done_when": {"all closed within 10 s": True},
        },
        {
            "scenario": "bad-tokens",
            "database": "nx-27017",
            "attempts_sent": 200,
            "burst_s": 0.1,
            "answered": 3,
            "socket_closed_by_server": True,
            "closed_after_s": 0.02,
            "warning_lines": 1,
            "done_when": {},
        },
    ]


def test_the_table_shows_every_figure_and_whether_each_bound_was_met() -> None:
    text = table(results())
    rows = text.splitlines()
    assert rows[0] == "| scenario | database | figure | value |"
    assert "| subscribe-flood | postgres | RSS start / peak / 3 s after close | 90.0 / 165.0 / 160.5 MB |" in rows
    assert "| subscribe-flood | postgres | done when: RSS growth <= 20 MB | NOT met |" in rows
    assert "| subscribe-flood | postgres | REST max before / during / after the flood | 6.0 / 183.2 / 7.0 ms |" in rows
    assert "| forged-polls | postgres | done when: each forged poll <= 1 s | met |" in rows
    assert "| refused-sessions | nx-27017 | still open after 1 s | 300 (317 open files) |" in rows
    assert "| bad-tokens | nx-27017 | socket closed by the server | yes, after 0.02 s |" in rows
    assert {row.split(" | ")[0].lstrip("| ") for row in rows[2:]} == set(ATTACKS)


def test_the_results_are_written_as_json_with_their_command_and_as_the_table(tmp_path: Path) -> None:
    path = write_results(results(), tmp_path / "attacks", "before", "postgres", "orders-live bench --attack all")
    assert path == tmp_path / "attacks" / "before-postgres.json"
    written = json.loads(path.read_text())
    assert written["meta"]["command"] == "orders-live bench --attack all"
    assert "load_average_1m" in written["meta"] and written["results"] == results()
    markdown = path.with_suffix(".md").read_text()
    assert markdown.startswith("Command: `orders-live bench --attack all`") and table(results()) in markdown
