"""End to end: the single-file live page (``/live.html``, EventSource), in headless Chromium,
against a real service and database.

The page ships inside the package (orders_live/transports/http/static/live.html), so no built
frontend is needed; only Debian's chromium at /usr/bin/chromium (else the module is skipped).
Every wait is on a condition, never a fixed sleep.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from chromium_launch import CHROMIUM, DESKTOP, PHONE, SCREENSHOTS

pytestmark = pytest.mark.browser

if not CHROMIUM.is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium) to run the live page tests",
        allow_module_level=True,
    )

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from playwright.async_api import Browser, Locator, Page, Request, Response, expect  # noqa: E402

from conftest import (  # noqa: E402
    database_counts,
    database_orders,
    free_port,
    opened,
    running_service,
    settings_for,
    until,
    until_async,
)
from orders_live.bench.bulk import insert_orders  # noqa: E402
from orders_live.client.rest import OrdersClient  # noqa: E402
from orders_live.domain.order import OrderCreate, OrderPatch  # noqa: E402
from orders_live.service import Service  # noqa: E402

EVIL = '<img src=x onerror="window.pwned=1"> & <b>Co</b>'  # must show as text, never as markup
SEED = [
    ("Grace Hopper", "Mechanical keyboard", "delivered"),
    ("Alan Turing", "USB-C dock", "shipped"),
    ("Katherine Johnson", '27" monitor', "pending"),
    (EVIL, "Standing desk", "shipped"),
    ("Barbara Liskov", "Noise-cancelling headphones", "pending"),
    ("Donald Knuth", "Ergonomic chair", "delivered"),
]
SOON = 2_000  # ms for a change to show: live changes take milliseconds; this leaves room on a busy machine

Row = tuple[int, str, int]  # id, status, version


# -- fixtures and helpers ---------------------------------------------------------------------------


async def start_service(database_url: str, port: int, **settings: Any) -> Service:
    service = Service(settings_for(database_url, port=port, **settings))
    await service.start()
    assert service.hub is not None
    await service.hub.wait_ready(10)
    return service


class LiveTab:
    """One /live.html page. Records uncaught page errors and Content-Security-Policy refusals
    (there must be none) and every request the page makes for the event stream."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.streams: list[Request] = []
        self.tickets = 0  # stream tickets asked for (POST /api/stream-tickets)
        self.response: Response | None = None
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if "Content Security Policy" in message.text else None,
        )
        page.on("request", self._request)

    def _request(self, request: Request) -> None:
        if "/api/changes/stream" in request.url:
            self.streams.append(request)
        if request.method == "POST" and urlsplit(request.url).path == "/api/stream-tickets":
            self.tickets += 1

    @classmethod
    async def open(
        cls, browser: Browser, url: str, viewport: dict[str, int] = DESKTOP, state: str | None = "live"
    ) -> LiveTab:
        context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        tab = cls(await context.new_page())
        tab.response = response = await tab.page.goto(url)
        assert response is not None and response.status == 200
        if state is not None:
            await tab.expect_state(state)
        return tab

    @property
    def state(self) -> Locator:
        return self.page.get_by_test_id("state")

    async def expect_state(self, state: str, within_ms: float = 10_000) -> None:
        await expect(self.state).to_have_attribute("data-state", state, timeout=within_ms)

    async def position(self) -> str:
        position = await self.state.get_attribute("data-position")
        assert position, "the page holds no position"
        return position

    def rows(self) -> Locator:
        return self.page.locator("tbody tr[data-order-id]")

    def row(self, order_id: int) -> Locator:
        return self.page.locator(f'tbody tr[data-order-id="{order_id}"]')

    def changes(self) -> Locator:
        """The log's change lines, newest first."""
        return self.page.locator('[data-testid="log"] li[data-kind="change"]')

    async def shown(self) -> list[Row]:
        """The table, top to bottom."""
        rows = await self.rows().evaluate_all(
            "rows => rows.map(r => [Number(r.dataset.orderId), r.dataset.status, Number(r.dataset.version)])"
        )
        return [(int(i), str(s), int(v)) for i, s, v in rows]

    async def expect_table(self, expected: list[Row], within: float = 5.0) -> None:
        latest: list[Row] = []

        async def matches() -> bool:
            nonlocal latest
            latest = await self.shown()
            return latest == expected

        try:
            await until_async(matches, within, "the table to show the database's orders")
        except AssertionError:
            raise AssertionError(f"the table shows {latest}, expected {expected}") from None

    async def expect_counts(self, counts: dict[str, int]) -> None:
        """The counts per status shown (raw numbers in data-count), and their total."""
        box = self.page.get_by_test_id("counts")
        for status, n in counts.items():
            await expect(box.get_by_test_id(f"count-{status}-item")).to_be_visible()
            await expect(box.get_by_test_id(f"count-{status}")).to_have_attribute("data-count", str(n), timeout=SOON)
            await expect(box.get_by_test_id(f"count-{status}")).to_have_text(f"{n:,}")
        await expect(box.get_by_test_id("count-total")).to_have_attribute("data-count", str(sum(counts.values())))

    async def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await expect(self.page.locator("tr.flash")).to_have_count(0, timeout=5_000)  # highlights faded
        await self.page.screenshot(path=str(SCREENSHOTS / name), full_page=True)

    async def close(self) -> None:
        await self.page.context.close()
        assert self.errors == [], f"errors in the page: {self.errors}"


