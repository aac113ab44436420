"""The fuzz: every input of tests/hostile_inputs.py (REST, Socket.IO, Engine.IO, SSE; writes
with the write token, without one and with a wrong one) against a running service with a read
and a write token, on the in-memory database and on both real ones. None may get a 5xx or
leave the request unanswered, nothing may be logged at ERROR or with a traceback, the orders
and the agent's records are as they were, and a normal client still gets its snapshot and a
change afterwards."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from conftest import database_counts, database_orders, running_service, settings_for, until
from hostile_inputs import Frame, HttpRequest, SocketSession, corpus
from orders_live.client.live_orders import LiveOrders
from orders_live.domain.source import Source
from orders_live.service import Service

READ_TOKEN = "fuzz-read-token"
WRITE_TOKEN = "fuzz-write-token"
WRONG_TOKEN = "fuzz-wrong-token"
BATCH = 8  # inputs in flight at once
ANSWER_WITHIN = 10.0  # seconds an HTTP request or a Socket.IO probe may take before it counts as hung
HELD_FOR = 3.0  # seconds a long poll is waited for: it may rightly wait longer (Engine.IO's ping interval)
PROBE = 987654  # the probe's ack id, unlike any the corpus uses


@dataclass(frozen=True)
class Outcome:
    """What one input got: ``status`` is the HTTP status (0: the server closed the connection
    without one, -1: no answer in time); ``socket`` what a WebSocket session ended in."""

    name: str
    status: int
    socket: str = ""
    detail: str = ""


class Peer:
    """The fuzz's connections: each from a source address of 127.0.0.2-251 in turn, so that a
    throttle per client address slows the unauthenticated inputs without stalling them all."""

    def __init__(self, port: int, orders: list[int]) -> None:
        self.port, self.orders = port, orders
        self.sent = 0

    def fill(self, raw: bytes, sid: str = "") -> bytes:
        order = self.orders[self.sent % len(self.orders)]
        return (
            raw.replace(b"{port}", str(self.port).encode())
            .replace(b"{token}", WRITE_TOKEN.encode())
            .replace(b"{order}", str(order).encode())
            .replace(b"{sid}", sid.encode())
        )

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.sent += 1
        source = f"127.0.0.{2 + self.sent % 250}"
        return await asyncio.open_connection("127.0.0.1", self.port, local_addr=(source, 0), limit=2**20)

    # -- HTTP --------------------------------------------------------------------------------

    def render(self, item: HttpRequest, sid: str = "") -> bytes:
        names = {name.lower() for name, _ in item.headers}
        lines = [item.method + b" " + self.fill(item.target, sid) + b" HTTP/1.1"]
        if item.host and b"host" not in names:
            lines.append(b"Host: 127.0.0.1:%d" % self.port)
        if item.auth != "none" and b"authorization" not in names:
            token = WRITE_TOKEN if item.auth == "token" else WRONG_TOKEN
            lines.append(b"Authorization: Bearer " + token.encode())
        lines += [name + b": " + self.fill(value) for name, value in item.headers]
        if not names & {b"content-length", b"transfer-encoding"}:
            lines.append(b"Content-Length: %d" % len(item.body))
        if b"connection" not in names:
            lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + item.body

    async def exchange(self, name: str, data: bytes, stream: bool = False, held: bool = False) -> tuple[Outcome, bytes]:
        """Sends one request; its status and (unless it is an event stream) its body."""
        reader, writer = await self.open()
        try:
            async with asyncio.timeout(HELD_FOR if held else ANSWER_WITHIN):
                try:
                    writer.write(data)
                    await writer.drain()
                except ConnectionError:
                    pass  # the server may answer (413, 400) before it has read everything
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return Outcome(name, 0, detail="closed without an answer"), b""
                status = int(head.split(b" ", 2)[1])
                if stream and status == 200:
                    return Outcome(name, status), b""
                try:
                    body = await reader.read()
                except ConnectionError:
                    body = b""
                return Outcome(name, status, detail=body[:160].decode(errors="replace")), body
        except TimeoutError:
            return Outcome(name, -2 if held else -1, detail="held" if held else "no answer"), b""
        finally:
            writer.close()

    async def polling_session(self, connected: bool) -> tuple[str, list[Outcome]]:
        """An Engine.IO long-polling session (with Socket.IO connected, if asked); its sid."""
        steps = []
        opened, body = await self.exchange(
            "polling handshake", self.simple("GET", b"/socket.io/?EIO=4&transport=polling")
        )
        steps.append(opened)
        sid = str(json.loads(body[1:])["sid"]) if opened.status == 200 else "none"
        if connected and opened.status == 200:
            target = f"/socket.io/?EIO=4&transport=polling&sid={sid}".encode()
            connect = b'40{"token":"' + WRITE_TOKEN.encode() + b'"}'
            steps.append((await self.exchange("polling connect", self.simple("POST", target, connect)))[0])
            answer = await self.exchange("polling connect answer", self.simple("GET", target), held=True)
            steps.append(answer[0])
        return sid, steps

    def simple(self, method: str, target: bytes, body: bytes = b"") -> bytes:
        return self.render(HttpRequest("", method.encode(), target, (), body, auth="none"))

    async def http(self, item: HttpRequest) -> list[Outcome]:
        sid, steps = ("", [])
        if item.polling is not None:
            sid, steps = await self.polling_session(item.polling == "connected")
        outcome, _ = await self.exchange(item.name, self.render(item, sid), item.stream, item.held)
        if item.polling is not None:
            close = f"/socket.io/?EIO=4&transport=polling&sid={sid}".encode()
            steps.append((await self.exchange("polling close", self.simple("POST", close, b"1")))[0])
        return [outcome, *steps]

    # -- Socket.IO over a WebSocket ------------------------------------------------------------

    async def socket(self, session: SocketSession) -> list[Outcome]:
        reader, writer = await self.open()
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                return [await self._session(session, reader, writer)]
        except TimeoutError:
            return [Outcome(session.name, 101, socket="hung")]
        finally:
            writer.close()

    async def _session(
        self, session: SocketSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Outcome:
        key = base64.b64encode(os.urandom(16))
        writer.write(
            b"GET /socket.io/?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (session.query.encode(), self.port, key)
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return Outcome(session.name, 0, detail="closed without an answer")
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            return Outcome(session.name, status, socket="not upgraded")
        try:
            await texts(reader, writer, lambda text: text.startswith("0"))  # Engine.IO's open packet
            connected = "not connected"
            if session.connect is not None:
                writer.write(frame(Frame(self.fill(session.connect.encode("utf-8", "surrogatepass")))))
                try:  # a refused connect may be answered late: failed authentications are throttled
                    async with asyncio.timeout(
                        ANSWER_WITHIN if WRITE_TOKEN in self.fill(session.connect.encode()).decode() else 3.0
                    ):
                        answer = await texts(reader, writer, lambda text: text.startswith(("40", "44")))
                except TimeoutError:
                    return Outcome(session.name, 101, socket="connect held back")
                connected = "connected" if answer.startswith("40") else "refused"
            for each in session.frames:
                writer.write(frame(Frame(self.fill(each.payload), each.opcode, each.fin, each.rsv, each.masked)))
            writer.write(frame(Frame(b'42%d["unsubscribe",{}]' % PROBE)))
            within = ANSWER_WITHIN if connected == "connected" else 2.0
            try:
                async with asyncio.timeout(within):
                    await texts(reader, writer, lambda text: text.startswith(f"43{PROBE}"))
                return Outcome(session.name, 101, socket=f"{connected}, answered")
            except TimeoutError:
                return Outcome(session.name, 101, socket=f"{connected}, silent")
        except (asyncio.IncompleteReadError, ConnectionError):
            return Outcome(session.name, 101, socket="closed")


def frame(each: Frame) -> bytes:
    """One client WebSocket frame."""
    first = (0x80 if each.fin else 0) | (each.rsv << 4) | each.opcode
    mask_bit = 0x80 if each.masked else 0
    length = len(each.payload)
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 2**16:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not each.masked:
        return header + each.payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(each.payload))


async def texts(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wanted: Callable[[str], bool]) -> str:
    """Reads frames (answering Engine.IO pings) until a text one that is ``wanted``; a close
    frame or the end of the stream raise ConnectionError."""
    while True:
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        payload = await reader.readexactly(length)
        opcode = first & 0x0F
        if opcode == 0x8:
            raise ConnectionError("closed by the server")
        if opcode != 0x1:
            continue
        text = payload.decode(errors="replace")
        if text == "2":
            writer.write(frame(Frame(b"3")))
        elif wanted(text):
            return text


# -- the run -------------------------------------------------------------------------------------


async def stored(source: Source) -> tuple[dict[int, Any], list[Any]]:
    """Every order and the newest agent records, read through the service's own source."""
    ids = [order_id async for chunk in source.store.index_rows() for order_id, *_ in chunk]
    orders = {order["id"]: order for order in await source.store.fetch(ids)}
    return orders, await source.actions.recent(500)


