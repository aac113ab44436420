"""The benchmark's load generator: many lean clients in one process.

Run as ``python -m orders_live.bench.clients '<json config>'``. It opens the clients,
prints ``READY``, and on a ``STOP`` line (or end of input) prints one JSON report.
Sampled clients parse and timestamp every change; the rest only count them, so that
a thousand clients fit on a shared 2-core machine. The report includes this
process's own CPU time and event-loop lag, so a run where the generator, not the
service, was the bottleneck can be marked invalid.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import sys
import time
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp

from orders_live.bench.stats import SequenceCheck, summary

STAMP = "bench "


def _stamp_latency(order: dict[str, Any], now: float) -> float | None:
    name = order.get("product_name", "")
    if not name.startswith(STAMP):
        return None
    return (now - float(name[len(STAMP) :])) * 1000


class Counter:
    """What one client saw."""

    def __init__(self, sampled: bool) -> None:
        self.sampled = sampled
        self.check = SequenceCheck()
        self.latencies: list[float] = []
        self.counted = 0
        self.bytes = 0

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
            latency = _stamp_latency(order, now)
            if latency is not None:
                self.latencies.append(latency)


class SocketClient(asyncio.Protocol):
    """Engine.IO v4 / Socket.IO v5 over a WebSocket, parsed straight from the bytes."""

    def __init__(self, counter: Counter, host: str, port: int, ready: asyncio.Future[None]) -> None:
        self.counter, self.host, self.port, self.ready = counter, host, port, ready
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

    def message(self, payload: bytes) -> None:
        if payload == b"2":
            self.send("3")
        elif payload.startswith(b"0{"):
            self.send("40")
        elif payload.startswith(b"40"):
            self.send('420["subscribe",{}]')
        elif payload.startswith(b'42["snapshot"'):
            if self.counter.sampled:  # a page of the snapshot, before the ack
                self.counter.snapshot(json.loads(payload[2:])[1]["orders"])
        elif payload.startswith(b"430"):
            if not self.ready.done():
                self.ready.set_result(None)
        elif payload.startswith(b'42["order_change'):
            if self.counter.sampled:
                event, body = json.loads(payload[2:])
                self.counter.changes(body["changes"] if event == "order_changes" else [body])
            else:
                self.counter.counted += payload.count(b'"op":')


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
    def __init__(self, counter: Counter, host: str, port: int, ready: asyncio.Future[None]) -> None:
        self.counter, self.host, self.port, self.ready = counter, host, port, ready
        self.buffer = bytearray()
        self.head: bytearray | None = bytearray()  # the response's headers, until they end
        self.chunked: ChunkedBody | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(
            f"GET /api/changes/stream HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
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
            if b"transfer-encoding: chunked" in headers:
                self.chunked = ChunkedBody()
        self.buffer += self.chunked.feed(data) if self.chunked is not None else data
        while (end := self.buffer.find(b"\n\n")) >= 0:
            block = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            if b"event: snapshot" in block:
                if self.counter.sampled:  # a page of the snapshot, before caught_up
                    self.counter.snapshot(json.loads(block.split(b"data: ", 1)[1])["orders"])
            elif b"event: caught_up" in block:
                if not self.ready.done():
                    self.ready.set_result(None)
            elif b"event: order_change" in block:
                if self.counter.sampled:
                    self.counter.changes([json.loads(block.split(b"data: ", 1)[1])])
                else:
                    self.counter.counted += 1


class Poller:
    """Polls ``GET /api/changes?since=`` every ``interval`` seconds (the baseline)."""

    def __init__(self, counter: Counter, url: str, interval: float, session: aiohttp.ClientSession) -> None:
        self.counter, self.url, self.interval, self.session = counter, url, interval, session
        self.requests = 0
        self.empty = 0
        self.position = ""

    async def start(self) -> None:
        async with self.session.get(f"{self.url}/api/orders?limit=1000") as response:
            body = await response.json()
        self.position = body["position"]
        self.counter.snapshot(body["orders"])

    async def run(self) -> None:
        await asyncio.sleep(self.interval * (hash(id(self)) % 1000) / 1000)  # spread the polls
        while True:
            async with self.session.get(f"{self.url}/api/changes", params={"since": self.position}) as response:
                body = await response.json()
            self.requests += 1
            self.position = body["position"]
            if body["changes"]:
                self.counter.changes(body["changes"])
            else:
                self.empty += 1
            await asyncio.sleep(self.interval)


def sampled_clients(clients: int, sample: int) -> set[int]:
    """``sample`` of ``clients`` indexes, evenly spread from the first to the last."""
    if sample >= clients:
        return set(range(clients))
    return {n * clients // sample for n in range(sample)}


async def _lag_probe(lags: list[float]) -> None:
    while True:
        started = time.monotonic()
        await asyncio.sleep(0.05)
        lags.append((time.monotonic() - started - 0.05) * 1000)


async def main(config: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    # The sampled clients are spread over the connection order: the service writes to its
    # clients in the order they joined, so the first ones would see every change early.
    sampled_ids = sampled_clients(config["clients"], config["sample"])
    parts = urlsplit(config["url"])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counters = [Counter(n in sampled_ids) for n in range(config["clients"])]
    kind = config["transport"]
    pollers: list[Poller] = []
    tasks: list[asyncio.Task[None]] = []
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        if kind == "polling":
            pollers = [Poller(c, config["url"], config["poll_interval"], session) for c in counters]
            for poller in pollers:
                await poller.start()
            tasks = [asyncio.create_task(p.run(), name="bench-poller") for p in pollers]
        else:
            protocol = SocketClient if kind == "socketio" else SseClient
            for counter in counters:
                ready: asyncio.Future[None] = loop.create_future()
                await loop.create_connection(lambda c=counter, r=ready: protocol(c, host, port, r), host, port)
                await asyncio.wait_for(ready, 30)
        lags: list[float] = []
        tasks.append(asyncio.create_task(_lag_probe(lags), name="bench-lag-probe"))
        cpu_before = time.process_time()
        print("READY", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time() - cpu_before
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
    sampled = [c for c in counters if c.sampled]
    return {
        "latencies": [latency for c in sampled for latency in c.latencies],
        "checks": [vars(c.check) | {"last": c.check.last} for c in sampled],
        "counted": [c.counted for c in counters if not c.sampled],
        "bytes": sum(c.bytes for c in counters),
        "cpu_seconds": cpu,
        "loop_lag_ms": summary(lags),
        "requests": sum(p.requests for p in pollers),
        "empty": sum(p.empty for p in pollers),
    }


def _run(config: dict[str, Any]) -> dict[str, Any]:
    """On uvloop when it is installed: the generator's own cost per message is part of every
    latency it measures (docs/performance.md, "The load generator")."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main(config))
    return uvloop.run(main(config))


if __name__ == "__main__":
    report = _run(json.loads(sys.argv[1]))
    os.set_blocking(sys.stdout.fileno(), True)  # an event loop may have left it non-blocking: no partial report
    report["checks"] = [
        {k: v for k, v in check.items() if k != "seen"} | {"last": {str(k): v for k, v in check["last"].items()}}
        for check in report["checks"]
    ]
    print(json.dumps(report), flush=True)