async def expect_line(line: Locator, op: str, order_id: int, move: str, version: int | None = None) -> None:
    """A log line: the op, the order, the status move, the version."""
    await expect(line).to_have_attribute("data-op", op, timeout=SOON)
    await expect(line).to_have_attribute("data-order-id", str(order_id))
    await expect(line.locator(".move")).to_have_text(move)
    await expect(line.locator(".time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d\.\d{3}$"))
    if version is not None:
        await expect(line.locator(".version")).to_have_text(f"v{version}")


async def database_rows(url: str, status: str | None = None) -> list[Row]:
    """What the table must show: newest ``updated_at`` first, then the higher id."""
    orders = [o for o in (await database_orders(url)).values() if status is None or o["status"] == status]
    orders.sort(key=lambda o: (o["updated_at"], o["id"]), reverse=True)
    return [(o["id"], o["status"], o["version"]) for o in orders]


async def seed(url: str, orders: list[tuple[str, str, str]] = SEED, token: str | None = None) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(url, session, token)
        return [await api.create(customer, product, status) for customer, product, status in orders]


def query_of(request: Request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(request.url).query).items()}


# -- the tests ------------------------------------------------------------------------------------


async def test_the_page_shows_the_orders_and_follows_inserts_updates_and_deletes(
    service: Service, browser: Browser, database_url: str
) -> None:
    created = await seed(service.url)
    tab = await LiveTab.open(browser, f"{service.url}/live.html", state=None)
    assert tab.response is not None
    headers = tab.response.headers
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    # Its own inline script and style (by hash), requests to its own origin, and nothing else.
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "'unsafe-inline'" not in policy and "script-src 'sha256-" in policy and "style-src 'sha256-" in policy
    again = await tab.page.request.get(f"{service.url}/live.html", headers={"If-None-Match": headers["etag"]})
    assert again.status == 304

    await tab.expect_state("live")
    await expect(tab.page.get_by_test_id("state-label")).to_have_text("Live")
    await expect(tab.rows()).to_have_count(len(SEED))
    await expect(tab.page.get_by_test_id("count")).to_have_text(str(len(SEED)))
    await tab.expect_table(await database_rows(database_url))
    assert query_of(tab.streams[0]) == {}  # all orders, from a snapshot
    await expect(tab.page.get_by_test_id("position")).to_have_text(f"at {await tab.position()}")
    await expect(tab.page.get_by_test_id("log").locator("li").first).to_contain_text(f"snapshot: {len(SEED)} orders")
    # The counts per status, as the service counts them (caught_up, then every change).
    await tab.expect_counts({"pending": 2, "shipped": 2, "delivered": 2})

    # Every field shows, and data is text, never markup.
    first = created[0]
    cells = tab.row(first["id"]).locator("td")
    await expect(cells).to_have_text(
        [f"#{first['id']}", "Grace Hopper", "Mechanical keyboard", "delivered", "v1", re.compile(r"\d\d:\d\d:\d\d")]
    )
    assert await tab.row(first["id"]).locator("time").get_attribute("datetime") == first["updated_at"]
    evil = next(o for o in created if o["customer_name"] == EVIL)
    await expect(tab.row(evil["id"]).locator("td.c-customer")).to_have_text(EVIL)
    await expect(tab.page.locator("tbody img, tbody b")).to_have_count(0)
    assert await tab.page.evaluate("window.pwned") is None

    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)

        # An insert: a new row on top, and a log line.
        made = await api.create("Ada Lovelace", "Desk lamp")
        await expect(tab.row(made["id"])).to_contain_text("Ada Lovelace", timeout=SOON)
        await expect(tab.rows().first).to_have_attribute("data-order-id", str(made["id"]))
        await expect(tab.page.get_by_test_id("count")).to_have_text(str(len(SEED) + 1))
        await expect_line(tab.changes().first, "insert", made["id"], "→ pending", 1)
        await tab.expect_counts({"pending": 3, "shipped": 2, "delivered": 2})

        # An update that moves the status: the row changes in place, the log says from what to what.
        await api.update(made["id"], if_match=1, status="shipped")
        await expect(tab.row(made["id"]).locator(".badge")).to_have_text("shipped", timeout=SOON)
        await expect(tab.row(made["id"])).to_contain_text("v2")
        await expect_line(tab.changes().first, "update", made["id"], "pending → shipped", 2)
        await tab.expect_counts({"pending": 2, "shipped": 3, "delivered": 2})

        # An update of an older order takes it to the top; no status move to show.
        older = created[1]
        await api.update(older["id"], if_match=1, product_name="USB4 dock")
        await expect(tab.rows().first).to_have_attribute("data-order-id", str(older["id"]), timeout=SOON)
        await expect(tab.rows().first).to_contain_text("USB4 dock")
        await expect_line(tab.changes().first, "update", older["id"], "shipped", 2)
        await tab.screenshot("live-page.png")

        # A delete: the row goes, the log says what it was.
        await api.delete(made["id"])
        await expect(tab.row(made["id"])).to_have_count(0, timeout=SOON)
        await expect_line(tab.changes().first, "delete", made["id"], "shipped → deleted")
        await expect(tab.page.get_by_test_id("count")).to_have_text(str(len(SEED)))
        await tab.expect_counts({"pending": 2, "shipped": 2, "delivered": 2})

    await tab.expect_table(await database_rows(database_url))
    await expect(tab.changes()).to_have_count(4)
    await expect(tab.page.locator('[data-tag="replayed"]')).to_have_count(0)  # all of them live

    # At 390 px wide: nothing sticks out sideways, every row still shows.
    await tab.page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    await expect(tab.rows()).to_have_count(len(SEED))
    assert await tab.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await tab.close()


