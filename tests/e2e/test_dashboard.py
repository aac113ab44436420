"""End to end: the built dashboard, in headless Chromium tabs, against a real service and database.

Needs Debian's chromium at /usr/bin/chromium and a built frontend (scripts/build-frontend.sh);
without either the module is skipped. Every wait is on a condition, never a fixed sleep.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from chromium_launch import DESKTOP, DIST, PHONE, SCREENSHOTS, skip_without_a_dashboard

pytestmark = pytest.mark.browser

skip_without_a_dashboard()

import aiohttp  # noqa: E402
import pytest_asyncio  # noqa: E402
import socketio  # noqa: E402
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect  # noqa: E402

from conftest import database_orders as all_database_orders  # noqa: E402
from conftest import free_port, opened, running_service, settings_for, until, until_async  # noqa: E402
from orders_live.client.rest import OrdersClient  # noqa: E402
from orders_live.domain.order import OrderCreate, OrderPatch  # noqa: E402
from orders_live.service import Service  # noqa: E402

SEED = [
    ("Grace Hopper", "Mechanical keyboard", "delivered"),
    ("Alan Turing", "USB-C dock", "shipped"),
    ("Katherine Johnson", '27" monitor', "pending"),
    ("Edsger Dijkstra", "Standing desk", "shipped"),
    ("Barbara Liskov", "Noise-cancelling headphones", "pending"),
    ("Donald Knuth", "Ergonomic chair", "delivered"),
]


# -- fixtures and helpers ---------------------------------------------------------------------------


async def start_service(database_url: str, port: int) -> Service:
    service = Service(settings_for(database_url, port=port, frontend_dir=DIST))
    await service.start()
    assert service.hub is not None
    await service.hub.wait_ready(10)
    return service


@pytest_asyncio.fixture
async def service(database_url: str) -> AsyncIterator[Service]:
    running = await start_service(database_url, free_port())
    try:
        yield running
    finally:
        await running.stop()


class Tab:
    """One dashboard page; records uncaught page errors (there must be none)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    @classmethod
    async def open(cls, browser: Browser, url: str, viewport: dict[str, int] = DESKTOP, phase: str = "live") -> Tab:
        context: BrowserContext = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        tab = cls(await context.new_page())
        await tab.page.goto(url)
        await tab.expect_phase(phase)
        return tab

    @property
    def phase(self) -> Locator:
        return self.page.get_by_test_id("connection").locator("[data-phase]")

    async def expect_phase(self, phase: str, within_ms: float = 10_000) -> None:
        await expect(self.phase).to_have_attribute("data-phase", phase, timeout=within_ms)

    def row(self, order_id: int) -> Locator:
        return self.page.locator(f'tbody tr[data-order-id="{order_id}"]')

    def rows(self) -> Locator:
        return self.page.locator("tbody tr[data-order-id]")

    async def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # Let row highlights fade, so that the picture shows the resting state.
        await expect(self.page.locator("tr.flash")).to_have_count(0, timeout=5_000)
        await self.page.mouse.move(0, 0)  # no hover highlight
        await self.page.screenshot(path=str(SCREENSHOTS / name), full_page=True)

    async def close(self) -> None:
        await self.page.context.close()
        assert self.errors == [], f"uncaught errors in the page: {self.errors}"


async def seed(url: str, orders: list[tuple[str, str, str]] = SEED, token: str | None = None) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(url, session, token)
        return [await api.create(customer, product, status) for customer, product, status in orders]


async def database_orders(url: str) -> list[dict[str, Any]]:
    return sorted((await all_database_orders(url)).values(), key=lambda o: o["id"])


# -- the tests ------------------------------------------------------------------------------------


