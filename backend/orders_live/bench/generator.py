"""The benchmark's load generator: many lean clients (``bench/clients.py``) in one process.

Run as ``python -m orders_live.bench.generator '<json config>'`` (``start_generator``). It
opens the clients, prints ``READY``, and on a ``STOP`` line (or end of input) writes one JSON
report to the file ``report`` names, then prints ``DONE`` (a file, not a line on the pipe: the
report holds every sampled latency, megabytes at a thousand clients). The report includes this
process's own CPU time and event-loop lag, so a run where the generator, not the service, was
the bottleneck can be marked invalid.

The config (``split``): ``url``, ``transport`` (socketio | sse | polling), ``clients``,
``sampled`` (the indexes of the clients that parse every change), ``poll_interval``,
``report``, ``sources`` (runs of clients and the source address each run connects from; none:
127.0.0.1 for all), ``in_flight`` (connections opened at once, each until it is subscribed:
``READY`` carries the monotonic times of the first connect and of the last subscribe; a client
closed before it was subscribed, by a service too busy to accept its connect within its
``auth_timeout``, tries again, ``ATTEMPTS`` times in all: ``connect_retries`` in the report,
and ``connect_failures`` the clients left out, never subscribed), and, in JWT mode,
``scope``: ``mode`` (``bench/scopes.py``), ``customers``, ``first`` (the index of this
process's first client among all of them, which picks its customer) and ``orders`` (each
customer's order ids). The JWT secret comes in the environment (``scopes.SECRET_ENV``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from orders_live.bench.capacity import source_plan
from orders_live.bench.clients import Counter, Poller, SocketClient, SseClient
from orders_live.bench.scopes import (
    SECRET_ENV,
    Mode,
    client_customer,
    client_order,
    client_token,
    orders_seen,
    spread_sample,
)
from orders_live.bench.stats import merge_worst, summary
from orders_live.process_limits import raise_open_files_limit

IN_FLIGHT = 128  # connections the generators open at once in all, each until it is subscribed
ATTEMPTS = 5  # a client the service closed before it was subscribed connects again, this many times in all
BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux's value

Scope = tuple[Mode | None, int, dict[str, list[int]]]  # what clients hold, customers, their order ids


class Planned(Protocol):
    transport: str
    clients: int
    poll_interval: float


def split(
    url: str, case: Planned, processes: int, sample: int, scope: Scope, per_address: int | None = None
) -> list[dict[str, Any]]:
    """The config of each generator process: the case's clients split evenly between
    ``processes``, ``sample`` of them sampled in all (spread over each process's connection
    order and, when scoped, over the customers: ``spread_sample``), and, past ``per_address``
    clients in all, their source addresses (``capacity.source_plan``)."""
    mode, customers, orders = scope
    per_process = [case.clients // processes + (n < case.clients % processes) for n in range(processes)]
    configs: list[dict[str, Any]] = []
    first = 0
    taken: dict[str | None, int] = {}  # how often each customer was sampled, across the processes
    for count in per_process:
        if count == 0:
            continue
        share = min(count, math.ceil(sample * count / case.clients))

        def customer_of(n: int, at: int = first) -> str | None:
            return client_customer(mode, at + n, customers)

        config = {"url": url, "transport": case.transport, "clients": count, "poll_interval": case.poll_interval}
        config["sampled"] = spread_sample(count, share, customer_of, taken)
        if per_address is not None:
            config["sources"] = source_plan(first, count, case.clients, per_address)
        config["in_flight"] = max(16, IN_FLIGHT // processes)
        if mode is not None:
            config["scope"] = {"mode": mode, "customers": customers, "first": first, "orders": orders}
        configs.append(config)
        first += count
    return configs


async def start_generator(config: dict[str, Any], env: dict[str, str] | None) -> asyncio.subprocess.Process:
    """A generator process; it prints ``READY`` once its clients are subscribed."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orders_live.bench.generator",
        json.dumps(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )


async def _lag_probe(lags: list[float]) -> None:
    while True:
        started = time.monotonic()
        await asyncio.sleep(0.05)
        lags.append((time.monotonic() - started - 0.05) * 1000)


def _identities(config: dict[str, Any]) -> list[tuple[str | None, str | None, int | None]]:
    """Each client's customer (None: it sees every order), token (None: open mode) and the one
    order it subscribes to (None: every order in its scope)."""
    scope = config.get("scope")
    if scope is None:
        return [(None, None, None)] * config["clients"]
    secret = os.environ[SECRET_ENV]
    mode, customers, first, orders = scope["mode"], scope["customers"], scope["first"], scope["orders"]
    return [
        (
            client_customer(mode, first + n, customers),
            client_token(mode, first + n, customers, secret),
            client_order(mode, first + n, customers, orders),
        )
        for n in range(config["clients"])
    ]


async def _ticket(session: aiohttp.ClientSession, url: str, token: str) -> str:
    """A stream ticket for an EventSource-like client (it cannot send the token itself)."""
    async with session.post(f"{url}/api/stream-tickets", headers={"Authorization": f"Bearer {token}"}) as response:
        body = await response.json()
        if response.status != 201:
            raise RuntimeError(f"no stream ticket: {response.status} {body}")
        return str(body["ticket"])