async def test_a_page_filtered_to_pending_drops_an_order_that_ships_and_takes_a_new_pending_one(
    service: Service, browser: Browser, database_url: str
) -> None:
    created = await seed(service.url)
    pending = [o for o in created if o["status"] == "pending"]
    tab = await LiveTab.open(browser, f"{service.url}/live.html?status=pending")
    await expect(tab.page.get_by_test_id("filter")).to_have_text("Status: pending")
    await tab.expect_table(await database_rows(database_url, "pending"))
    assert query_of(tab.streams[0]) == {"status": "pending"}
    await tab.expect_counts({"pending": len(pending)})  # only the status it follows
    for other in ("shipped", "delivered"):
        await expect(tab.page.get_by_test_id(f"count-{other}-item")).to_be_hidden()

    async with aiohttp.ClientSession() as session:
        api = OrdersClient(service.url, session)
        moving = pending[0]
        await api.update(moving["id"], if_match=1, status="shipped")
        await expect(tab.row(moving["id"])).to_have_count(0, timeout=SOON)
        await expect_line(tab.changes().first, "update", moving["id"], "pending → shipped", 2)
        await expect(tab.changes().first.locator('[data-tag="left the view"]')).to_be_visible()

        # Orders of other statuses never show; a new pending one does.
        await api.create("Radia Perlman", "NVMe SSD", "shipped")
        fresh = await api.create("Ken Thompson", "Webcam")
        await expect(tab.row(fresh["id"])).to_be_visible(timeout=SOON)
    await tab.expect_table(await database_rows(database_url, "pending"))
    await expect(tab.page.get_by_test_id("count")).to_have_text(str(len(pending)))
    await tab.expect_counts({"pending": len(pending)})
    await tab.close()

    # A filter the service would refuse is not sent at all.
    for address, problem in [
        ("live.html?status=lost", 'unknown status "lost"'),
        ("live.html?status=pending&id=3", "not both"),
        ("live.html#id=x", '"x" is not an order id'),
    ]:
        bad = await LiveTab.open(browser, f"{service.url}/{address}", state="invalid")
        await expect(bad.page.get_by_test_id("state-detail")).to_contain_text(problem)
        assert bad.streams == []
        await bad.close()