async def test_two_tabs_follow_each_others_writes(service: Service, browser: Browser) -> None:
    await seed(service.url)
    a = await Tab.open(browser, service.url)
    b = await Tab.open(browser, service.url, viewport=PHONE)
    await expect(a.rows()).to_have_count(len(SEED))
    await expect(b.rows()).to_have_count(len(SEED))

    # A creates an order through the form; B shows it within a second.
    customer = "Ada Lovelace"  # not among the seeded customers
    await a.page.get_by_label("Customer").fill(customer)
    await a.page.get_by_label("Product").fill("Desk lamp")
    await a.page.get_by_role("button", name="Create order").click()
    in_b = b.rows().filter(has_text=customer)
    await expect(in_b).to_be_visible(timeout=1_000)
    await expect(in_b).to_contain_text("Pending")
    await expect(in_b).to_contain_text("v1")
    in_a = a.rows().filter(has_text=customer)
    await expect(in_a).to_be_visible()
    order_id = int(await in_a.get_attribute("data-order-id") or 0)
    assert order_id > 0
    await expect(a.page.get_by_test_id("count-pending")).to_have_text("3")

    # B changes its status in place; A shows it within a second.
    await b.page.get_by_role("button", name=f"Edit order {order_id}").click()
    editing = b.row(order_id)
    await editing.get_by_label("Status").select_option("shipped")
    await editing.get_by_role("button", name="Save").click()
    await expect(a.row(order_id).locator(".badge")).to_have_text("Shipped", timeout=1_000)
    await expect(a.row(order_id)).to_contain_text("v2")
    await expect(b.row(order_id).locator(".badge")).to_have_text("Shipped")
    await expect(a.page.get_by_test_id("count-shipped")).to_have_text("3")
    # The last change's latency is shown, and the change was announced for screen readers.
    await expect(a.page.get_by_test_id("latency")).to_contain_text(re.compile(r"\d+(\.\d)? m?s"))
    await expect(a.page.get_by_test_id("announcer")).to_contain_text(f"Order {order_id} is now shipped.")
    # The exact time is on hover.
    updated = await a.row(order_id).locator("time").get_attribute("title")
    assert updated is not None and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", updated)

    await a.screenshot("dashboard-tab-a.png")
    await b.screenshot("dashboard-tab-b.png")

    # A deletes it, after confirming; it goes from both tabs.
    await a.page.get_by_role("button", name=f"Delete order {order_id}").click()
    confirm = a.page.get_by_role("group", name=f"Confirm deleting order {order_id}")
    await expect(confirm).to_be_visible()
    await confirm.get_by_role("button", name="Delete").click()
    await expect(a.row(order_id)).to_have_count(0, timeout=1_000)
    await expect(b.row(order_id)).to_have_count(0, timeout=1_000)
    await expect(b.rows()).to_have_count(len(SEED))
    await a.close()
    await b.close()


async def test_a_tab_filtered_to_pending_subscribes_to_that_room_and_drops_an_order_that_ships(
    service: Service, browser: Browser
) -> None:
    created = await seed(service.url)
    pending = [o for o in created if o["status"] == "pending"]
    tab = await Tab.open(browser, service.url)
    await tab.page.get_by_role("radio", name="Pending").check()
    await expect(tab.rows()).to_have_count(len(pending))
    await tab.expect_phase("live")
    # The pending subscription's answer has arrived (it says what the view shows): a change
    # after it is announced last, not overwritten by a late answer.
    await expect(tab.page.get_by_test_id("announcer")).to_contain_text("with status pending")

    # The tab holds the pending room only: it left "all" orders.
    hub = service.hub
    assert hub is not None
    await until(
        lambda: not hub.rooms.members.get("all") and len(hub.rooms.members.get("status:pending", ())) == 1,
        what="the tab to hold the status:pending room only",
    )

    moving = pending[0]
    async with aiohttp.ClientSession() as session:
        await OrdersClient(service.url, session).update(moving["id"], if_match=1, status="shipped")
    await expect(tab.row(moving["id"])).to_have_count(0, timeout=1_000)
    await expect(tab.rows()).to_have_count(len(pending) - 1)
    await expect(tab.page.get_by_test_id("count-pending")).to_have_text(str(len(pending) - 1))
    await expect(tab.page.get_by_test_id("announcer")).to_contain_text("left the pending view")

    # Orders of other statuses never show; a new pending one does.
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)
        await api.create("Radia Perlman", "NVMe SSD", "shipped")
        fresh = await api.create("Ken Thompson", "Webcam")
    await expect(tab.row(fresh["id"])).to_be_visible(timeout=1_000)
    await expect(tab.rows()).to_have_count(len(pending))
    await tab.close()


