"""``orders-live bench``: push (Socket.IO, SSE) against polling, measured end to end.

The service runs as its own process (embedded database unless ``--database-url``); the
clients run in separate processes (``bench_clients``); a writer in this process updates
orders at a fixed rate, stamping each write's start time into the order, so each client
measures write→receipt latency on the machine's one clock.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from orders_live.bench.balancer import Deployment, cpu_seconds, rss, start_deployment
from orders_live.bench.balancer import free_port as free_port  # table_size's import
from orders_live.bench.clients import STAMP
from orders_live.bench.report import markdown, write_report
from orders_live.bench.stats import SequenceCheck, merge_counts, summary

ORDERS = 50  # the writer cycles through this many orders
SETTLE = 3.0  # seconds after the last write for deliveries to arrive


@dataclass
class Case:
    transport: str  # socketio | sse | polling
    clients: int
    rate: float
    duration: float
    poll_interval: float = 2.0


class Bench:
    def __init__(
        self,
        processes: int,
        sample: int,
        database_url: str | None,
        external: bool = False,
        nginx: bool = False,
        database_pid: int | None = None,
    ) -> None:
        self.processes, self.sample, self.database_url = processes, sample, database_url
        self.database_pid = database_pid  # the embedded database the bench started, if it did
        self.external = external  # writes straight to the database from another process
        self.nginx = nginx  # two instances behind nginx (the repository's nginx.conf)
        self.deployment: Deployment | None = None
        self.url = ""

    async def start_service(self, folder: Path) -> None:
        self.deployment = await start_deployment(folder, self.database_url, self.nginx, self.database_pid)
        self.url = self.deployment.url  # the one address clients and REST writes use
        async with aiohttp.ClientSession() as session:
            existing = (await (await session.get(f"{self.url}/api/orders?limit=1000")).json())["orders"]
            for n in range(len(existing), ORDERS):
                await session.post(f"{self.url}/api/orders", json={"customer_name": f"Bench {n}", "product_name": "-"})
            orders = (await (await session.get(f"{self.url}/api/orders?limit=1000")).json())["orders"]
        self.order_ids = sorted(o["id"] for o in orders)[:ORDERS]

    async def stop_service(self) -> None:
        if self.deployment is not None:
            await self.deployment.stop()

    async def run(self, case: Case) -> dict[str, Any]:
        per_process = [
            case.clients // self.processes + (n < case.clients % self.processes) for n in range(self.processes)
        ]
        samples = [min(count, math.ceil(self.sample * count / case.clients)) for count in per_process]
        generators = []
        for count, sample in zip(per_process, samples, strict=True):
            if count == 0:
                continue
            config = {
                "url": self.url,
                "transport": case.transport,
                "clients": count,
                "sample": sample,
                "poll_interval": case.poll_interval,
            }
            generators.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "orders_live.bench.clients",
                    json.dumps(config),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=2**26,  # the report is one long line
                )
            )
        for generator in generators:
            assert generator.stdout is not None
            line = await generator.stdout.readline()
            if line.strip() != b"READY":
                nginx = self.deployment.front if self.deployment else None
                log = f"; nginx's error log ends: {nginx.errors()[-600:]}" if nginx else ""
                raise RuntimeError(f"a client process failed to start: {line!r}{log}")
        assert self.deployment is not None
        services, database = self.deployment.service_processes(), self.deployment.database_processes()
        front = self.deployment.front.processes() if self.deployment.front is not None else []
        cpu_before, database_before, front_before = cpu_seconds(services), cpu_seconds(database), cpu_seconds(front)
        machine_before = psutil.cpu_times()
        peak_rss = [rss(services)]  # with two instances: their sum, sampled together
        sampling = asyncio.create_task(self._sample_rss(services, peak_rss), name="bench-rss-sampler")
        metrics_before = await self.deployment.metrics()
        started = time.monotonic()
        try:
            writes = await (self._write_externally(case) if self.external else self._write(case))
            await asyncio.sleep(SETTLE)  # the settle window: part of what is measured
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
        window = time.monotonic() - started
        cpu, database_cpu = cpu_seconds(services) - cpu_before, cpu_seconds(database) - database_before
        front_cpu = cpu_seconds(front) - front_before
        machine_busy = _busy_share(machine_before, psutil.cpu_times(), window)
        reports = []
        for generator in generators:
            assert generator.stdin is not None and generator.stdout is not None
            generator.stdin.write(b"STOP\n")
            await generator.stdin.drain()
            reports.append(json.loads(await generator.stdout.readline()))
            await generator.wait()
        final = await self._final_versions()
        result = self._result(case, writes, reports, final, cpu, database_cpu, window, max(peak_rss))
        result["machine_cpu_share"] = machine_busy
        moved = [
            [a - b for a, b in zip(after, before, strict=True)]
            for after, before in zip(await self.deployment.metrics(), metrics_before, strict=True)
        ]
        changes, fan_outs = sum(m[0] for m in moved), sum(m[1] for m in moved)
        result["mean_batch"] = changes / fan_outs if fan_outs else None
        result["writer"] = "external" if self.external else "rest"
        result["instances"] = len(services)
        if self.deployment.front is not None:
            result["case"] = f"{case.transport} {self.deployment.label}"
            result["balancer_cpu_per_core"] = front_cpu / window
            delivered = sum(m[2] for m in moved)
            result["instance_delivery_shares"] = [m[2] / delivered for m in moved] if delivered else []
        # The generator was the bottleneck, or the machine was full: the service was not measured alone.
        result["valid"] = result["valid"] and machine_busy < 0.9
        return result

    async def _sample_rss(self, processes: list[psutil.Process], peak: list[float]) -> None:
        while True:
            peak.append(rss(processes))
            await asyncio.sleep(0.25)  # the sampling period

    async def _final_versions(self) -> dict[int, int]:
        """Every order's version now (the external writer inserts too): the REST list, page by page."""
        final: dict[int, int] = {}
        before: str | None = None
        async with aiohttp.ClientSession() as session:
            while True:
                query = f"limit=1000&before={before}" if before else "limit=1000"
                page = await (await session.get(f"{self.url}/api/orders?{query}")).json()
                final.update((o["id"], o["version"]) for o in page["orders"])
                before = page["next_before"]
                if before is None:
                    return final

    async def _write_externally(self, case: Case) -> int:
        """Updates and inserts, sent straight to the database by ``orders_live.sources.direct_writer``."""
        assert self.database_url is not None
        config = {"url": self.database_url, "ids": self.order_ids, "rate": case.rate, "duration": case.duration}
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orders_live.sources.direct_writer",
            json.dumps(config),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await writer.communicate()
        if writer.returncode != 0:
            raise RuntimeError(f"the external writer failed ({writer.returncode})")
        return int(json.loads(out.decode().strip().splitlines()[-1])["writes"])

    async def _write(self, case: Case) -> int:
        """Updates at ``case.rate`` per second, each stamped with its start time."""
        done = 0
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

            async def one(n: int) -> None:
                nonlocal done
                order_id = self.order_ids[n % len(self.order_ids)]
                body = {"product_name": f"{STAMP}{time.time():.6f}"}
                async with session.patch(f"{self.url}/api/orders/{order_id}", json=body) as response:
                    if response.status == 200:
                        done += 1

            start = loop.time()
            tasks = []
            for n in range(int(case.rate * case.duration)):
                delay = start + n / case.rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(n), name=f"bench-write-{n}"))
            await asyncio.gather(*tasks)
        return done

    def _result(
        self,
        case: Case,
        writes: int,
        reports: list[dict[str, Any]],
        final: dict[int, int],
        cpu: float,
        database_cpu: float,
        window: float,
        peak_rss: float,
    ) -> dict[str, Any]:
        checks = []
        for report in reports:
            for raw in report["checks"]:
                check = SequenceCheck(
                    last={int(k): v for k, v in raw["last"].items()},
                    received=raw["received"],
                    lost=raw["lost"],
                    duplicated=raw["duplicated"],
                    out_of_order=raw["out_of_order"],
                )
                check.finish(final)
                checks.append({k: getattr(check, k) for k in ("received", "lost", "duplicated", "out_of_order")})
        counts = merge_counts(checks)
        counted = [c for report in reports for c in report["counted"]]
        if case.transport != "polling":  # pollers never see every version: they see the latest
            counts["lost"] += sum(max(0, writes - c) for c in counted)
            counts["duplicated"] += sum(max(0, c - writes) for c in counted)
        else:
            counts = {k: 0 for k in counts} | {"received": counts["received"]}
        deliveries = writes * case.clients
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
            "deliveries": deliveries,
            "deliveries_per_s": deliveries / case.duration,
            "latency_ms": summary(latencies),
            **counts,
            "server_cpu_s": cpu,
            "server_cpu_per_core": cpu / window,
            "server_us_per_delivery": cpu / deliveries * 1e6 if deliveries else math.nan,
            "database_cpu_per_core": database_cpu / window,
            "server_peak_rss_mb": peak_rss / 2**20,
            "bytes_received": sum(report["bytes"] for report in reports),
            "poll_requests_per_s": requests / window if requests else None,
            "poll_empty_share": sum(r["empty"] for r in reports) / requests if requests else None,
            "generator_cpu_per_core": generator_cpu,
            "generator_loop_lag_p99_ms": lag_p99,
            "valid": generator_cpu < 0.9 and lag_p99 < 100,
        }


def _busy_share(before: Any, after: Any, window: float) -> float:
    """Share of the whole machine's CPU that was busy (every process) over the window."""
    fields = ("user", "system", "nice", "irq", "softirq")
    busy = sum(getattr(after, f) - getattr(before, f) for f in fields)
    return float(busy / (window * (os.cpu_count() or 1)))


async def run_bench(cases: list[Case], out: Path, bench: Bench) -> None:
    """Each case in turn against ``bench``'s deployment; the report goes to ``out``."""
    results = []
    with tempfile.TemporaryDirectory(prefix="orders-live-bench-") as folder:
        try:
            await bench.start_service(Path(folder))
            for case in cases:
                print(f"running {case.transport} × {case.clients} clients at {case.rate:g} writes/s …", flush=True)
                result = await bench.run(case)
                results.append(result)
                print(markdown([result]).splitlines()[-1], flush=True)
        finally:
            await bench.stop_service()
    write_report(out, results, bench.processes, bench.sample, bench.database_url, SETTLE)