async def test_after_a_restart_the_browser_resumes_with_last_event_id_and_shows_the_changes_made_meanwhile(
    database_url: str, browser: Browser
) -> None:
    port = free_port()
    first = await start_service(database_url, port)
    try:
        kept, other = await seed(
            first.url, [("Ada Lovelace", "Keyboard", "pending"), ("Grace Hopper", "Monitor", "pending")]
        )
        tab = await LiveTab.open(browser, f"{first.url}/live.html")
        await expect(tab.rows()).to_have_count(2)
        held = await tab.position()
    finally:
        await first.stop()

    await tab.expect_state("reconnecting")
    await expect(tab.page.get_by_test_id("log").locator("li").first).to_have_text(
        re.compile(r"the connection was lost$")
    )

    # The service is down; the database is not. Someone writes.
    async with opened(database_url) as writer:
        made = await writer.store.create(OrderCreate(customer_name="Alan Turing", product_name="Desk"))
        await writer.store.update(kept["id"], OrderPatch(status="shipped"), expected_version=1)
        await writer.store.delete(other["id"], expected_version=None)
        added = await writer.store.create(OrderCreate(customer_name="Katherine Johnson", product_name="Webcam"))

    second = await start_service(database_url, port)
    try:
        await tab.expect_state("live", within_ms=20_000)
        await expect(tab.page.get_by_test_id("state-detail")).to_have_text("caught up: 4 changes replayed")
        await tab.expect_table(await database_rows(database_url))
        await expect(tab.row(kept["id"]).locator(".badge")).to_have_text("shipped")
        await expect(tab.row(made.id)).to_contain_text("Alan Turing")
        await expect(tab.row(added.id)).to_contain_text("Katherine Johnson")
        await tab.expect_counts({"pending": 2, "shipped": 1, "delivered": 0})  # from caught_up

        # The browser's own reconnect: the same EventSource, from the position it held.
        resumed = tab.streams[-1]
        assert (await resumed.all_headers()).get("last-event-id") == held
        assert query_of(resumed) == {}
        # The four missed changes, in commit order (the log is newest first), marked as replayed.
        replayed = tab.page.locator('[data-testid="log"] li.replayed')
        await expect(replayed).to_have_count(4)
        ops = await replayed.evaluate_all("lines => lines.map(l => [l.dataset.op, Number(l.dataset.orderId)])")
        assert ops[::-1] == [["insert", made.id], ["update", kept["id"]], ["delete", other["id"]], ["insert", added.id]]
        await expect(tab.page.get_by_test_id("log").locator("li").first).to_have_text(
            re.compile(r"caught up: 4 changes replayed$")
        )

        # and it is live again: what comes now is not a replay.
        async with aiohttp.ClientSession() as session:
            late = await OrdersClient(second.url, session).create("Barbara Liskov", "Lamp")
        await expect(tab.row(late["id"])).to_be_visible(timeout=SOON)
        await expect(tab.changes().first).to_have_attribute("data-order-id", str(late["id"]))
        await expect(tab.changes().first).not_to_have_class(re.compile("replayed"))
        await tab.close()
    finally:
        await second.stop()