async def test_after_a_restart_the_tab_shows_reconnecting_then_the_changes_made_meanwhile(
    database_url: str, browser: Browser
) -> None:
    port = free_port()
    first = await start_service(database_url, port)
    try:
        kept, other = await seed(
            first.url, [("Ada Lovelace", "Keyboard", "pending"), ("Grace Hopper", "Monitor", "pending")]
        )
        tab = await Tab.open(browser, first.url)
        await expect(tab.rows()).to_have_count(2)
    finally:
        await first.stop()

    await tab.expect_phase("reconnecting")
    await expect(tab.phase).to_contain_text("Reconnecting")
    await tab.screenshot("dashboard-reconnecting.png")

    # The service is down; the database is not. Someone writes.
    async with opened(database_url) as writer:
        made = await writer.store.create(OrderCreate(customer_name="Alan Turing", product_name="Desk"))
        await writer.store.update(kept["id"], OrderPatch(status="shipped"), expected_version=1)
        await writer.store.delete(other["id"], expected_version=None)
        added = await writer.store.create(OrderCreate(customer_name="Katherine Johnson", product_name="Webcam"))

    second = await start_service(database_url, port)
    try:
        await tab.expect_phase("live", within_ms=20_000)
        await expect(tab.phase).to_contain_text("caught up: 4 changes replayed")
        await expect(tab.row(kept["id"]).locator(".badge")).to_have_text("Shipped")
        await expect(tab.row(kept["id"])).to_contain_text("v2")
        await expect(tab.row(other["id"])).to_have_count(0)
        await expect(tab.row(made.id)).to_contain_text("Alan Turing")
        await expect(tab.row(added.id)).to_contain_text("Katherine Johnson")
        await expect(tab.rows()).to_have_count(3)
        # and it is live again
        async with aiohttp.ClientSession() as session:
            late = await OrdersClient(second.url, session).create("Barbara Liskov", "Lamp")
        await expect(tab.row(late["id"])).to_be_visible(timeout=1_000)
        await tab.close()
    finally:
        await second.stop()


async def test_invalid_input_shows_the_field_errors_and_changes_nothing(
    service: Service, browser: Browser, database_url: str
) -> None:
    await seed(service.url, SEED[:2])
    before = await database_orders(database_url)

    # The dashboard's own checks catch it first: no request is sent.
    tab = await Tab.open(browser, service.url)
    posts: list[str] = []
    tab.page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    await tab.page.get_by_label("Customer").fill("   ")
    await tab.page.get_by_role("button", name="Create order").click()
    await expect(tab.page.locator('[data-field-error="customer_name"]')).to_contain_text("Required")
    await expect(tab.page.locator('[data-field-error="product_name"]')).to_contain_text("Required")
    await expect(tab.page.get_by_label("Customer")).to_have_attribute("aria-invalid", "true")
    assert posts == []
    await tab.close()

    # With the client-side checks off, the server's own per-field errors show next to the fields.
    tab = await Tab.open(browser, f"{service.url}/?validation=server")
    await tab.page.get_by_label("Customer").fill("   ")
    await tab.page.get_by_label("Product").fill("x" * 201)
    async with tab.page.expect_response(
        lambda r: r.url.endswith("/api/orders") and r.request.method == "POST"
    ) as answer:
        await tab.page.get_by_role("button", name="Create order").click()
    assert (await answer.value).status == 422
    await expect(tab.page.locator('[data-field-error="customer_name"]')).to_have_text(
        "String should have at least 1 character"
    )
    await expect(tab.page.locator('[data-field-error="product_name"]')).to_have_text(
        "String should have at most 200 characters"
    )
    await expect(tab.page.get_by_role("alert").filter(has_text="was not created")).to_be_visible()
    # The optimistic row was rolled back; the form keeps what was typed.
    await expect(tab.page.locator("tbody tr")).to_have_count(2)
    await expect(tab.page.get_by_label("Product")).to_have_value("x" * 201)
    await tab.screenshot("dashboard-field-errors.png")
    await tab.close()

    assert await database_orders(database_url) == before


