"""The benchmark's load generator: many lean clients (``bench/clients.py``) in one process.

Run as ``python -m orders_live.bench.generator '<json config>'`` (``start_generator``). It
opens the clients, prints ``READY``, and on a ``STOP`` line (or end of input) writes one JSON
report to the file ``report`` names, then prints ``DONE`` (a file, not a line on the pipe: the
report holds every sampled latency, megabytes at a thousand clients). The report includes this
process's own CPU time and event-loop lag, so a run where the generator, not the service, was
the bottleneck can be marked invalid.

The config (``split``): ``url``, ``transport`` (socketio | sse | polling), ``clients``,
``sampled`` (the indexes of the clients that parse every change), ``poll_interval``,
``report``, and, in JWT mode,
``scope``: ``mode`` (``bench/scopes.py``), ``customers``, ``first`` (the index of this
process's first client among all of them, which picks its customer) and ``orders`` (each
customer's order ids). The JWT secret comes in the environment (``scopes.SECRET_ENV``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

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
from orders_live.bench.stats import summary

Scope = tuple[Mode | None, int, dict[str, list[int]]]  # what clients hold, customers, their order ids


class Planned(Protocol):
    transport: str
    clients: int
    poll_interval: float


def split(url: str, case: Planned, processes: int, sample: int, scope: Scope) -> list[dict[str, Any]]:
    """The config of each generator process: the case's clients split evenly between
    ``processes``, ``sample`` of them sampled in all (spread over each process's connection
    order and, when scoped, over the customers: ``spread_sample``)."""
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
            for counter, (_, token, order) in zip(counters, identities, strict=True):
                ready: asyncio.Future[None] = loop.create_future()
                if kind == "socketio":
                    await loop.create_connection(
                        lambda c=counter, r=ready, t=token, o=order: SocketClient(c, host, port, r, t, o), host, port
                    )
                else:
                    ticket = await _ticket(session, config["url"], token) if token else None
                    await loop.create_connection(
                        lambda c=counter, r=ready, t=ticket: SseClient(c, host, port, r, t), host, port
                    )
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
    return {
        "latencies": [latency for c in counters if c.sampled for latency in c.latencies],
        "checks": [c.report() for c in counters if c.sampled],
        "counted": [c.report() for c in counters if not c.sampled],
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
    settings = json.loads(sys.argv[1])
    Path(settings["report"]).write_text(json.dumps(_run(settings)))
    print("DONE", flush=True)
