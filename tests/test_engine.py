"""Fast tier: the engine adapter (its start-up check and its fallback), the packet guard, and
what a hostile client's packets do to a running service (over the in-memory database)."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import socketio

from conftest import running_service, settings_for, until
from orders_live.client.lean_socketio import LeanSocketIO
from orders_live.client.live_orders import LiveOrders
from orders_live.domain.order import OrderCreate
from orders_live.service import Service
from orders_live.transports.socketio._engine import Engine, check_engine, text_frame
from orders_live.transports.socketio.packet_guard import engine_packet_problem, socketio_packet_problem

pytestmark = pytest.mark.fast

DEEP = "[" * 5000 + "]" * 5000
HUGE_ID = "1" * 5000


def test_the_pinned_libraries_pass_the_engine_check() -> None:
    assert check_engine() == []
    assert Engine(direct=True).direct is True
    assert Engine(direct=False).direct is False


def test_a_changed_library_internal_turns_the_direct_path_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def reshaped(self: Any, sid: str, data: Any) -> None:  # not the signature it was written for
        return None

    monkeypatch.setattr(socketio.AsyncServer, "_handle_event_internal", reshaped)
    with caplog.at_level(logging.WARNING):
        engine = Engine(direct=True)
    assert engine.direct is False
    assert any("_handle_event_internal" in problem for problem in engine.problems)
    assert "direct path off" in caplog.text


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_a_text_frame_carries_one_engineio_message_of_any_length(size: int) -> None:
    text = "x" * size
    frame = text_frame(text)
    assert frame[0] == 0x81  # final text frame, no RSV bits (uncompressed)
    length, start = frame[1], 2
    assert length & 0x80 == 0  # server frames are unmasked
    if length == 126:
        (length,), start = struct.unpack_from("!H", frame, 2), 4
    elif length == 127:
        (length,), start = struct.unpack_from("!Q", frame, 2), 10
    assert frame[start:] == ("4" + text).encode() and length == size + 1


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        ("2", None),
        ("3", None),
        ("2probe", None),
        ("5", None),
        ('40{"token":"t"}', None),
        ('420["subscribe",{"status":"pending"}]', None),
        ('42["subscribe"]', None),
        ("41", None),
        ("", "empty packet"),
        (b"\x00\x01", "binary frame"),
        ("x", "unknown engine packet"),
        ("9", "unknown engine packet"),
        ("2" + DEEP, "unknown engine packet"),
        ("4", "empty packet"),
        ("42", "event without data"),
        ("42[", "malformed JSON"),
        ("49", "unsupported packet type"),
        ('45-["x"]', "unsupported packet type"),
        ("4" + DEEP, "unsupported packet type"),
        ("42" + DEEP, "too deeply nested"),
        ("42" + "[" * 40 + '"a"' + "]" * 40, "too deeply nested"),
        ('42["subscribe",{"id":' + HUGE_ID + "}]", "malformed JSON"),
        ('42{"a":1}', "malformed event"),
        ("42[1]", "malformed event"),
        ("43", "event without data"),
        ("4" + "2" + "9" * 20 + '["x"]', "ack id too long"),
    ],
)
def test_the_guard_refuses_what_the_libraries_would_choke_on(packet: Any, reason: str | None) -> None:
    assert engine_packet_problem(packet) == reason


def test_the_socketio_level_guard_sees_the_same_packets_over_long_polling() -> None:
    assert socketio_packet_problem('2["subscribe",{}]') is None
    assert socketio_packet_problem("2") == "event without data"
    assert socketio_packet_problem(b"\x01") == "binary packet"


@pytest_asyncio.fixture
async def memory_service() -> AsyncIterator[Service]:
    async with running_service(settings_for("memory://")) as running:
        yield running


async def polling_session(http: aiohttp.ClientSession, url: str) -> str:
    """An Engine.IO long-polling session with Socket.IO connected; its sid."""
    async with http.get(f"{url}/socket.io/?EIO=4&transport=polling") as response:
        sid = json.loads((await response.text())[1:])["sid"]
    async with http.post(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}", data="40") as response:
        assert response.status == 200
    async with http.get(f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}") as response:
        assert (await response.text()).startswith("40")
    return str(sid)


async def test_malformed_packets_over_long_polling_get_one_warning_line_each(
    memory_service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    """Socket.IO-level garbage is refused by the guard (and the session closed); Engine.IO-level
    garbage, which python-engineio parses first, is condensed to one warning by the log filter."""
    service = memory_service
    bad = ["42[", "42", "x", "9", "4" + "[" * 3000]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        with caplog.at_level(logging.INFO):
            for body in bad:
                sid = await polling_session(http, service.url)
                url = f"{service.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
                async with http.post(url, data=body) as response:
                    assert response.status in (200, 400)
    refusals = [r for r in caplog.records if "refused a" in r.getMessage() and "packet" in r.getMessage()]
    assert len(refusals) == len(bad)
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in refusals)
    assert not [r for r in caplog.records if r.exc_info is not None]
    assert "Traceback" not in caplog.text
    total = service.registry.get_sample_value
    counted = sum(
        total("orders_live_refused_packets_total", {"reason": reason}) or 0
        for reason in ("malformed JSON", "event without data", "ValueError", "IndexError", "RecursionError")
    )
    if service.gateway is not None and service.gateway.engine.direct:
        assert counted == len(bad)


async def read_until_closed(client: LeanSocketIO) -> None:
    """Reads every packet until the server closes the connection (at most 5 s)."""
    async with asyncio.timeout(5):
        async for _ in client.packets():
            pass


BAD_PACKETS = ["42", "42[", "49", "4", "x", "9", "42" + DEEP, '42["subscribe",{"id":' + HUGE_ID + "}]", '45-["x"]']


async def test_malformed_packets_get_one_warning_a_count_and_a_disconnect(
    memory_service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    service = memory_service
    assert service.gateway is not None and service.source is not None
    if not service.gateway.engine.direct:
        pytest.skip("the libraries' own path handles bad packets their own way")
    async with LiveOrders(service.url) as healthy:
        await healthy.wait_live()
        with caplog.at_level(logging.INFO):
            for bad in BAD_PACKETS:
                client = LeanSocketIO(service.url)
                await client.connect()
                client.send_raw(bad)
                with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                    await read_until_closed(client)
                await client.close()
        order = await service.source.store.create(OrderCreate(customer_name="Ada", product_name="Lamp"))
        await until(lambda: order.id in healthy.orders, what="the healthy client to get its change")
    refusals = [r for r in caplog.records if "refused a packet" in r.getMessage()]
    assert len(refusals) == len(BAD_PACKETS)
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in refusals)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert "Traceback" not in caplog.text
    total = sum(
        metric.value
        for family in service.registry.collect()
        if family.name == "orders_live_refused_packets"
        for metric in family.samples
        if metric.name.endswith("_total")
    )
    assert total == len(BAD_PACKETS)
