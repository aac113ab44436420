"""End to end: the dashboard's windowed subscription, in headless Chromium, against a real service
on PostgreSQL holding more orders than the window.

The dashboard subscribes with ``limit: 500`` (frontend/src/liveState.ts, ``WINDOW``): it shows the
newest 500 orders, the counts per status of all of them (from the protocol, not from the rows),
loads older ones page by page over REST ("Load older orders"), and still follows every order
(the stream covers all orders the filter matches, not only the window).

Needs Debian's chromium at /usr/bin/chromium and a built frontend (scripts/build-frontend.sh);
without either the module is skipped. Every wait is on a condition, never a fixed sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from chromium_launch import DESKTOP, DIST, skip_without_a_dashboard

pytestmark = pytest.mark.browser

skip_without_a_dashboard()

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import pytest_asyncio  # noqa: E402
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect  # noqa: E402

from conftest import database_counts, free_port, running_service, settings_for, until_async  # noqa: E402
from orders_live.bench.bulk import insert_orders  # noqa: E402
from orders_live.client.rest import OrdersClient  # noqa: E402
from orders_live.service import Service  # noqa: E402

WINDOW = 500  # frontend/src/liveState.ts WINDOW
OLDER_PAGE = 100  # frontend/src/liveState.ts OLDER_PAGE
TOTAL = 2_000
STATUSES = ("pending", "shipped", "delivered")


# Reads the ids of every row of the virtualised table, by aria-rowindex, scrolling its box half a
# view at a time; after each scroll it waits (frame by frame, at most 5 s) until rows, not the
# spacers standing for rows out of view, reach the box's top (below the header) and bottom.
READ_BY_SCROLLING = """async (box) => {
  const held = Number(box.querySelector("table").getAttribute("aria-rowcount")) - 1;
  const ids = new Map();
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const filled = () => {
    const edge = box.getBoundingClientRect();
    const top = edge.top + box.querySelector("thead").getBoundingClientRect().height;
    const bottom = Math.min(edge.bottom, box.querySelector("tbody").getBoundingClientRect().bottom);
    const rows = [...box.querySelectorAll("tbody tr[data-order-id]")].map((r) => r.getBoundingClientRect());
    return rows.some((r) => r.top <= top + 1) && rows.some((r) => r.bottom >= bottom - 1);
  };
  const settle = async () => {
    const until = performance.now() + 5000;
    while (!filled() && performance.now() < until) await frame();
    for (const row of box.querySelectorAll("tbody tr[data-order-id]")) {
      ids.set(Number(row.getAttribute("aria-rowindex")), Number(row.dataset.orderId));
    }
  };
  box.scrollTop = 0;
  await settle();
  while (box.scrollTop + box.clientHeight < box.scrollHeight - 1) {
    box.scrollTop += box.clientHeight / 2;
    await settle();
  }
  box.scrollTop = 0;
  await settle();
  return Array.from({ length: held }, (_, i) => ids.get(i + 2) ?? -1);
}"""


# -- fixtures and helpers ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def service(postgres_url: str) -> AsyncIterator[Service]:
    async with running_service(settings_for(postgres_url, port=free_port(), frontend_dir=DIST)) as running:
        yield running


async def generate(url: str, n: int) -> None:
    """``n`` orders in one statement, straight into the database (its triggers set version and
    updated_at, and log the changes the service follows). Many share an updated_at (milliseconds),
    so the tie-break by id matters."""
    await insert_orders(url, n)


async def newest_ids(url: str, n: int) -> list[int]:
    """The ids of the newest ``n`` orders, in the dashboard's order: updated_at desc, then id desc."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT id FROM orders ORDER BY updated_at DESC, id DESC LIMIT $1", n)
    finally:
        await connection.close()
    return [int(row["id"]) for row in rows]


async def status_of(url: str, order_id: int) -> str:
    connection = await asyncpg.connect(url)
    try:
        return str(await connection.fetchval("SELECT status FROM orders WHERE id = $1", order_id))
    finally:
        await connection.close()


async def the_service_holds(url: str, n: int) -> None:
    """Waits until the service's counts (REST) add up to ``n`` orders: it has followed the insert."""
    async with aiohttp.ClientSession() as session:

        async def holds() -> bool:
            async with session.get(f"{url}/api/orders", params={"limit": "1"}) as response:
                if response.status != 200:
                    return False
                body: dict[str, Any] = await response.json()
            return bool(sum(body.get("counts", {}).values()) == n)

        await until_async(holds, within=20, what=f"the service to hold {n} orders")


