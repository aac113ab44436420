"""``orders-live bench --instances 1,4,16``: what each instance following one database costs it.

K instances (``orders-live serve``, each its own process) follow one database while a writer
writes straight to it (``write_externally``: updates, every tenth write an insert, each stamped
with the time it was sent), at each rate in turn. The instances have no clients but one probe
each: a lean Socket.IO client subscribed to ``{}`` that times every change it gets against the
write's stamp, and checks versions for loss, duplicates and order. Per (K, rate):

- the database's CPU per commit: the CPU seconds of its server processes over the window (the
  embedded server the caller started, with every descendant, PostgreSQL's backends among them;
  the CPU of a backend that ended is its parent's ``children_*`` time), over the writes;
- the followers' lag, from a write being sent (its commit comes just after) to the probe having
  it; on PostgreSQL also from the commit itself (``committed_at``, taken in the commit);
- whether the writer kept its rate (the stamps' span), the instances' CPU, and the machine's
  busy share (a case on a saturated machine is marked not valid).

The window runs from the writer's start until every probe has every write (or ``SETTLE`` more
seconds). The instances start ``STARTING`` at a time, so that 16 fit on a small machine; each
keeps at most ``POOL`` PostgreSQL connections (a follower uses two: its LISTEN and its reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from orders_live.bench.balancer import Deployment, free_port, until_ready
from orders_live.bench.clients import STAMP, Counter, SocketClient
from orders_live.bench.instance_figures import (
    achieved_rate,
    is_valid,
    lag_figures,
    row,
    write_instances_report,
    writer_kept,
)
from orders_live.bench.writer import listing, write_externally, writer_orders

STARTING = 4  # instances starting at once
POOL = "4"  # ORDERS_LIVE_PG_POOL_SIZE of each instance
SETTLE = 30.0  # seconds after the writer's end for every probe to have every write
FAILURES = (RuntimeError, TimeoutError, OSError, aiohttp.ClientError)  # a case that could not finish
LOOK = 0.05  # seconds between looks at the probes then


def tree_cpu(root: psutil.Process) -> float:
    """CPU seconds of ``root`` and its descendants, those that ended and were waited for included."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


class FollowerCounter(Counter):
    """A probe's record: versions (``check``), lags from each write's stamp (``latencies``), the
    stamps, and on PostgreSQL the lags from each change's commit."""

    def __init__(self, commit_times: bool) -> None:
        super().__init__(sampled=True)
        self.commit_times = commit_times
        self.stamps: list[float] = []
        self.commit_lags: list[float] = []

    def changes(self, changes: list[dict[str, Any]]) -> None:
        now = time.time()
        super().changes(changes)
        for change in changes:
            name = (change["order"] or {}).get("product_name", "")
            if name.startswith(STAMP):
                self.stamps.append(float(name[len(STAMP) :]))
                if self.commit_times:
                    committed = datetime.fromisoformat(change["committed_at"].replace("Z", "+00:00"))
                    self.commit_lags.append((now - committed.timestamp()) * 1000)


async def start_instances(
    folder: Path, database_url: str, count: int, settings: dict[str, str] | None = None
) -> Deployment:
    """``count`` instances on the database, ``STARTING`` at a time, each live before this returns
    (``settings``: more environment for each, e.g. ``ORDERS_LIVE_PG_CHANGES``)."""
    ports = [free_port() for _ in range(count)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    services: list[asyncio.subprocess.Process] = []
    deployment = Deployment(services, urls, urls[0])
    slots = asyncio.Semaphore(STARTING)

    async def start(n: int, session: aiohttp.ClientSession) -> None:
        async with slots:
            env = {
                **os.environ,
                "ORDERS_LIVE_LOG_LEVEL": "WARNING",
                "ORDERS_LIVE_INSTANCE": f"follower-{n + 1}",
                "ORDERS_LIVE_PG_POOL_SIZE": POOL,
                **(settings or {}),
            }
            args = ["serve", "--port", str(ports[n]), "--data-dir", str(folder / f"instance-{n + 1}")]
            service = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "orders_live",
                *args,
                "--database-url",
                database_url,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            services.append(service)
            await until_ready(session, urls[n], service)

    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(start(n, session) for n in range(count)))
    except BaseException:
        await deployment.stop()
        raise
    deployment.services.sort(key=lambda s: s.pid)  # any order: only their processes are read
    return deployment


async def connect_probe(url: str, commit_times: bool) -> tuple[FollowerCounter, asyncio.Transport]:
    """A probe subscribed to ``{}`` on the instance at ``url`` (its snapshot in, its ack back)."""
    counter = FollowerCounter(commit_times)
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: SocketClient(counter, host, int(port), ready), host, int(port))
    await asyncio.wait_for(ready, 30)
    return counter, transport