async def test_an_edit_that_lost_a_race_shows_the_current_order_and_can_be_reapplied(
    service: Service, browser: Browser, database_url: str
) -> None:
    (order,) = await seed(service.url, [("Ada Lovelace", "Desk lamp", "pending")])
    tab = await Tab.open(browser, service.url)
    await tab.page.get_by_role("button", name=f"Edit order {order['id']}").click()
    editing = tab.row(order["id"])
    await editing.get_by_label("Status").select_option("delivered")

    # Someone else ships it first.
    async with aiohttp.ClientSession() as session:
        await OrdersClient(service.url, session).update(order["id"], if_match=1, status="shipped")
    await expect(editing.get_by_role("status")).to_contain_text("now v2")

    async with tab.page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        await editing.get_by_role("button", name="Save").click()
    response = await answer.value
    assert response.status == 409
    assert response.request.headers.get("if-match") == '"1"'
    conflict = tab.page.get_by_test_id("conflict")
    await expect(conflict).to_be_visible()
    await expect(conflict).to_contain_text("the server now has version 2")
    await expect(conflict).to_contain_text("Shipped")
    await expect(tab.row(order["id"]).locator(".badge")).to_have_text("Shipped")  # rolled back
    await tab.screenshot("dashboard-conflict.png")

    await conflict.get_by_role("button", name="Re-apply my change to v2").click()
    await expect(conflict).to_have_count(0)
    await expect(tab.row(order["id"]).locator(".badge")).to_have_text("Delivered")
    await expect(tab.row(order["id"])).to_contain_text("v3")
    (stored,) = await database_orders(database_url)
    assert (stored["status"], stored["version"]) == ("delivered", 3)
    await tab.close()


async def test_a_refused_connection_is_shown_and_retried_until_the_server_lets_it_in(
    database_url: str, browser: Browser
) -> None:
    token = "reader-secret"
    settings = settings_for(database_url, port=free_port(), frontend_dir=DIST, read_token=token, max_connections=1)
    async with running_service(settings) as service:
        await seed(service.url, SEED[:3], token=token)

        # A wrong token: refused (forbidden), said so, and tried again by itself.
        wrong = await Tab.open(browser, f"{service.url}/#token=not-the-token", phase="refused")
        await expect(wrong.phase).to_contain_text("Refused")
        await expect(wrong.phase).to_contain_text("the token was not accepted")
        banner = wrong.page.get_by_test_id("refusal")
        await expect(banner).to_contain_text("The server refused the connection: the token was not accepted")
        await expect(banner).to_contain_text("this token does not allow reads")
        await expect(banner).to_contain_text("forbidden")
        await expect(banner).to_contain_text(re.compile(r"refused \d+ times in a row"), timeout=5_000)
        await expect(wrong.page.get_by_test_id("refusal-retry")).to_have_text(re.compile(r"Retrying (in \d+ s|now…)"))
        await expect(wrong.page.locator(".empty")).to_have_text(
            "No orders to show: the server refused the live connection."
        )
        assert wrong.page.url == f"{service.url}/"  # the token left the address bar
        await wrong.screenshot("dashboard-refused.png")

        # The right token given in the address bar (a fragment change only): the page takes it up.
        await wrong.page.goto(f"{service.url}/#token={token}")
        await wrong.expect_phase("live")
        await expect(wrong.rows()).to_have_count(3)
        await wrong.close()

        # No token at all: refused (unauthorized).
        missing = await Tab.open(browser, service.url, phase="refused")
        await expect(missing.phase).to_contain_text("a read token is required")
        await expect(missing.page.get_by_test_id("refusal")).to_contain_text("/#token=")
        await missing.close()

        # The right token, but the one connection allowed is taken: "server full", retrying.
        holder = socketio.AsyncClient(reconnection=False)

        async def take_the_connection() -> bool:  # the closed tab's one may not be given back yet
            try:
                await holder.connect(service.url, auth={"token": token}, transports=["websocket"])
            except socketio.exceptions.ConnectionError:
                return False
            return True

        await until_async(take_the_connection, within=10, what="the one connection to be free")
        try:
            full = await Tab.open(browser, f"{service.url}/#token={token}", phase="refused")
            await expect(full.phase).to_contain_text("Server full")
            await expect(full.phase).to_contain_text("waiting for a free connection")
            banner = full.page.get_by_test_id("refusal")
            await expect(banner).to_contain_text("The server is full")
            await expect(banner).to_contain_text("too_many_connections")
            await expect(banner).to_contain_text(re.compile(r"refused \d+ times in a row"), timeout=5_000)
            await expect(full.rows()).to_have_count(0)
        finally:
            await holder.disconnect()

        # Once the held connection is gone, the tab gets in by itself and is live.
        await full.expect_phase("live", within_ms=30_000)
        await expect(banner).to_have_count(0)
        await expect(full.rows()).to_have_count(3)
        async with aiohttp.ClientSession() as session:
            fresh = await OrdersClient(service.url, session, token).create("Radia Perlman", "NVMe SSD")
        await expect(full.row(fresh["id"])).to_be_visible(timeout=1_000)
        await full.close()
