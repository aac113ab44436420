"""The floor under ``bench --clients 10000``'s connect time and memory: a bare aiohttp server.

It speaks just enough Engine.IO and Socket.IO for the bench's own client (``SocketClient``):
the open packet, the namespace connect, and for a subscribe one prepared snapshot page of 20
orders and its ack. No sessions, rooms, tokens, hub or database. Whatever the service adds on
top of this is what Engine.IO, Socket.IO and orders-live cost; docs/performance.md ("Ten
thousand clients") compares the two.

    .venv/bin/python -m orders_live.bench.websocket_floor 10000
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import multiprocessing.synchronize
import resource
import sys
import time

import psutil
import uvloop
from aiohttp import web

from orders_live.bench.clients import Counter, SocketClient

ORDERS = [
    {"id": n, "customer_name": "B", "product_name": "-", "status": "pending", "updated_at": "2026-01-01T00:00:00.000Z"}
    for n in range(1, 21)
]
SNAPSHOT = '42["snapshot",' + json.dumps({"filter": {}, "orders": ORDERS, "reset": True}) + "]"
ACK = '430[{"ok":true,"position":"m:20","counts":{"pending":20},"snapshot":20}]'
PROCESSES = 4


async def websocket(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(autoping=False)
    await socket.prepare(request)
    sid = str(id(socket))
    opened = {"sid": sid, "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000}
    await socket.send_str("0" + json.dumps(opened))
    async for message in socket:
        if message.data.startswith("40"):
            await socket.send_str("40" + json.dumps({"sid": sid}))
        elif message.data.startswith("42"):
            await socket.send_str(SNAPSHOT)
            await socket.send_str(ACK)
    return socket


def serve(port: int, up: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        gc.freeze()
        app = web.Application()
        app.router.add_get("/socket.io/", websocket)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        up.set()
        await asyncio.Event().wait()

    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    uvloop.run(main())


def connect(port: int, count: int, source: str, started: float, done: multiprocessing.Queue[float]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(200)
        held: list[object] = []

        async def one() -> None:
            async with gate:
                ready = loop.create_future()
                held.append(
                    await loop.create_connection(
                        lambda: SocketClient(Counter(False), "127.0.0.1", port, ready),
                        "127.0.0.1",
                        port,
                        local_addr=(source, 0),
                    )
                )
                await asyncio.wait_for(ready, 30)

        await asyncio.gather(*(one() for _ in range(count)))
        done.put(time.time())
        await asyncio.sleep(3600)

    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    uvloop.run(main())


def main(clients: int, port: int = 19555) -> None:
    up = multiprocessing.Event()
    done: multiprocessing.Queue[float] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(port, up), daemon=True)
    server.start()
    up.wait(10)
    measured = psutil.Process(server.pid)
    rss, cpu = measured.memory_info().rss, measured.cpu_times()
    started = time.time()
    shares = [clients // PROCESSES + (n < clients % PROCESSES) for n in range(PROCESSES)]
    workers = [
        multiprocessing.Process(target=connect, args=(port, share, f"127.0.0.{2 + n}", started, done), daemon=True)
        for n, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    connected = max(done.get(timeout=120) for _ in workers) - started
    used = measured.cpu_times()
    time.sleep(1)
    per = (measured.memory_info().rss - rss) / clients / 1024
    print(
        f"bare aiohttp, {clients} clients: connected in {connected:.2f} s; server CPU user "
        f"{used.user - cpu.user:.2f} s, system {used.system - cpu.system:.2f} s; {per:.1f} KB RSS per connection"
    )
    for process in (*workers, server):
        process.kill()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
