"""``orders-live bench --dashboard``: what the dashboard costs a browser under a stream of changes.

For each table size, a fresh database is filled in bulk (``bench/bulk.py``), the service is
started on it as its own process serving the built dashboard (``ORDERS_LIVE_FRONTEND_DIR``),
and the dashboard is opened in headless Chromium (``bench/dashboard_page.py``). Then, in turn:
the idle page for a window, REST updates at each rate for a window, and a burst of updates sent
at once. Each update sets an order's product name to a stamp with its sequence number; its commit time is the
``updated_at`` the service answers. The orders updated are the table's newest (those in the
dashboard's window), oldest first, so that each update moves a row from the bottom to the top.

Between cases the bench waits until every change is on screen and no animation runs (the
highlights have faded), so that a case does not pay for the last one's work.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from orders_live.bench.balancer import free_port
from orders_live.bench.dashboard_page import DashboardPage, check_prerequisites
from orders_live.bench.dashboard_stats import (
    PARTS,
    STAMP,
    DashboardCase,
    burst_tail_ms,
    commit_ms,
    finals,
    latencies,
    shares,
    summarise,
)

Fresh = Callable[[str], Awaitable[str]]  # a fresh database's URL, by name
Insert = Callable[[str, int], Awaitable[None]]  # (database url, how many orders)
UPDATED = 500  # the newest orders, those the dashboard's window holds, are the ones updated
SETTLE_WITHIN_MS = 10_000.0  # how long a case's highlights may run on after its last change is on screen
SEEN_WITHIN_MS = 30_000.0  # how long a case waits for its changes to be on screen
BURST_CONCURRENCY = 64  # REST updates in flight during a burst
READY_WITHIN = 60.0
ANSWER_WITHIN = 15.0  # seconds the page has to answer a question (a swamped main thread answers late)


class Swamped(Exception):
    """The page's main thread did not answer in time: it is still working through the changes."""

    def __init__(self, name: str, changes: int, rendered: int = 0) -> None:
        super().__init__(name)
        self.name, self.changes, self.rendered = name, changes, rendered


@dataclass
class Plan:
    sizes: Sequence[int] = (500, 5000)
    rates: Sequence[float] = (5.0, 50.0)
    window_s: float = 20.0
    burst: int = 1000


class DashboardService:
    """``orders-live serve`` on one database, serving ``frontend_dir``, as a child process."""

    def __init__(self, database_url: str, frontend_dir: Path) -> None:
        self.database_url, self.frontend_dir = database_url, frontend_dir
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        folder = tempfile.mkdtemp(prefix="orders-live-dashboard-")
        env = {**os.environ, "ORDERS_LIVE_LOG_LEVEL": "WARNING", "ORDERS_LIVE_FRONTEND_DIR": str(self.frontend_dir)}
        port = self.url.rsplit(":", 1)[1]
        self.process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "orders_live", "serve", "--port", port, "--data-dir", folder),
            *("--database-url", self.database_url),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_WITHIN
        async with aiohttp.ClientSession() as session:
            while self.process.returncode is None and time.monotonic() < deadline:
                try:
                    async with session.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"the service did not become ready (exit status {self.process.returncode})")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)


class Updater:
    """REST updates, each stamped with the next sequence number; keeps each one's commit time."""

    def __init__(self, url: str, session: aiohttp.ClientSession, ids: list[int]) -> None:
        self.url, self.session, self.ids = url, session, ids
        self.next = 0
        self.commits: dict[int, float] = {}  # sequence number → commit, epoch ms
        self.versions: dict[int, tuple[int, int]] = {}  # sequence number → (order, the version it made)
        self.failed: list[str] = []

    async def one(self, n: int) -> None:
        order = self.ids[n % len(self.ids)]
        body = {"product_name": f"{STAMP}{n}"}
        async with self.session.patch(f"{self.url}/api/orders/{order}", json=body) as response:
            if response.status != 200:
                self.failed.append(f"{response.status} {(await response.text())[:200]}")
                return
            answer = await response.json()
            self.commits[n] = commit_ms(answer["updated_at"])
            self.versions[n] = (order, int(answer["version"]))

    def take(self) -> int:
        self.next += 1
        return self.next - 1

    async def at_rate(self, rate: float, duration: float) -> range:
        """``rate`` updates a second for ``duration`` seconds, each on schedule (not waiting for the last)."""
        loop = asyncio.get_running_loop()
        first, count = self.next, int(rate * duration)
        start, tasks = loop.time(), []
        for k in range(count):
            delay = start + k / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(self.take())))
        await asyncio.gather(*tasks)
        return range(first, first + count)

    async def burst(self, count: int) -> range:
        """``count`` updates at once, ``BURST_CONCURRENCY`` in flight."""
        first = self.next
        numbers = iter([self.take() for _ in range(count)])

        async def lane() -> None:
            for n in numbers:
                await self.one(n)

        await asyncio.gather(*(lane() for _ in range(BURST_CONCURRENCY)))
        return range(first, first + count)


async def newest_ids(url: str, session: aiohttp.ClientSession, count: int) -> list[int]:
    """The ``count`` newest orders' ids, oldest of them first (the bottom row of the window first)."""
    async with session.get(f"{url}/api/orders?limit={count}") as response:
        orders = (await response.json())["orders"]
    return [o["id"] for o in reversed(orders)]