async def run_case(
    database: str,
    deployment: Deployment,
    database_url: str,
    database_pid: int | None,
    ids: list[int],
    rate: float,
    duration: float,
) -> dict[str, Any]:
    postgres = database == "postgres"
    probes = [await connect_probe(url, postgres) for url in deployment.urls]
    counters = [counter for counter, _ in probes]
    server = psutil.Process(database_pid) if database_pid is not None else None
    services = deployment.service_processes()
    bench = psutil.Process()  # and its descendants: the writer, the instances, the embedded database
    try:
        database_before = tree_cpu(server) if server is not None else 0.0
        services_before = sum(tree_cpu(service) for service in services)
        bench_before = tree_cpu(bench)
        psutil.cpu_percent(None)  # the machine's busy share counts from here
        started = time.monotonic()
        written = await write_externally(database_url, ids, rate, duration)
        ended = time.monotonic()
        caught_up: float | None = None
        for _ in range(int(SETTLE / LOOK)):
            if all(counter.check.received >= written for counter in counters):
                caught_up = time.monotonic() - ended
                break
            await asyncio.sleep(LOOK)  # the next look: probes are still catching up
        window = time.monotonic() - started
        machine_busy = psutil.cpu_percent(None) / 100
        database_cpu = tree_cpu(server) - database_before if server is not None else None
        services_cpu = sum(tree_cpu(service) for service in services) - services_before
        bench_cpu = tree_cpu(bench) - bench_before
    finally:
        for _, transport in probes:
            transport.close()
    # Each write is one change: a probe that received as many as were written, with no duplicate
    # (counted), has them all. A probe still behind is checked against the orders' final versions.
    final: dict[int, int] | None = None
    if caught_up is None:
        try:
            final = {order: version for order, (version, _) in (await listing(deployment.url, {})).items()}
        except FAILURES as exc:  # an overloaded database may not answer the instance
            print(f"the final listing failed, only gaps count as lost: {exc}", flush=True)
        for counter in counters:
            counter.check.finish(final or {})
    stamps = sorted({stamp for counter in counters for stamp in counter.stamps})
    achieved = achieved_rate(stamps)
    return {
        "database": database,
        "instances": len(deployment.urls),
        "rate": rate,
        "duration_s": duration,
        "writes": written,
        "achieved_rate": achieved,
        "writer_kept": writer_kept(rate, int(rate * duration), written, achieved),
        "window_s": window,
        "database_cpu_s": database_cpu,
        "database_cpu_ms_per_commit": database_cpu / written * 1000 if database_cpu is not None and written else None,
        "database_cpu_cores": database_cpu / window if database_cpu is not None else None,
        "lag_ms": lag_figures([counter.latencies for counter in counters]),
        "commit_lag_ms": lag_figures([counter.commit_lags for counter in counters]) if postgres else None,
        "received": sum(counter.check.received for counter in counters),
        "lost": sum(counter.check.lost for counter in counters),
        "duplicated": sum(counter.check.duplicated for counter in counters),
        "out_of_order": sum(counter.check.out_of_order for counter in counters),
        "caught_up_after_s": caught_up,
        "tail_checked": caught_up is not None or final is not None,
        "instances_cpu_cores": services_cpu / window,
        "instances_rss_mb": sum(service.memory_info().rss for service in services) / 2**20,
        "machine_busy": machine_busy,
        "own_share": ((database_cpu or 0.0) + services_cpu) / window / (os.cpu_count() or 1),
        "writer_and_probes_cpu_cores": (bench_cpu - (database_cpu or 0.0) - services_cpu) / window,
        "bench_share": bench_cpu / window / (os.cpu_count() or 1),
        "valid": is_valid(machine_busy),
    }


async def run_instances(
    database: str,
    database_url: str,
    database_pid: int | None,
    counts: list[int],
    rates: list[float],
    duration: float,
    out: Path,
    command: str,
) -> None:
    """Each K in ``counts``: K fresh instances, then each rate; the report to ``out``."""
    results: list[dict[str, Any]] = []
    run = {
        "database": database,
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "results": results,
    }
    with tempfile.TemporaryDirectory(prefix="orders-live-instances-") as name:
        folder = Path(name)
        for count in counts:
            print(f"{database}: starting {count} instance(s) …", flush=True)
            deployment = await start_instances(folder / f"k{count}", database_url, count)
            try:
                ids = await writer_orders(deployment.url, {}, None)
                for rate in rates:
                    print(f"{database}: {count} instance(s) at {rate:g} writes/s …", flush=True)
                    try:
                        result = await run_case(database, deployment, database_url, database_pid, ids, rate, duration)
                    except FAILURES as exc:  # recorded; the next case is tried
                        result = {"database": database, "instances": count, "rate": rate, "error": repr(exc)[:300]}
                    results.append(result)
                    print(row(result), flush=True)
                    write_instances_report(run, out)  # so far: a later case that hangs leaves these
            finally:
                await deployment.stop()
    print(write_instances_report(run, out))
    print(f"written: {out / 'instances.md'}, {out / 'instances.json'}")
