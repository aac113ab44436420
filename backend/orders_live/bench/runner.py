"""``orders-live bench``: push (Socket.IO, SSE) against polling, measured end to end.

The service runs as its own process (embedded database unless ``--database-url``); the
clients run in separate processes (``bench/generator.py``); a writer in this process updates
orders at a fixed rate, stamping each write's start time into the order, so each client
measures write→receipt latency on the machine's one clock.

With ``Scopes`` (``--customers N``) the service runs in JWT mode, the writer's orders belong to
N customers in turn, and each case's clients hold the tokens its ``scope`` says
(``bench/scopes.py``). What each client is owed comes from the orders' versions before and
after the case: the changes of the orders it sees.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from orders_live.bench.accounting import Listing, account
from orders_live.bench.balancer import Deployment, cpu_seconds, rss, start_deployment
from orders_live.bench.balancer import free_port as free_port  # table_size's import
from orders_live.bench.capacity import (
    clients_per_address,
    ephemeral_ports,
    max_connections_for,
    processes_for,
)
from orders_live.bench.generator import split, start_generator
from orders_live.bench.loop_lag import lag_over_window, matched
from orders_live.bench.scopes import SECRET_ENV, Mode, Scopes, orders_by_customer
from orders_live.bench.stats import merge_endings, merge_worst, per_write, shutdown_counts, summary
from orders_live.bench.writer import listing, write_externally, write_rest, writer_orders

MAX_CONNECTIONS_ENV = "ORDERS_LIVE_MAX_CONNECTIONS"
SETTLE = 3.0  # seconds after the last write for deliveries to arrive
QUIET = 20.0  # seconds a case waits at most for the last one's clients to be gone (SSE: a keep-alive, 15 s)
SCOPE_LABELS: dict[Mode, str] = {
    "customer": "customer-scoped",
    "viewer": "unscoped (viewer)",
    "order": "unscoped, one order each (viewer)",
    "idle": "no deliveries (baseline)",
}


@dataclass
class Case:
    transport: str  # socketio | sse | polling
    clients: int
    rate: float
    duration: float
    poll_interval: float = 2.0
    scope: Mode | None = None  # what the clients hold (with Scopes; None: open mode)


class Bench:
    def __init__(
        self,
        processes: int | None,
        sample: int,
        database_url: str | None,
        external: bool = False,
        nginx: bool = False,
        database_pid: int | None = None,
        scopes: Scopes | None = None,
    ) -> None:
        self.processes, self.sample, self.database_url = processes, sample, database_url  # processes None: by clients
        self.workers = 1  # the service's ``serve --workers``
        self.max_connections = max_connections_for(1000)  # the service's, set for the cases (``run_bench``)
        self.scopes = scopes  # JWT mode, the writer's orders spread over customers
        self.headers = scopes.staff_headers() if scopes is not None else {}  # the bench's own REST calls
        self.database_pid = database_pid  # the embedded database the bench started, if it did
        self.external = external  # writes straight to the database from another process
        self.nginx = nginx  # two instances behind nginx (the repository's nginx.conf)
        self.deployment: Deployment | None = None
        self.url = ""
        self.folder = Path()

    async def start_service(self, folder: Path) -> None:
        self.folder = folder  # the generators' reports go here too
        env = self.scopes.environment() if self.scopes is not None else {}
        env[MAX_CONNECTIONS_ENV] = str(self.max_connections)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        self.deployment = await start_deployment(
            folder,
            self.database_url,
            self.nginx,
            self.database_pid,
            env=env,
            headers=self.headers,
            log=folder / "service.log",  # warnings and errors: shown when a case fails
            workers=self.workers,
        )
        self.url = self.deployment.url  # the one address clients and REST writes use
        customers = self.scopes.customers if self.scopes is not None else None
        self.order_ids = await writer_orders(self.url, self.headers, customers)

    async def stop_service(self) -> None:
        if self.deployment is not None:
            await self.deployment.stop()

    async def run(self, case: Case, terminate: bool = False) -> dict[str, Any]:
        """One case; with ``terminate``, the service is sent SIGTERM at its end, its clients
        still connected (``shutdown`` in the result)."""
        # The no-delivery baseline must not pay for the last case's clients: a closed event
        # stream is noticed at its next write (a change, or a keep-alive).
        left = await self.deployment.until_no_clients(QUIET) if self.deployment is not None else 0.0
        listed = await listing(self.url, self.headers)  # each order's version before the case (no write is due)
        scope, customers, env = None, 1, None
        if self.scopes is not None:
            scope, customers = case.scope, self.scopes.customers
            env = {**os.environ, SECRET_ENV: self.scopes.secret}
        orders = orders_by_customer({k: owner for k, (_, owner) in listed.items()})
        processes = processes_for(case.clients, self.processes)
        per_address = clients_per_address(ephemeral_ports())
        configs = split(self.url, case, processes, self.sample, (scope, customers, orders), per_address)
        for n, config in enumerate(configs):
            config["report"] = str(self.folder / f"generator-{n}.json")
        assert self.deployment is not None
        rss_idle = rss(self.deployment.service_processes())
        generators = [await start_generator(config, env) for config in configs]
        spans = []
        for generator in generators:
            assert generator.stdout is not None
            line = await generator.stdout.readline()
            if line.startswith(b"READY "):
                spans.append(json.loads(line[len(b"READY ") :]))
            else:
                for other in generators:  # none left behind
                    if other.returncode is None:
                        other.kill()
                nginx = self.deployment.front if self.deployment else None
                log = f"; nginx's error log ends: {nginx.errors()[-600:]}" if nginx else ""
                raise RuntimeError(f"a client process failed to start: {line!r}{log}")
        assert self.deployment is not None
        services, database = self.deployment.service_processes(), self.deployment.database_processes()
        rss_connected = rss(services)
        per_process_before = [cpu_seconds([p]) for p in services]
        front = self.deployment.front.processes() if self.deployment.front is not None else []
        cpu_before, database_before, front_before = cpu_seconds(services), cpu_seconds(database), cpu_seconds(front)
        machine_before = psutil.cpu_times()
        peak_rss = [rss(services)]  # with two instances: their sum, sampled together
        sampling = asyncio.create_task(self._sample_rss(services, peak_rss), name="bench-rss-sampler")
        metrics_before = await self.deployment.metrics()
        lag_before = await self.deployment.lag_buckets()
        started, window_start = time.monotonic(), time.time()
        try:
            if self.external:
                assert self.database_url is not None
                writes = await write_externally(self.database_url, self.order_ids, case.rate, case.duration)
            else:
                writes = await write_rest(self.url, self.headers, self.order_ids, case.rate, case.duration)
            await asyncio.sleep(SETTLE)  # the settle window: part of what is measured
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
        window = time.monotonic() - started
        lag = lag_over_window(*matched(lag_before, await self.deployment.lag_buckets()))
        per_process = [cpu_seconds([p]) - before for p, before in zip(services, per_process_before, strict=True)]
        cpu, database_cpu = cpu_seconds(services) - cpu_before, cpu_seconds(database) - database_before
        front_cpu = cpu_seconds(front) - front_before
        machine_busy = _busy_share(machine_before, psutil.cpu_times(), window)
        relisted = await listing(self.url, self.headers)  # and after it, the clients still connected
        moved = [
            [a - b for a, b in zip(after, before, strict=True)]
            for after, before in zip(await self.deployment.metrics(), metrics_before, strict=True)
        ]
        shutdown: dict[str, Any] | None = None
        stop = b"STOP\n"
        if terminate:
            sent = time.monotonic()
            seconds, exited = await self.deployment.terminate()
            shutdown = {"exit_s": seconds}
            stop = f"STOP {sent} {exited}\n".encode()
        reports = []
        for generator, config in zip(generators, configs, strict=True):
            assert generator.stdin is not None and generator.stdout is not None
            generator.stdin.write(stop)
            await generator.stdin.drain()
            done = await generator.stdout.readline()
            await generator.wait()
            if done.strip() != b"DONE":
                raise RuntimeError(f"a client process failed (exit code {generator.returncode}): {done!r}")
            reports.append(await asyncio.to_thread(_take_report, Path(config["report"])))
        result = self._result(case, writes, reports, listed, relisted, cpu, database_cpu, window)
        result["workers"] = self.workers
        result["generator_processes"] = len(configs)
        result["connect_s"] = max(end for _, end in spans) - min(start for start, _ in spans) if spans else None
        result["rss_idle_mb"], result["rss_connected_mb"] = rss_idle / 2**20, rss_connected / 2**20
        result["rss_per_connection_kb"] = (rss_connected - rss_idle) / case.clients / 1024
        result["event_loop_lag"] = lag
        result["service_cpu_per_process"] = [seconds / window for seconds in per_process]
        result["per_write"] = per_write(merge_worst(r["worst_per_write"] for r in reports), window_start)
        endings = merge_endings([r["ended"] for r in reports])
        result["connect_retries"] = sum(r["connect_retries"] for r in reports)
        result["connect_failures"] = sum(r["connect_failures"] for r in reports)  # left out of the accounting
        result["connections_ended"] = endings  # during the case: none expected, unless the service was stopped
        if shutdown is not None:
            result["shutdown"] = shutdown | shutdown_counts(endings, case.clients)
        result["server_peak_rss_mb"] = max(peak_rss) / 2**20
        result["machine_cpu_share"] = machine_busy
        result["clients_left_from_before"] = left
        changes, fan_outs = sum(m[0] for m in moved), sum(m[1] for m in moved)
        result["mean_batch"] = changes / fan_outs if fan_outs else None
        # The fan-out (rooms → subscriptions → each socket's write) is synchronous: its own time,
        # per delivery, is the delivering alone, without the writes' fixed cost.
        handed, fanning = sum(m[2] for m in moved), sum(m[3] for m in moved)
        result["fanout_us_per_delivery"] = fanning / handed * 1e6 if handed else math.nan
        result["writer"] = "external" if self.external else "rest"
        result["instances"] = len(services)
        name = f"{case.transport} {self.deployment.label}".strip()
        if self.workers != 1:
            name += f", {self.workers} workers"
        if scope is not None:
            result["scope"], result["customers"] = scope, customers
            name += f", {SCOPE_LABELS[scope]}, {customers} customers"
        if name != case.transport:
            result["case"] = name  # the report's label
        if self.deployment.front is not None:
            result["balancer_cpu_per_core"] = front_cpu / window
            result["instance_delivery_shares"] = [m[2] / handed for m in moved] if handed else []
        # The generator was the bottleneck, or the machine was full: the service was not measured alone.
        result["valid"] = result["valid"] and machine_busy < 0.9 and not result["connect_failures"]
        return result

    async def _sample_rss(self, processes: list[psutil.Process], peak: list[float]) -> None:
        while True:
            peak.append(rss(processes))
            await asyncio.sleep(0.25)  # the sampling period

    def _result(
        self,
        case: Case,
        writes: int,
        reports: list[dict[str, Any]],
        before: Listing,
        after: Listing,
        cpu: float,
        database_cpu: float,
        window: float,
    ) -> dict[str, Any]:
        owed, counts = account(case.transport, reports, before, after)
        latencies = [latency for report in reports for latency in report["latencies"]]
        generator_cpu = max(report["cpu_seconds"] for report in reports) / window
        lag_p99 = max(report["loop_lag_ms"]["p99"] for report in reports)
        requests = sum(report["requests"] for report in reports)
        return {
            "transport": case.transport,
            "clients": case.clients,
            "writes_per_s": case.rate,
            "duration_s": case.duration,
            "writes": writes,
            "deliveries": owed,
            "deliveries_per_s": owed / case.duration,
            "latency_ms": summary(latencies),
            **counts,
            "server_cpu_s": cpu,
            "window_s": window,
            "server_cpu_per_core": cpu / window,
            "server_us_per_delivery": cpu / owed * 1e6 if owed else math.nan,
            "database_cpu_per_core": database_cpu / window,
            "bytes_received": sum(report["bytes"] for report in reports),
            "poll_requests_per_s": requests / window if requests else None,
            "poll_empty_share": sum(r["empty"] for r in reports) / requests if requests else None,
            "generator_cpu_per_core": generator_cpu,
            "generator_loop_lag_p99_ms": lag_p99,
            "valid": generator_cpu < 0.9 and lag_p99 < 100,
        }


def _take_report(path: Path) -> dict[str, Any]:
    """A generator's report, read and removed."""
    report: dict[str, Any] = json.loads(path.read_text())
    path.unlink()
    return report


def _busy_share(before: Any, after: Any, window: float) -> float:
    """Share of the whole machine's CPU that was busy (every process) over the window."""
    fields = ("user", "system", "nice", "irq", "softirq")
    busy = sum(getattr(after, f) - getattr(before, f) for f in fields)
    return float(busy / (window * (os.cpu_count() or 1)))