async def seed(service: Service) -> list[int]:
    """Three orders for the corpus's updates and deletes to aim at; their ids."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {WRITE_TOKEN}"}) as http:
        seeded = []
        for name in ("Ada", "Grace", "Edsger"):
            async with http.post(
                f"{service.url}/api/orders", json={"customer_name": name, "product_name": "Lamp"}
            ) as r:
                assert r.status == 201, await r.text()
                seeded.append((await r.json())["id"])
    return seeded


async def fuzz(service: Service, seeded: list[int], every: int) -> tuple[list[Outcome], float]:
    """Sends the corpus, ``BATCH`` inputs at a time; every outcome and the seconds it took."""
    peer = Peer(service.port, seeded)
    requests, sessions = (inputs[::every] for inputs in corpus())
    assert len(requests) + len(sessions) >= 1000
    signed_in = [
        session
        for session in sessions
        if session.connect == SocketSession.connect and not any(b"refresh_token" in f.payload for f in session.frames)
    ]
    work: list[Callable[[], Awaitable[list[Outcome]]]] = [
        *[lambda item=item: peer.http(item) for item in requests],
        *[lambda session=session: peer.socket(session) for session in signed_in],
    ]
    # Odd or refused connects and token refreshes last, and more at once: refused tokens are
    # throttled (held back) per client address.
    refused: list[Callable[[], Awaitable[list[Outcome]]]] = [
        lambda session=session: peer.socket(session) for session in sessions if session not in signed_in
    ]
    started = time.monotonic()
    outcomes = await in_batches(work, BATCH)
    middle = time.monotonic()
    outcomes += await in_batches(refused, 3 * BATCH)
    print(
        f"\nsigned in: {middle - started:.1f} s, then the odd and refused connects: {time.monotonic() - middle:.1f} s"
    )
    return outcomes, time.monotonic() - started


async def in_batches(work: list[Callable[[], Awaitable[list[Outcome]]]], at_once: int) -> list[Outcome]:
    """Runs every step, ``at_once`` at a time; their outcomes, in order."""
    gate = asyncio.Semaphore(at_once)

    async def one(step: Callable[[], Awaitable[list[Outcome]]]) -> list[Outcome]:
        async with gate:
            return await step()

    results = await asyncio.gather(*(one(step) for step in work))
    return [outcome for outcomes in results for outcome in outcomes]


async def a_normal_client_is_served(service: Service, seeded: set[int]) -> None:
    """A real subscribe gets its snapshot (the orders as they were), then a change."""
    async with LiveOrders(service.url, token=READ_TOKEN) as live:
        await live.wait_live()
        assert set(live.orders) == seeded
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {WRITE_TOKEN}"}) as http:
            body = {"customer_name": "After", "product_name": "Fuzz"}
            async with http.post(f"{service.url}/api/orders", json=body) as response:
                assert response.status == 201
                created = (await response.json())["id"]
        await until(lambda: created in live.orders, 10, "the normal client to get the change")


def failures(outcomes: list[Outcome]) -> list[str]:
    """The inputs that got a 5xx or no answer, one line per kind (numbers folded) with a count."""
    bad = Counter(
        (re.sub(r"#\d+", "#N", o.name), o.status, o.socket, o.detail.replace("\n", " ")[:100])
        for o in outcomes
        if o.status >= 500 or o.status == -1 or o.socket == "hung"
    )
    return [f"{n} x {name}: {status} {socket} {detail}" for (name, status, socket, detail), n in bad.items()]


FOLDED = re.compile(r"\b[A-Za-z0-9_-]{20}\b|127\.0\.0\.\d+|Task-\d+")  # Engine.IO session ids, the fuzz's addresses


def bad_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records at ERROR or with a traceback, one line per message (ids folded) with a count."""
    bad = Counter(
        FOLDED.sub("…", f"{r.name} {r.levelname}: {r.getMessage()[:160]}")
        + (FOLDED.sub("…", f" [{r.exc_info[0].__name__}: {r.exc_info[1]}]") if r.exc_info and r.exc_info[0] else "")
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info is not None or "Traceback" in r.getMessage()
    )
    return [f"{n} x {line}" for line, n in bad.items()]