async def main(config: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    # The sampled clients are spread over the connection order (the runner picks them): the
    # service writes to its clients in the order they joined, so the first ones would see every
    # change early.
    sampled = set(config["sampled"])
    parts = urlsplit(config["url"])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    identities = _identities(config)
    orders: dict[str, list[int]] = (config.get("scope") or {}).get("orders", {})
    counters = [
        Counter(n in sampled, customer, orders_seen(customer, order, orders), order)
        for n, (customer, _, order) in enumerate(identities)
    ]
    kind = config["transport"]
    pollers: list[Poller] = []
    retried: list[int] = []  # a client's attempt that the service closed before it was subscribed
    failed: list[Counter] = []  # clients that never got subscribed
    connected = (time.monotonic(), time.monotonic())  # the first connect, the last client subscribed
    tasks: list[asyncio.Task[None]] = []
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        if kind == "polling":
            pollers = [
                Poller(
                    c, config["url"], config["poll_interval"], session, {"Authorization": f"Bearer {t}"} if t else None
                )
                for c, (_, t, _) in zip(counters, identities, strict=True)
            ]
            for poller in pollers:
                await poller.start()
            tasks = [asyncio.create_task(p.run(), name="bench-poller") for p in pollers]
        else:
            sources = [
                source for source, count in config.get("sources") or [(None, len(counters))] for _ in range(count)
            ]
            opening = asyncio.Semaphore(config.get("in_flight", IN_FLIGHT))

            async def open_one(counter: Counter, token: str | None, order: int | None, source: str | None) -> None:
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        await open_once(counter, token, order, source)
                        return
                    except (RuntimeError, OSError, TimeoutError):
                        counter.ended = None
                        if attempt == ATTEMPTS:
                            failed.append(counter)  # left out of the accounting, counted apart
                            return
                        retried.append(attempt)
                        await asyncio.sleep(attempt)  # the service is busy: give it room

            async def open_once(counter: Counter, token: str | None, order: int | None, source: str | None) -> None:
                async with opening:
                    ready: asyncio.Future[None] = loop.create_future()
                    if kind == "socketio":
                        factory: Callable[[], asyncio.Protocol] = lambda: SocketClient(  # noqa: E731
                            counter, host, port, ready, token, order
                        )
                    else:
                        ticket = await _ticket(session, config["url"], token) if token else None
                        factory = lambda: SseClient(counter, host, port, ready, ticket)  # noqa: E731
                    await _connect(loop, factory, host, port, source)
                    await asyncio.wait_for(ready, 60)

            opened = time.monotonic()
            await asyncio.gather(
                *(
                    open_one(counter, token, order, source)
                    for counter, (_, token, order), source in zip(counters, identities, sources, strict=True)
                )
            )
            connected = (opened, time.monotonic())
        lags: list[float] = []
        tasks.append(asyncio.create_task(_lag_probe(lags), name="bench-lag-probe"))
        cpu_before = time.process_time()
        print("READY", json.dumps(connected), flush=True)
        command = await loop.run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time() - cpu_before
        words = command.split()  # STOP, or STOP <SIGTERM sent> <service exited> (monotonic)
        stopped = (float(words[1]), float(words[2])) if len(words) > 2 else None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
    failing = set(failed)
    return {
        "connected": connected,
        "ended": endings(counters, stopped),
        "connect_retries": len(retried),
        "connect_failures": len(failed),
        "worst_per_write": merge_worst(c.worst for c in counters if c.sampled),
        "latencies": [latency for c in counters if c.sampled for latency in c.latencies],
        "checks": [c.report() for c in counters if c.sampled and c not in failing],
        "counted": [c.report() for c in counters if not c.sampled and c not in failing],
        "bytes": sum(c.bytes for c in counters),
        "cpu_seconds": cpu,
        "loop_lag_ms": summary(lags),
        "requests": sum(p.requests for p in pollers),
        "empty": sum(p.empty for p in pollers),
    }


async def _connect(
    loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol], host: str, port: int, source: str | None
) -> None:
    """A connection from ``source`` (a 127.0.0.x address; None: the kernel's choice). The port
    is picked at connect (``IP_BIND_ADDRESS_NO_PORT``), so a source address holds as many
    connections as there are ephemeral ports, as the kernel's own choice does."""
    if source is None:
        await loop.create_connection(factory, host, port)
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    await loop.create_connection(factory, sock=sock)


def endings(counters: list[Counter], stopped: tuple[float, float] | None) -> dict[str, Any]:
    """How many connections ended, and how (``Counter.ended_as``; ``open``: not ended). With
    ``stopped`` (the service was sent SIGTERM, and exited: monotonic times), how many ended each
    way before it exited, and the first and last end after the SIGTERM (seconds)."""
    found: dict[str, Any] = dict.fromkeys(("disconnect", "close", "tcp", "reset", "open"), 0)
    times = []
    for counter in counters:
        if counter.ended is None:
            found["open"] += 1
            continue
        how, at = counter.ended
        found[how] += 1
        if stopped is not None and at <= stopped[1]:
            found[f"{how}_before_exit"] = found.get(f"{how}_before_exit", 0) + 1
            times.append(at - stopped[0])
    if times:
        found["first_end_s"], found["last_end_s"] = min(times), max(times)
    return found


def _run(config: dict[str, Any]) -> dict[str, Any]:
    """On uvloop when it is installed: the generator's own cost per message is part of every
    latency it measures (docs/performance.md, "The load generator")."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main(config))
    return uvloop.run(main(config))


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    raise_open_files_limit(settings["clients"])
    Path(settings["report"]).write_text(json.dumps(_run(settings)))
    print("DONE", flush=True)