async def measure_case(
    page: DashboardPage, updater: Updater, rows: int, rate: float | None, plan: Plan
) -> DashboardCase:
    """One case: ``rate`` changes a second for the window (0: none, the page idle), or (None) a burst.
    The counters cover the window, or for the burst until its last row is on screen."""
    rendered = await page.rendered_rows()
    name = f"{rows:,} rows, " + ("burst" if rate is None else "idle" if rate == 0 else f"{rate:g}/s")
    before, started = await page.counters(), time.time()
    if rate is None:
        numbers = await updater.burst(plan.burst)
    elif rate == 0:
        numbers = range(updater.next, updater.next)
        await asyncio.sleep(plan.window_s)  # the window itself: the idle page's counters over it
    else:
        numbers = await updater.at_rate(rate, plan.window_s)
    try:
        if rate is not None:
            after, ended = await asyncio.wait_for(page.counters(), ANSWER_WITHIN), time.time()
        # A burst changes an order more than once; only its last change is owed to the screen, and
        # only where it ends up in view: the table holds the rows in view only (newest change
        # first), so the orders whose last change is among the newest `rendered` are owed.
        owed = [n for n in numbers if n in updater.commits]
        if rate is None:
            last = finals({n: updater.versions[n] for n in owed})
            owed = sorted((n for n in owed if n in last), key=lambda n: updater.commits[n])[-rendered:]
        on_screen = await asyncio.wait_for(page.until_seen(owed, SEEN_WITHIN_MS), SEEN_WITHIN_MS / 1000 + ANSWER_WITHIN)
        if rate is None:
            after, ended = await asyncio.wait_for(page.counters(), ANSWER_WITHIN), time.time()
        found = await asyncio.wait_for(page.seen_since(numbers.start), ANSWER_WITHIN)
    except TimeoutError:
        raise Swamped(name, len(numbers), rendered) from None
    commits = {n: updater.commits[n] for n in owed}
    seen = {n: at for n, at in found.items() if n in commits}
    p50, p95, worst = summarise(latencies(commits, seen))
    notes = [] if on_screen else [f"not all on screen within {SEEN_WITHIN_MS / 1000:g} s"]
    notes += [f"{len(updater.failed)} updates refused: {updater.failed[0]}"] if updater.failed else []
    notes += (
        [f"a burst of {len(numbers):,} changes; the {len(owed):,} that end in view are owed"] if rate is None else []
    )
    updater.failed.clear()
    window = ended - started
    tail = burst_tail_ms(commits, seen) if rate is None else None
    return DashboardCase(
        name, rows, rendered, rate, window, len(commits), len(seen), shares(before, after, window), p50, p95, worst,
        tail, notes
    )  # fmt: skip


def unanswered(swamped: Swamped, rows: int, rate: float | None) -> DashboardCase:
    """A case whose page stopped answering: no figures, and why."""
    nan = math.nan
    note = f"the page did not answer within {SEEN_WITHIN_MS / 1000 + ANSWER_WITHIN:g} s: its main thread was saturated"
    return DashboardCase(
        swamped.name,
        rows,
        swamped.rendered,
        rate,
        0.0,
        swamped.changes,
        0,
        dict.fromkeys(PARTS, nan),
        nan,
        nan,
        nan,
        None,
        [note],
    )


async def measure_size(database_url: str, rows: int, frontend_dir: Path, plan: Plan) -> list[DashboardCase]:
    service = DashboardService(database_url, frontend_dir)
    await service.start()
    page = DashboardPage()
    try:
        await page.open(service.url)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=BURST_CONCURRENCY)) as session:
            updater = Updater(service.url, session, await newest_ids(service.url, session, min(rows, UPDATED)))
            cases = []
            for rate in [0.0, *plan.rates, None]:
                try:
                    cases.append(await measure_case(page, updater, rows, rate, plan))
                except Swamped as swamped:  # the page is no use for the cases left at this size
                    cases.append(unanswered(swamped, rows, rate))
                    print(f"  {swamped.name}: the page did not answer", flush=True)
                    break
                print(f"  {cases[-1].name}: busy {cases[-1].shares['busy'] * 100:.0f} %", flush=True)
                # The last case's highlights end before the next begins.
                await asyncio.wait_for(page.until_still(SETTLE_WITHIN_MS), SETTLE_WITHIN_MS / 1000 + ANSWER_WITHIN)
        if page.errors:
            for case in cases:
                case.notes.append(f"page errors: {page.errors[:3]}")
        return cases
    finally:
        await page.close()
        await service.stop()


async def run_dashboard(fresh: Fresh, insert: Insert, frontend_dir: Path, plan: Plan) -> list[DashboardCase]:
    """Every case of ``plan``, each table size on a fresh database of its own."""
    check_prerequisites(frontend_dir)
    cases: list[DashboardCase] = []
    for rows in plan.sizes:
        url = await fresh(f"dashboard_{rows}")
        await insert(url, rows)
        print(f"{rows:,} orders…", flush=True)
        cases += await measure_size(url, rows, frontend_dir, plan)
    return cases