async def run_the_fuzz(url: str, caplog: pytest.LogCaptureFixture, every: int = 1) -> None:
    """Every ``every``-th input of the corpus (at least 1,000) against a service on ``url``."""
    caplog.set_level(logging.WARNING)
    settings = settings_for(url, read_token=READ_TOKEN, write_token=WRITE_TOKEN)
    problems: list[str] = []
    async with running_service(settings) as service:
        assert service.source is not None
        seeded = await seed(service)
        before = await stored(service.source)
        in_the_database = await database_orders(url) if not url.startswith("memory://") else None
        counts = await database_counts(url) if url.startswith("postgresql://") else None
        outcomes, seconds = await fuzz(service, seeded, every)
        after = await stored(service.source)
        if after != before:
            problems.append(f"the corpus wrote: before {before}, after {after}")
        if in_the_database is not None and await database_orders(url) != in_the_database:
            problems.append("the database's orders changed")
        if counts is not None and await database_counts(url) != counts:
            problems.append("PostgreSQL's counts per status changed")
        await a_normal_client_is_served(service, set(seeded))
    counts = Counter(o.status for o in outcomes)
    sockets = Counter(o.socket for o in outcomes if o.socket)
    print(f"\n{len(outcomes)} answers in {seconds:.1f} s; statuses {sorted(counts.items())}; sockets {dict(sockets)}")
    problems += failures(outcomes) + bad_records(caplog)
    assert not problems, "\n".join(problems)