class Tab:
    """One dashboard page; records uncaught page errors (there must be none)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.sent: list[str] = []  # the WebSocket frames the page sent
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("websocket", lambda ws: ws.on("framesent", lambda frame: self.sent.append(str(frame))))

    @classmethod
    async def open(cls, browser: Browser, url: str) -> Tab:
        context: BrowserContext = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        tab = cls(await context.new_page())
        await tab.page.goto(url)
        await expect(tab.page.get_by_test_id("connection").locator("[data-phase]")).to_have_attribute(
            "data-phase", "live", timeout=15_000
        )
        return tab

    def rows(self) -> Locator:
        """The rows in the document: only those in view (the table is virtualised)."""
        return self.page.locator("tbody tr[data-order-id]")

    def row(self, order_id: int) -> Locator:
        return self.page.locator(f'tbody tr[data-order-id="{order_id}"]')

    async def expect_held(self, n: int) -> None:
        """The table holds ``n`` orders (its aria-rowcount counts the header row too)."""
        await expect(self.page.locator("table.orders")).to_have_attribute("aria-rowcount", str(n + 1))

    async def shown_ids(self) -> list[int]:
        """Every order id the table holds, top to bottom: read by scrolling its box through, each row
        by its aria-rowindex; then back to the top."""
        ids = await self.page.locator(".orders-scroll").evaluate(READ_BY_SCROLLING)
        return [int(i) for i in ids]

    async def bottom_row(self) -> Locator:
        """The table's last row, scrolled into view."""
        await self.page.locator(".orders-scroll").evaluate("box => { box.scrollTop = box.scrollHeight; }")
        held = int(await self.page.locator("table.orders").get_attribute("aria-rowcount") or 0)
        last = self.page.locator(f'tbody tr[aria-rowindex="{held}"]')
        await expect(last).to_be_visible()
        return last

    async def expect_ids(self, expected: list[int], within: float = 5.0) -> None:
        latest: list[int] = []

        async def matches() -> bool:
            nonlocal latest
            latest = await self.shown_ids()
            return latest == expected

        try:
            await until_async(matches, within, "the table to show the database's newest orders")
        except AssertionError:
            missing = [i for i in expected if i not in latest][:10]
            extra = [i for i in latest if i not in expected][:10]
            raise AssertionError(
                f"the table shows {len(latest)} rows, expected {len(expected)}; missing {missing}, extra {extra}"
            ) from None

    async def expect_counts(self, counts: dict[str, int]) -> None:
        """The per-status counts, and their total, as the database has them (raw numbers in data-count)."""
        box = self.page.get_by_test_id("counts")
        for status, n in counts.items():
            await expect(box.get_by_test_id(f"count-{status}")).to_have_attribute("data-count", str(n))
            await expect(box.get_by_test_id(f"count-{status}")).to_have_text(f"{n:,}")
        await expect(box.get_by_test_id("count-total")).to_have_attribute("data-count", str(sum(counts.values())))

    async def close(self) -> None:
        await self.page.context.close()
        assert self.errors == [], f"uncaught errors in the page: {self.errors}"


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


# -- the test -------------------------------------------------------------------------------------


async def test_the_dashboard_shows_a_window_with_the_counts_of_all_loads_older_pages_and_follows_every_order(
    service: Service, browser: Browser, postgres_url: str
) -> None:
    await generate(postgres_url, TOTAL)
    await the_service_holds(service.url, TOTAL)
    counts = await database_counts(postgres_url)
    assert sum(counts.values()) == TOTAL

    tab = await Tab.open(browser, service.url)
    # The tab subscribed to all orders with the window (a Socket.IO event frame: 42<ack id>[...]).
    assert any(frame.endswith(f'["subscribe",{{"limit":{WINDOW}}}]') for frame in tab.sent), tab.sent

    # Exactly the window: the newest 500, in the database's order; the counts are of all orders.
    await tab.expect_held(WINDOW)
    await tab.expect_ids(await newest_ids(postgres_url, WINDOW))
    await tab.expect_counts(counts)
    showing = tab.page.get_by_test_id("showing")
    await expect(showing).to_contain_text(f"Showing {WINDOW} of {TOTAL:,} orders")
    await expect(showing).to_have_attribute("data-shown", str(WINDOW))
    await expect(showing).to_have_attribute("data-total", str(TOTAL))

    # "Load older orders": the next 100, before the oldest order held, in the database's order.
    oldest_held = (await newest_ids(postgres_url, WINDOW))[-1]
    bottom = await tab.bottom_row()
    await expect(bottom).to_have_attribute("data-order-id", str(oldest_held))
    oldest_at = await bottom.locator("time").get_attribute("datetime")
    more = tab.page.get_by_test_id("load-more")
    await expect(more).to_be_visible()
    async with tab.page.expect_response(
        lambda r: urlsplit(r.url).path == "/api/orders" and r.request.method == "GET"
    ) as answer:
        await more.click()
    response = await answer.value
    assert response.status == 200
    assert query_of(response.url) == {"limit": str(OLDER_PAGE), "before": f"{oldest_at}_{oldest_held}"}
    await tab.expect_held(WINDOW + OLDER_PAGE)
    await tab.expect_ids(await newest_ids(postgres_url, WINDOW + OLDER_PAGE))
    await expect(showing).to_contain_text(f"Showing {WINDOW + OLDER_PAGE:,} of {TOTAL:,} orders")

    # A live change to an order far outside what the tab holds (the oldest of all, through the
    # REST API): it shows, on top, and the counts follow.
    oldest = (await newest_ids(postgres_url, TOTAL))[-1]
    assert oldest not in await tab.shown_ids()
    status = await status_of(postgres_url, oldest)
    moved_to = next(s for s in STATUSES if s != status)
    async with aiohttp.ClientSession() as session:
        changed = await OrdersClient(service.url, session).update(oldest, if_match=1, status=moved_to)
    assert (changed["version"], changed["status"]) == (2, moved_to)
    await expect(tab.row(oldest)).to_be_visible(timeout=2_000)
    await expect(tab.rows().first).to_have_attribute("data-order-id", str(oldest))
    await expect(tab.row(oldest)).to_contain_text("v2")
    await tab.expect_held(WINDOW + OLDER_PAGE + 1)
    await tab.expect_counts(await database_counts(postgres_url))

    # The next older page continues where the last one stopped (its next_before): the newest
    # 701 orders of the database now, the changed one on top.
    async with tab.page.expect_response(lambda r: urlsplit(r.url).path == "/api/orders") as answer:
        await more.click()
    assert (await answer.value).status == 200
    await tab.expect_held(WINDOW + 2 * OLDER_PAGE + 1)
    await tab.expect_ids(await newest_ids(postgres_url, WINDOW + 2 * OLDER_PAGE + 1))
    await tab.close()
