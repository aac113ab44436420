"""End to end: how the dashboard renders a stream of changes, in headless Chromium, against a real
service on PostgreSQL.

- A changed row is highlighted with the Web Animations API on a ``::after`` layer over it (its
  first cell's: an opacity fade, no forced layout, the row's size unchanged), and not at all when
  the user prefers reduced motion.
- The table puts only the rows in view in the document (frontend/src/components/orders/
  VirtualRows.tsx), says how many there are (``aria-rowcount``, ``aria-rowindex``), and shows the
  others as it scrolls.

Needs Debian's chromium at /usr/bin/chromium and a built frontend (scripts/build-frontend.sh);
without either the module is skipped. Every wait is on a condition, never a fixed sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest
from chromium_launch import DESKTOP, DIST, skip_without_a_dashboard

pytestmark = pytest.mark.browser

skip_without_a_dashboard()

import asyncpg  # noqa: E402
import pytest_asyncio  # noqa: E402
from playwright.async_api import Browser, Page, expect  # noqa: E402

from conftest import free_port, running_service, settings_for  # noqa: E402
from orders_live.bench.bulk import insert_orders  # noqa: E402
from orders_live.service import Service  # noqa: E402

WINDOW = 500  # frontend/src/liveState.ts WINDOW
OLDER_PAGE = 100  # frontend/src/olderOrders.ts OLDER_PAGE

# Records every Web Animations API call made on a table row or its cells (by the row's order id),
# and the row's height then (with its class flash on) beside another row's; before the
# dashboard's code runs.
RECORD_HIGHLIGHTS = """
window.highlights = [];
window.highlightSizes = [];
const animate = Element.prototype.animate;
Element.prototype.animate = function (keyframes, options) {
  const row = this.closest("tr[data-order-id]");
  if (row !== null) {
    window.highlights.push({ id: Number(row.dataset.orderId), pseudo: options && options.pseudoElement });
    const other = [...row.parentElement.querySelectorAll("tr[data-order-id]")].find((r) => r !== row);
    window.highlightSizes.push({
      flashing: row.classList.contains("flash"),
      row: row.getBoundingClientRect().height,
      other: other ? other.getBoundingClientRect().height : null,
    });
  }
  return animate.call(this, keyframes, options);
};
"""


@pytest_asyncio.fixture
async def service(postgres_url: str) -> AsyncIterator[Service]:
    async with running_service(settings_for(postgres_url, port=free_port(), frontend_dir=DIST)) as running:
        yield running


async def open_tab(browser: Browser, url: str, motion: Literal["reduce", "no-preference"]) -> tuple[Page, list[str]]:
    context = await browser.new_context(viewport=DESKTOP, reduced_motion=motion)  # type: ignore[arg-type]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.add_init_script(RECORD_HIGHLIGHTS)
    await page.goto(url)
    await expect(page.get_by_test_id("connection").locator("[data-phase]")).to_have_attribute(
        "data-phase", "live", timeout=15_000
    )
    return page, errors


async def ship(url: str, order_id: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("UPDATE orders SET status = 'shipped' WHERE id = $1", order_id)
    finally:
        await connection.close()


async def highlights(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await page.evaluate("window.highlights")
    return found


async def test_a_changed_row_fades_its_after_layer_and_not_with_reduced_motion(
    service: Service, browser: Browser, postgres_url: str
) -> None:
    await insert_orders(postgres_url, 3)
    normal, normal_errors = await open_tab(browser, service.url, "no-preference")
    reduced, reduced_errors = await open_tab(browser, service.url, "reduce")
    rows = normal.locator("tbody tr[data-order-id]")
    await expect(rows).to_have_count(3)
    await expect(reduced.locator("tbody tr[data-order-id]")).to_have_count(3)
    order_id = int(await rows.first.get_attribute("data-order-id") or 0)
    assert await highlights(normal) == []  # the snapshot is not a change

    await ship(postgres_url, order_id)
    for page in (normal, reduced):
        await expect(page.locator(f'tbody tr[data-order-id="{order_id}"] .badge')).to_have_text("Shipped")
    assert await highlights(normal) == [{"id": order_id, "pseudo": "::after"}]
    # As its fade starts, the highlighted row is as tall as the others (within a pixel's rounding;
    # a ::after of the row itself made it 9 px taller): nothing moves.
    sizes = await normal.evaluate("window.highlightSizes")
    assert len(sizes) == 1 and sizes[0]["flashing"] and abs(sizes[0]["row"] - sizes[0]["other"]) <= 1, sizes
    assert await highlights(reduced) == []
    assert normal_errors == [] and reduced_errors == []
    await normal.context.close()
    await reduced.context.close()


async def test_a_long_table_holds_only_the_rows_in_view_and_shows_the_others_as_it_scrolls(
    service: Service, browser: Browser, postgres_url: str
) -> None:
    held = WINDOW + 2 * OLDER_PAGE
    await insert_orders(postgres_url, held + 50)
    page, errors = await open_tab(browser, service.url, "no-preference")
    table = page.locator("table.orders")
    # The window's 500 rows are held: the table says so, and holds only those in view.
    await expect(table).to_have_attribute("aria-rowcount", str(WINDOW + 1))
    first = page.locator("tbody tr[data-order-id]").first
    await expect(first).to_have_attribute("aria-rowindex", "2")
    in_document = await page.locator("tbody tr[data-order-id]").count()
    assert 10 < in_document < 80, in_document
    load = page.get_by_test_id("load-more")
    for shown in range(WINDOW + OLDER_PAGE, held + 1, OLDER_PAGE):
        await load.click()
        await expect(page.get_by_test_id("showing")).to_have_attribute("data-shown", str(shown))
    await expect(table).to_have_attribute("aria-rowcount", str(held + 1))
    assert await page.locator("tbody tr[data-order-id]").count() < 80

    # Scrolled to the end: the last rows are there, numbered as the last of the table.
    await page.locator(".orders-scroll").evaluate("box => { box.scrollTop = box.scrollHeight; }")
    await expect(page.locator(f'tbody tr[aria-rowindex="{held + 1}"]')).to_be_visible()
    assert await page.locator("tbody tr[data-order-id]").count() < 80

    # Keyboard editing still works on a row that was out of view at first.
    last = page.locator(f'tbody tr[aria-rowindex="{held + 1}"]')
    order_id = int(await last.get_attribute("data-order-id") or 0)
    await last.get_by_role("button", name=f"Edit order {order_id}").focus()
    await page.keyboard.press("Enter")
    form = page.get_by_role("form", name=f"Edit order {order_id}")
    await expect(form.get_by_label("Customer")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("button", name=f"Edit order {order_id}")).to_be_focused()
    assert errors == []
    await page.context.close()