@pytest.mark.fast
@pytest.mark.parametrize("mode", ["shared tokens", "JWT"])
async def test_a_token_that_is_not_utf8_is_refused_not_a_500(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    """Found by the fuzz: a header's bytes that are not UTF-8 (aiohttp keeps them as lone
    surrogates), or a lone surrogate in Socket.IO's auth, broke the token check: 500."""
    caplog.set_level(logging.WARNING)
    if mode == "JWT":
        tokens: dict[str, Any] = {"jwt_secret": "s" * 32}
    else:
        tokens = {"read_token": READ_TOKEN, "write_token": WRITE_TOKEN}
    async with running_service(settings_for("memory://", **tokens)) as service:
        peer = Peer(service.port, [1])
        for header in (b"Bearer tok\xff", b"Bearer eyJhbGciOiJIUzI1NiJ9.e30\xff.x"):
            for method, target in (
                (b"GET", b"/api/orders"),
                (b"POST", b"/api/orders"),
                (b"GET", b"/api/changes/stream"),
            ):
                request = HttpRequest("bad token", method, target, ((b"Authorization", header),), b"{}", auth="none")
                outcome, _ = await peer.exchange(request.name, peer.render(request))
                assert outcome.status in (401, 403), (method, target, header, outcome)
        for token in ("\\ud800", "tok\\udcff"):
            session = SocketSession("bad token", (), connect='40{"token":"' + token + '"}')
            (outcome,) = await peer.socket(session)
            assert outcome.socket in ("refused, silent", "closed"), outcome
    assert not bad_records(caplog)


@pytest.mark.fast
@pytest.mark.parametrize("encoding", [b"gzip", b"deflate", b"br"])
async def test_a_body_whose_content_encoding_does_not_decode_logs_no_traceback(
    encoding: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by the fuzz: aiohttp decodes a body as it arrives, and a handler that never reads it
    still answered; but aiohttp then drains the body and logged the decoding error at ERROR,
    with a traceback ("Unhandled exception"), once per request."""
    caplog.set_level(logging.WARNING)
    async with running_service(settings_for("memory://")) as service:
        peer = Peer(service.port, [1])
        headers = ((b"Content-Encoding", encoding),)
        request = HttpRequest("undecodable", b"GET", b"/api/orders", headers, b"not compressed at all", auth="none")
        outcome, _ = await peer.exchange(request.name, peer.render(request))
        assert outcome.status in (200, 400), outcome  # 400: aiohttp cannot decode br at all here
    assert not bad_records(caplog)
    refusals = [r for r in caplog.records if "refused a malformed HTTP request" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING


@pytest.mark.fast
def test_the_corpus_is_over_a_thousand_inputs_and_the_same_on_every_run() -> None:
    requests, sessions = corpus()
    assert len(requests) + len(sessions) >= 1000
    assert (requests, sessions) == corpus()
    assert {item.auth for item in requests} == {"token", "none", "wrong"}
    assert len({item.name for item in requests}) > 1000


@pytest.mark.fast
@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_thousand_hostile_inputs_get_no_5xx_no_traceback_and_write_nothing_in_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await run_the_fuzz("memory://", caplog, every=2)  # half of it: the database tier runs it all


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_thousand_hostile_inputs_get_no_5xx_no_traceback_and_write_nothing(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await run_the_fuzz(database_url, caplog)
