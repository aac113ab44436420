"""The benchmark's lean clients: Socket.IO over a WebSocket, SSE and polling, parsed straight
from the bytes, many to a process (``bench/generator.py`` runs them).

Sampled clients parse and timestamp every change; the rest only count them (and, when scoped
to a customer, count the changes that name another customer), so that a thousand clients fit
on a shared 2-core machine. A client may hold a token: Socket.IO sends it in its CONNECT
packet's ``auth``, SSE trades it for a stream ticket first, polling sends it as a header.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from typing import Any, cast
from urllib.parse import quote

import aiohttp

from orders_live.bench.stats import SequenceCheck

STAMP = "bench "


def _stamp(order: dict[str, Any]) -> str | None:
    """The write's stamp (its start, wall-clock seconds) in a bench order, as text: it names the write."""
    name = order.get("product_name", "")
    return name[len(STAMP) :] if name.startswith(STAMP) else None


class Counter:
    """What one client saw. ``customer``: the customer it is scoped to, and ``scope`` the ids of
    that customer's orders (None for both: it sees every order); ``order``: the one order it
    subscribed to, if it did (its scope is then that order)."""

    def __init__(
        self, sampled: bool, customer: str | None = None, scope: set[int] | None = None, order: int | None = None
    ) -> None:
        self.sampled = sampled
        self.customer, self.order = customer, order
        self.check = SequenceCheck(scope=scope)
        self.latencies: list[float] = []
        self.worst: dict[str, float] = {}  # each write's stamp → this client's latency (ms)
        self.counted = 0
        self.foreign = 0  # a counting client's changes of another customer's orders
        self.foreign_snapshot = 0  # and orders of another customer in its snapshot
        self.bytes = 0
        self.ended: tuple[str, float] | None = None  # how its connection ended (``ended``), and when
        self.marker = b'"customer_name":' + json.dumps(customer).encode() if customer is not None else None

    def count(self, payload: bytes, changes: int) -> None:
        """A counting client's look at a frame of ``changes`` changes (0: a snapshot page): how
        many orders in it are not its customer's (compact JSON: the service's)."""
        self.counted += changes
        if self.marker is not None:
            foreign = payload.count(b'"customer_name":') - payload.count(self.marker)
            if changes:
                self.foreign += foreign
            else:
                self.foreign_snapshot += foreign

    def ended_as(self, how: str) -> None:
        """The server ended the session: ``disconnect`` (Socket.IO's: a socket.io client does not
        reconnect by itself), ``close`` (Engine.IO's close packet or a WebSocket close frame: it
        reconnects), ``tcp`` (the connection closed, no packet: it reconnects) or ``reset``; the
        first of them counts (monotonic time: one clock for every process of the machine)."""
        if self.ended is None:
            self.ended = (how, time.monotonic())

    def report(self) -> dict[str, Any]:
        """What the runner needs of this client (JSON)."""
        if self.sampled:
            last = {str(k): v for k, v in self.check.last.items()}
            return {"customer": self.customer, "order": self.order, **self.check.counts(), "last": last}
        counts = {"counted": self.counted, "foreign": self.foreign, "foreign_snapshot": self.foreign_snapshot}
        return {"customer": self.customer, "order": self.order, **counts}

    def snapshot(self, orders: list[dict[str, Any]]) -> None:
        for order in orders:
            self.check.start(order["id"], order["version"])

    def changes(self, changes: list[dict[str, Any]]) -> None:
        now = time.time()
        for change in changes:
            order = change["order"]
            if order is None:
                continue
            self.check.add(change["id"], order["version"])
            stamp = _stamp(order)
            if stamp is not None:
                latency = (now - float(stamp)) * 1000
                self.latencies.append(latency)
                self.worst[stamp] = max(latency, self.worst.get(stamp, latency))


class SocketClient(asyncio.Protocol):
    """Engine.IO v4 / Socket.IO v5 over a WebSocket, parsed straight from the bytes."""

    def __init__(
        self,
        counter: Counter,
        host: str,
        port: int,
        ready: asyncio.Future[None],
        token: str | None = None,
        order: int | None = None,  # subscribe to this one order, not to every order
    ) -> None:
        self.counter, self.host, self.port, self.ready = counter, host, port, ready
        self.connect = "40" + json.dumps({"token": token}, separators=(",", ":")) if token else "40"
        self.subscribe = '420["subscribe",' + json.dumps({"id": order} if order else {}) + "]"
        self.buffer = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        header = (
            struct.pack("!BB", 0x81, 0x80 | len(data))
            if len(data) < 126
            else struct.pack("!BBH", 0x81, 0x80 | 126, len(data))
        )
        assert self.transport is not None
        self.transport.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def data_received(self, data: bytes) -> None:
        self.counter.bytes += len(data)
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buffer[: end + 4]
            self.upgraded = True
        buffer = self.buffer
        while len(buffer) >= 2:
            length, start = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < start + length:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            if opcode == 0x1:
                self.message(payload)
            elif opcode == 0x8:  # a WebSocket close frame
                self.counter.ended_as("close")

    def eof_received(self) -> bool | None:
        self.counter.ended_as("tcp")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.counter.ended_as("reset" if exc is not None else "tcp")
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"the service closed a client before it was subscribed: {exc}"))

    def message(self, payload: bytes) -> None:
        if payload == b"2":
            self.send("3")
        elif payload == b"1":  # Engine.IO's close
            self.counter.ended_as("close")
        elif payload == b"41":  # Socket.IO's disconnect
            self.counter.ended_as("disconnect")
        elif payload.startswith(b"0{"):
            self.send(self.connect)
        elif payload.startswith(b"40"):
            self.send(self.subscribe)
        elif payload.startswith(b"44"):  # connect_error: the token was refused
            self._failed(payload)
        elif payload.startswith(b'42["snapshot"'):
            if self.counter.sampled:  # a page of the snapshot, before the ack
                self.counter.snapshot(json.loads(payload[2:])[1]["orders"])
            else:
                self.counter.count(payload, 0)
        elif payload.startswith(b"430"):
            if b'"ok":false' in payload:
                self._failed(payload)
            elif not self.ready.done():
                self.ready.set_result(None)
        elif payload.startswith(b'42["order_change'):
            if self.counter.sampled:
                event, body = json.loads(payload[2:])
                self.counter.changes(body["changes"] if event == "order_changes" else [body])
            else:
                self.counter.count(payload, payload.count(b'"op":'))

    def _failed(self, payload: bytes) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"the service refused a client: {payload[:300]!r}"))


