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
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from orders_live.bench.clients import STAMP
from orders_live.bench.report import markdown, write_report
from orders_live.bench.stats import SequenceCheck, merge_counts, summary

ORDERS = 50  # the writer cycles through this many orders
SETTLE = 3.0  # seconds after the last write for deliveries to arrive


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Case:
    transport: str  # socketio | sse | polling
    clients: int
    rate: float
    duration: float
    poll_interval: float = 2.0


class Bench:
    def __init__(self, processes: int, sample: int, database_url: str | None, external: bool = False) -> None:
        self.processes, self.sample, self.database_url = processes, sample, database_url
        self.external = external  # writes straight to the database from another process
        self.service: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start_service(self, folder: Path) -> None:
        port = free_port()
        args = [sys.executable, "-m", "orders_live", "serve", "--port", str(port), "--data-dir", str(folder)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        env = {**os.environ, "ORDERS_LIVE_LOG_LEVEL": "WARNING", "ORDERS_LIVE_INSTANCE": "bench"}
        self.service = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        self.url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"{self.url}/api/orders?limit=1") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            existing = (await (await session.get(f"{self.url}/api/orders?limit=1000")).json())["orders"]
            for n in range(len(existing), ORDERS):
                await session.post(f"{self.url}/api/orders", json={"customer_name": f"Bench {n}", "product_name": "-"})
            orders = (await (await session.get(f"{self.url}/api/orders?limit=1000")).json())["orders"]
        self.order_ids = sorted(o["id"] for o in orders)[:ORDERS]

    async def stop_service(self) -> None:
        if self.service is not None:
            self.service.terminate()
            await asyncio.wait_for(self.service.wait(), 30)

    def _processes(self) -> list[psutil.Process]:
        assert self.service is not None
        main = psutil.Process(self.service.pid)
        return [main, *main.children(recursive=True)]

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
                raise RuntimeError(f"a client process failed to start: {line!r}")
        service, database = self._processes()[0], self._processes()[1:]
        cpu_before = sum(p.cpu_times().user + p.cpu_times().system for p in [service])
        database_before = sum(p.cpu_times().user + p.cpu_times().system for p in database)
        machine_before = psutil.cpu_times()
        peak_rss = [service.memory_info().rss]
        sampling = asyncio.create_task(self._sample_rss(service, peak_rss))
        batches_before = await self._batches()
        started = time.monotonic()
        writes = await (self._write_externally(case) if self.external else self._write(case))
        await asyncio.sleep(SETTLE)
        window = time.monotonic() - started
        cpu = sum(p.cpu_times().user + p.cpu_times().system for p in [service]) - cpu_before
        database_cpu = sum(p.cpu_times().user + p.cpu_times().system for p in database) - database_before
        machine_busy = _busy_share(machine_before, psutil.cpu_times(), window)
        sampling.cancel()
        reports = []
        for generator in generators:
            assert generator.stdin is not None and generator.stdout is not None
            generator.stdin.write(b"STOP\n")
            await generator.stdin.drain()
            reports.append(json.loads(await generator.stdout.readline()))
            await generator.wait()
        async with aiohttp.ClientSession() as session:
            orders = (await (await session.get(f"{self.url}/api/orders?limit=1000")).json())["orders"]
        final = {o["id"]: o["version"] for o in orders}
        result = self._result(case, writes, reports, final, cpu, database_cpu, window, max(peak_rss))
        result["machine_cpu_share"] = machine_busy
        changes, fan_outs = (
            after - before for after, before in zip(await self._batches(), batches_before, strict=True)
        )
        result["mean_batch"] = changes / fan_outs if fan_outs else None
        result["writer"] = "external" if self.external else "rest"
        # The generator was the bottleneck, or the machine was full: the service was not measured alone.
        result["valid"] = result["valid"] and machine_busy < 0.9
        return result

    async def _sample_rss(self, process: psutil.Process, peak: list[float]) -> None:
        while True:
            peak.append(process.memory_info().rss)
            await asyncio.sleep(0.25)

    async def _batches(self) -> tuple[float, float]:
        """(changes, fan-outs) so far, from the service's /metrics."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as response:
            text = await response.text()
        values = {"sum": 0.0, "count": 0.0}
        for line in text.splitlines():
            for kind in values:
                if line.startswith(f"orders_live_fanout_batch_changes_{kind} "):
                    values[kind] = float(line.split()[1])
        return values["sum"], values["count"]

    async def _write_externally(self, case: Case) -> int:
        """The same updates, sent straight to the database by ``orders_live.sources.direct_writer``."""
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
                tasks.append(asyncio.create_task(one(n)))
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


async def run_bench(
    cases: list[Case], out: Path, processes: int, sample: int, database_url: str | None, external: bool = False
) -> None:
    bench = Bench(processes, sample, database_url, external)
    with tempfile.TemporaryDirectory(prefix="orders-live-bench-") as folder:
        await bench.start_service(Path(folder))
        results = []
        try:
            for case in cases:
                print(f"running {case.transport} × {case.clients} clients at {case.rate:g} writes/s …", flush=True)
                result = await bench.run(case)
                results.append(result)
                print(markdown([result]).splitlines()[-1], flush=True)
        finally:
            await bench.stop_service()
    write_report(out, results, processes, sample, database_url, SETTLE)