class Refusing:
    """Stands on the service's port while it is down and answers every request with 502, as a
    proxy in front of a stopped instance does. EventSource gives up on such an answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stream_requests: list[float] = []  # when each stream request came (monotonic)
        self.runner: web.AppRunner | None = None

    async def answer(self, request: web.Request) -> web.Response:
        if request.path == "/api/changes/stream":
            self.stream_requests.append(time.monotonic())
        return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")

    async def __aenter__(self) -> Refusing:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self.answer)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_when_the_stream_is_refused_the_page_retries_by_itself_with_growing_delays_and_since(
    database_url: str, browser: Browser
) -> None:
    port = free_port()
    first = await start_service(database_url, port)
    try:
        kept, _ = await seed(
            first.url, [("Ada Lovelace", "Keyboard", "pending"), ("Grace Hopper", "Monitor", "shipped")]
        )
        tab = await LiveTab.open(browser, f"{first.url}/live.html")
        await expect(tab.rows()).to_have_count(2)
        held = await tab.position()
    finally:
        await first.stop()

    async with Refusing(port) as proxy:
        # The browser's reconnect gets a 502 and gives up (CLOSED); the page tries again, and again.
        await until(lambda: len(proxy.stream_requests) >= 4, within=15, what="four refused stream requests")
        await tab.expect_state("reconnecting")
        await expect(tab.page.get_by_test_id("state-detail")).to_contain_text("502")
        await expect(tab.page.get_by_test_id("state-detail")).to_contain_text(re.compile(r"next try in [\d.]+ s"))
        hits = proxy.stream_requests
        # The page's own delays grow: about 0.5 s, then 1 s, then 2 s (each within ±20 %).
        assert hits[2] - hits[1] < hits[3] - hits[2], hits
        # Each of them is a new EventSource, which sends no Last-Event-ID: the position is in the address.
        again = tab.streams[-1]
        assert query_of(again) == {"since": held}
        assert "last-event-id" not in await again.all_headers()

        async with opened(database_url) as writer:
            await writer.store.update(kept["id"], OrderPatch(status="delivered"), expected_version=1)
            added = await writer.store.create(OrderCreate(customer_name="Alan Turing", product_name="Desk"))

    second = await start_service(database_url, port)
    try:
        await tab.expect_state("live", within_ms=20_000)
        await expect(tab.page.get_by_test_id("state-detail")).to_have_text("caught up: 2 changes replayed")
        assert query_of(tab.streams[-1]) == {"since": held}
        await tab.expect_table(await database_rows(database_url))
        await expect(tab.row(added.id)).to_contain_text("Alan Turing")
        await expect(tab.page.locator('[data-testid="log"] li.replayed')).to_have_count(2)
        await tab.close()
    finally:
        await second.stop()


async def test_with_a_read_token_the_page_takes_it_from_the_fragment_and_says_when_it_is_refused(
    database_url: str, browser: Browser
) -> None:
    token = "reader-secret"
    async with running_service(settings_for(database_url, port=free_port(), read_token=token)) as service:
        await seed(service.url, SEED[:3], token=token)

        tab = await LiveTab.open(browser, f"{service.url}/live.html?status=pending#token={token}")
        await expect(tab.rows()).to_have_count(1)
        assert tab.page.url == f"{service.url}/live.html?status=pending"  # the token left the address bar
        # EventSource sends no headers: the stream is let in with a ticket taken with the token
        # (POST /api/stream-tickets); the token itself never goes in a URL.
        stream = query_of(tab.streams[0])
        assert stream.keys() == {"status", "ticket"} and stream["status"] == "pending", stream
        assert token not in tab.streams[0].url
        assert tab.tickets >= 1
        # Kept in this browser: the page opened again without it still gets in.
        await tab.page.goto(f"{service.url}/live.html")
        await tab.expect_state("live")
        await expect(tab.rows()).to_have_count(3)
        await tab.close()

        wrong = await LiveTab.open(browser, f"{service.url}/live.html#token=not-the-token", state="refused")
        await expect(wrong.page.get_by_test_id("state-detail")).to_contain_text("403 forbidden")
        await expect(wrong.rows()).to_have_count(0)
        await wrong.close()

        missing = await LiveTab.open(browser, f"{service.url}/live.html", state="refused")
        await expect(missing.page.get_by_test_id("state-detail")).to_contain_text("401 unauthorized")
        await expect(missing.page.get_by_test_id("state-detail")).to_contain_text("#token=")
        await missing.close()


async def test_a_snapshot_of_several_pages_builds_the_whole_table_and_then_follows_the_changes(
    postgres_url: str, browser: Browser
) -> None:
    """More orders than one ``snapshot`` page holds (1,000): the page applies each page as it
    comes (no id on them), then ``caught_up`` gives the position and the counts."""
    async with running_service(settings_for(postgres_url, port=free_port())) as service:
        await insert_orders(postgres_url, 2500)
        counts = await database_counts(postgres_url)

        async def holds_them() -> bool:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{service.url}/api/orders", params={"limit": "1"}) as response,
            ):
                body = await response.json()
            return bool(sum(body.get("counts", {}).values()) == 2500)

        await until_async(holds_them, within=20, what="the service to hold the 2,500 orders")

        tab = await LiveTab.open(browser, f"{service.url}/live.html", state="live")
        await expect(tab.rows()).to_have_count(2500)
        await tab.expect_table(await database_rows(postgres_url))
        await expect(tab.page.get_by_test_id("count")).to_have_text("2500")
        await tab.expect_counts(counts)
        await expect(tab.page.get_by_test_id("log").locator("li").first).to_contain_text("snapshot: 2500 orders")
        assert await tab.position()

        # and it is live: an old order changes, and goes to the top
        oldest = (await database_rows(postgres_url))[-1]
        moved_to = "delivered" if oldest[1] != "delivered" else "pending"
        async with aiohttp.ClientSession() as session:
            await OrdersClient(service.url, session).update(oldest[0], if_match=1, status=moved_to)
        await expect(tab.rows().first).to_have_attribute("data-order-id", str(oldest[0]), timeout=SOON)
        counts[oldest[1]] -= 1
        counts[moved_to] += 1
        await tab.expect_counts(counts)
        await tab.expect_table(await database_rows(postgres_url))
        await tab.close()