class ChunkedBody:
    """HTTP/1.1 chunked transfer decoding, fed as bytes arrive: a balancer (nginx) re-chunks an
    event stream at its own buffer size, so events and chunks do not line up."""

    def __init__(self) -> None:
        self.raw = bytearray()
        self.left = 0  # bytes of the current chunk still to come

    def feed(self, data: bytes) -> bytes:
        self.raw += data
        body = bytearray()
        while True:
            if self.left == 0:
                end = self.raw.find(b"\r\n")
                if end < 0:
                    break
                line = bytes(self.raw[:end])
                del self.raw[: end + 2]
                if line:  # else the CRLF that ends a chunk's data
                    self.left = int(line.split(b";", 1)[0], 16)
                    if self.left == 0:
                        break  # the last chunk: the stream has ended
                continue
            taken = self.raw[: self.left]
            body += taken
            del self.raw[: len(taken)]
            self.left -= len(taken)
            if self.left:
                break
        return bytes(body)


class SseClient(asyncio.Protocol):
    """``GET /api/changes/stream`` (with ``?ticket=``, a stream ticket, for a client with a token)."""

    def __init__(
        self, counter: Counter, host: str, port: int, ready: asyncio.Future[None], ticket: str | None = None
    ) -> None:
        self.counter, self.host, self.port, self.ready = counter, host, port, ready
        self.path = f"/api/changes/stream?ticket={quote(ticket, safe='')}" if ticket else "/api/changes/stream"
        self.buffer = bytearray()
        self.head: bytearray | None = bytearray()  # the response's headers, until they end
        self.chunked: ChunkedBody | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        self.counter.bytes += len(data)
        if self.head is not None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            headers, data = bytes(self.head[:end]).lower(), bytes(self.head[end + 4 :])
            self.head = None
            if not headers.startswith(b"http/1.1 200") and not self.ready.done():
                self.ready.set_exception(RuntimeError(f"the service refused a stream: {headers[:300]!r}"))
                return
            if b"transfer-encoding: chunked" in headers:
                self.chunked = ChunkedBody()
        self.buffer += self.chunked.feed(data) if self.chunked is not None else data
        while (end := self.buffer.find(b"\n\n")) >= 0:
            block = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            if b"event: snapshot" in block:
                if self.counter.sampled:  # a page of the snapshot, before caught_up
                    self.counter.snapshot(json.loads(block.split(b"data: ", 1)[1])["orders"])
                else:
                    self.counter.count(block, 0)
            elif b"event: caught_up" in block:
                if not self.ready.done():
                    self.ready.set_result(None)
            elif b"event: order_change" in block:
                if self.counter.sampled:
                    self.counter.changes([json.loads(block.split(b"data: ", 1)[1])])
                else:
                    self.counter.count(block, 1)


class Poller:
    """Polls ``GET /api/changes?since=`` every ``interval`` seconds (the baseline)."""

    def __init__(
        self,
        counter: Counter,
        url: str,
        interval: float,
        session: aiohttp.ClientSession,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.counter, self.url, self.interval, self.session = counter, url, interval, session
        self.headers = headers or {}
        self.requests = 0
        self.empty = 0
        self.position = ""

    async def start(self) -> None:
        async with self.session.get(f"{self.url}/api/orders?limit=1000", headers=self.headers) as response:
            body = await response.json()
        self.position = body["position"]
        self.counter.snapshot(body["orders"])

    async def run(self) -> None:
        await asyncio.sleep(self.interval * (hash(id(self)) % 1000) / 1000)  # spread the polls
        while True:
            params = {"since": self.position}
            async with self.session.get(f"{self.url}/api/changes", params=params, headers=self.headers) as response:
                body = await response.json()
            self.requests += 1
            self.position = body["position"]
            if body["changes"]:
                self.counter.changes(body["changes"])
            else:
                self.empty += 1
            await asyncio.sleep(self.interval)
