"""``orders-live bench --orders N``: what a table's size costs.

For a database preloaded with N orders (and an empty one, for the baseline), the service is
started as its own process and measured: the time until it is live (``/readyz``), its RSS
then, against the empty table's (bytes per order), the time from ``subscribe`` to the first
snapshot page and to the ack for ``{}``, for one status and for a window of 500 (a lean
Socket.IO client that reads every page), and a burst of inserts made in one statement
while a client follows everything: how long until the client has them all, and the
service's peak RSS meanwhile. The databases are the caller's (``preload`` writes to them),
so this module touches no driver.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from orders_live.bench.runner import free_port
from orders_live.client.lean_socketio import LeanSocketIO

Insert = Callable[[str, int], Coroutine[Any, Any, None]]  # (database url, how many orders)
WINDOW = 500


@dataclass
class TableRun:
    source: str
    orders: int
    preload_s: float
    startup_s: float
    rss_mb: float
    empty_rss_mb: float
    bytes_per_order: float
    first_page_all_ms: float
    ack_all_s: float
    sent_all: int
    first_page_status_ms: float
    ack_status_s: float
    sent_status: int
    ack_window_ms: float
    burst: int
    burst_caught_up_s: float
    burst_peak_rss_mb: float


class Served:
    """``orders-live serve`` on a database, as a child process."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        """Seconds from spawn to live (``/readyz`` answers 200)."""
        folder = tempfile.mkdtemp(prefix="orders-live-table-")
        env = {**os.environ, "ORDERS_LIVE_LOG_LEVEL": "WARNING", "ORDERS_LIVE_INSTANCE": "bench-table"}
        started = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orders_live",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            folder,
            "--database-url",
            self.database_url,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"the service exited with {self.process.returncode}")
                try:
                    async with session.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return time.monotonic() - started
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.02)

    def rss(self) -> int:
        assert self.process is not None
        return int(psutil.Process(self.process.pid).memory_info().rss)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)


async def subscribe_timing(url: str, payload: dict[str, Any]) -> tuple[float, float, int]:
    """(seconds to the first snapshot page, seconds to the ack, orders sent) for one subscribe."""
    client = LeanSocketIO(url)
    await client.connect()
    try:
        started = time.perf_counter()
        client.emit("subscribe", payload)
        first_page = 0.0
        async for kind, _, data in client.packets():
            if kind == "event" and data[0] == "snapshot" and not first_page:
                first_page = time.perf_counter() - started
            elif kind == "ack":
                return first_page, time.perf_counter() - started, int(data[0]["snapshot"])
    finally:
        await client.close()
    raise RuntimeError("the connection ended before the ack")


async def burst_timing(served: Served, insert: Insert, count: int) -> tuple[float, float]:
    """(seconds until a client following everything has ``count`` new inserts, peak RSS MB)."""
    client = LeanSocketIO(served.url)
    await client.connect()
    peak = [served.rss()]

    async def sample() -> None:
        while True:
            peak.append(served.rss())
            await asyncio.sleep(0.05)

    sampling = asyncio.create_task(sample())
    try:
        client.emit("subscribe", {"limit": 1})
        packets = client.packets()
        async for kind, _, _data in packets:
            if kind == "ack":
                break
        started = time.perf_counter()
        writing: asyncio.Task[None] = asyncio.create_task(insert(served.database_url, count))
        seen = 0
        async for kind, _, data in packets:
            if kind != "event":
                continue
            if data[0] == "order_change":
                seen += data[1]["op"] == "insert"
            elif data[0] == "order_changes":
                seen += sum(change["op"] == "insert" for change in data[1]["changes"])
            elif data[0] == "snapshot":
                seen += len(data[1]["orders"])  # resynced as a slow client: the pages hold them
            if seen >= count:
                break
        elapsed = time.perf_counter() - started
        await writing
        return elapsed, max(peak) / 2**20
    finally:
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
        await client.close()


async def measure_table(source: str, full_url: str, empty_url: str, orders: int, insert: Insert) -> TableRun:
    started = time.monotonic()
    await insert(full_url, orders)
    preload = time.monotonic() - started
    empty = Served(empty_url)
    await empty.start()
    await asyncio.sleep(1.0)  # the same settling time as the full one's below
    empty_rss = empty.rss()
    await empty.stop()
    served = Served(full_url)
    startup = await served.start()
    try:
        await asyncio.sleep(1.0)  # let start-up garbage go
        rss = served.rss()
        page_all, ack_all, sent_all = await subscribe_timing(served.url, {})
        page_status, ack_status, sent_status = await subscribe_timing(served.url, {"status": "pending"})
        _, ack_window, _ = await subscribe_timing(served.url, {"limit": WINDOW})
        burst = min(100_000, max(1_000, orders // 10))
        caught_up, burst_peak = await burst_timing(served, insert, burst)
    finally:
        await served.stop()
    return TableRun(
        source=source,
        orders=orders,
        preload_s=round(preload, 1),
        startup_s=round(startup, 2),
        rss_mb=round(rss / 2**20, 1),
        empty_rss_mb=round(empty_rss / 2**20, 1),
        bytes_per_order=round((rss - empty_rss) / orders, 1),
        first_page_all_ms=round(page_all * 1000, 1),
        ack_all_s=round(ack_all, 2),
        sent_all=sent_all,
        first_page_status_ms=round(page_status * 1000, 1),
        ack_status_s=round(ack_status, 2),
        sent_status=sent_status,
        ack_window_ms=round(ack_window * 1000, 1),
        burst=burst,
        burst_caught_up_s=round(caught_up, 2),
        burst_peak_rss_mb=round(burst_peak, 1),
    )


def table_markdown(runs: list[TableRun], command: str) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        "| source | orders | start-up to live | RSS (empty table) | RSS per order | first page `{}` | ack `{}` "
        "| first page `pending` | ack `pending` | ack, window of 500 | burst: inserts caught up | peak RSS in burst |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run.source} | {run.orders:,} | {run.startup_s} s | {run.rss_mb} MB ({run.empty_rss_mb} MB) "
            f"| {run.bytes_per_order:.0f} B | {run.first_page_all_ms} ms | {run.ack_all_s} s ({run.sent_all:,} orders) "
            f"| {run.first_page_status_ms} ms | {run.ack_status_s} s ({run.sent_status:,}) | {run.ack_window_ms} ms "
            f"| {run.burst:,} in {run.burst_caught_up_s} s | {run.burst_peak_rss_mb} MB |"
        )
    return "\n".join(lines) + "\n"


def as_json(runs: list[TableRun]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]


def write_table_report(runs: list[TableRun], out: Path, command: str) -> str:
    import json

    out.mkdir(parents=True, exist_ok=True)
    text = table_markdown(runs, command)
    (out / "table-size.md").write_text(text)
    (out / "table-size.json").write_text(json.dumps(as_json(runs), indent=2) + "\n")
    return text
