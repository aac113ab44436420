"""End to end: JWT identities in the browser (docs/protocol.md, "Identities and scopes"), in
headless Chromium, against a real service and database.

- Two tabs of one browser (sessionStorage is per tab): a staff tab and a customer tab, each from
  its own token URL; the customer sees exactly her orders and her counts, staff all of them.
- A token URL minting short tokens: the dashboard refreshes in-band (``refresh_token``) and
  stays live on the same socket across several lifetimes.
- A fixed token that expires, and tokens revoked while the pages are open: the pages say so and
  stop.
- /live.html on short tokens from a token URL: each stream ends at exp (``token_expired``), the
  page comes back with a new ticket and ``since``, and loses or repeats nothing, with writes made
  throughout (some of them while it reconnects).
- /live.html with a fixed token that has expired, or expires while the page is open.

No page ever puts a token in a URL: streams are let in with stream tickets. Needs Debian's
chromium and a built dashboard (scripts/build-frontend.sh); without either the module is
skipped. Every wait is on a condition; the only timed windows check that nothing happens
(``holds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from base64 import b64encode
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from chromium_launch import DESKTOP, DIST, SCREENSHOTS, skip_without_a_dashboard

pytestmark = pytest.mark.browser

skip_without_a_dashboard()

import aiohttp  # noqa: E402
import jwt  # noqa: E402
from aiohttp import web  # noqa: E402
from playwright.async_api import Browser, BrowserContext, Locator, Page, Request, Route, WebSocket, expect  # noqa: E402

from conftest import database_orders, free_port, settings_for, until, until_async  # noqa: E402
from orders_live.cli.demo import DemoIdentities  # noqa: E402
from orders_live.client.rest import OrdersClient  # noqa: E402
from orders_live.domain.identity import Role  # noqa: E402
from orders_live.identity.minting import mint_token  # noqa: E402
from orders_live.service import Service  # noqa: E402
from orders_live.settings import Settings  # noqa: E402

SECRET = "identity-browser-tests-secret-0123456789"  # HS256, 32 characters at least
ADA = "Ada Lovelace"
STATUSES = ("pending", "shipped", "delivered")
TOKEN_PATH = "/test/token"
SOON = 2_000  # ms for a change to show: it takes milliseconds; this leaves room on a busy machine
JWT_SHAPE = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")  # header.payload.signature, base64url
SEED = [
    (ADA, "Analytical engine", "pending"),
    (ADA, "Difference engine", "shipped"),
    (ADA, "Punched cards", "delivered"),
    ("Grace Hopper", "Mechanical keyboard", "delivered"),
    ("Grace Hopper", "Compiler manual", "pending"),
    ("Alan Turing", "USB-C dock", "shipped"),
    ("Katherine Johnson", '27" monitor', "pending"),
]

Row = tuple[int, str, int]  # id, status, version


# -- the service, tokens and a token endpoint -----------------------------------------------------


def mint(role: Role, sub: str, customer: str | None = None, ttl: float = 300.0, **claims: Any) -> str:
    return mint_token(role, sub=sub, customer=customer, ttl=ttl, secret=SECRET, extra=claims or None)


def jwt_settings(database_url: str, **overrides: Any) -> Settings:
    return settings_for(database_url, port=free_port(), frontend_dir=DIST, jwt_secret=SECRET, **overrides)


@contextlib.asynccontextmanager
async def jwt_service(settings: Settings, routes: Sequence[web.RouteDef] = ()) -> AsyncIterator[Service]:
    """A service in JWT mode with more routes (a token endpoint), its change feed live."""
    service = Service(settings, routes=routes)
    await service.start()
    try:
        assert service.hub is not None
        await service.hub.wait_ready(10)
        yield service
    finally:
        await service.stop()


class TokenEndpoint:
    """``POST /test/token`` ``{"grant": ...}``: a token for the grant's identity living ``ttl``
    seconds, as the demo's endpoint answers (which mints 300 s tokens). Counts its calls."""

    def __init__(self, ttl: float, grants: dict[str, tuple[Role, str, str | None]]) -> None:
        self.ttl = ttl
        self.grants = grants  # grant -> (role, sub, customer)
        self.calls: Counter[str] = Counter()
        self.minted: list[str] = []

    def route(self) -> web.RouteDef:
        return web.post(TOKEN_PATH, self.answer)

    def fragment(self, grant: str) -> str:
        return f"#token-url={TOKEN_PATH}&grant={grant}"

    async def answer(self, request: web.Request) -> web.Response:
        body = await request.json()
        found = self.grants.get(body.get("grant")) if isinstance(body, dict) else None
        if found is None:
            error = {"code": "unauthorized", "message": "not a grant of this test", "fields": {}}
            return web.json_response({"error": error}, status=401)
        self.calls[body["grant"]] += 1
        role, sub, customer = found
        token = mint(role, sub, customer, ttl=self.ttl)
        self.minted.append(token)
        return web.json_response({"token": token, "expires_in": int(self.ttl)})


def recording(route: web.RouteDef, minted: list[str]) -> web.RouteDef:
    """The same route, keeping every token it answers (to look for them in URLs later)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await route.handler(request)  # type: ignore[call-arg]
        if isinstance(response, web.Response) and response.status == 200 and response.text:
            minted.append(json.loads(response.text)["token"])
        return response

    return web.route(route.method, route.path, handler)


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    return claims


async def staff_api(url: str, session: aiohttp.ClientSession) -> OrdersClient:
    return OrdersClient(url, session, mint("staff", "staff:tests"))


async def seed(url: str, orders: list[tuple[str, str, str]] = SEED) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        api = await staff_api(url, session)
        return [await api.create(customer, product, status) for customer, product, status in orders]


async def database_rows(url: str, customer: str | None = None) -> list[Row]:
    """What a table must show: the customer's orders (all without one), newest ``updated_at``
    first, then the higher id."""
    orders = [o for o in (await database_orders(url)).values() if customer is None or o["customer_name"] == customer]
    orders.sort(key=lambda o: (o["updated_at"], o["id"]), reverse=True)
    return [(o["id"], o["status"], o["version"]) for o in orders]


async def holds(read: Callable[[], Any], seconds: float, what: str) -> None:
    """That nothing happens: ``read()`` stays what it is now for ``seconds`` (checked every 10 ms)."""
    before = read()
    deadline = time.monotonic() + seconds
    while True:
        now = read()
        assert now == before, f"{what}: {before} became {now}"
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.01)


# -- pages -------------------------------------------------------------------------------------------


class Watched:
    """One page; records uncaught errors, every request URL, stream tickets asked for (with the
    token they were asked with), event streams, WebSockets and ``refresh_token`` frames."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.urls: list[str] = []  # every request the page made, and every WebSocket it opened
        self.tickets: list[str] = []  # the bearer token of each POST /api/stream-tickets
        self.streams: list[str] = []  # the URLs of the event streams (orders and the agent log)
        self.sockets = 0
        self.refreshes_sent = 0
        self.refreshes_ok = 0
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", self._request)
        page.on("websocket", self._websocket)

    def _request(self, request: Request) -> None:
        self.urls.append(request.url)
        path = urlsplit(request.url).path
        if request.method == "POST" and path == "/api/stream-tickets":
            self.tickets.append(request.headers.get("authorization", "").removeprefix("Bearer "))
        if path.endswith("/stream"):
            self.streams.append(request.url)

    def _websocket(self, socket: WebSocket) -> None:
        self.sockets += 1
        self.urls.append(socket.url)

        def sent(payload: str | bytes) -> None:
            if isinstance(payload, str) and payload.startswith("42") and '"refresh_token"' in payload:
                self.refreshes_sent += 1

        def received(payload: str | bytes) -> None:  # an ack: 43<id>[{"ok":true,"exp":...}]
            if isinstance(payload, str) and re.match(r'43\d+\[\{"ok": ?true, ?"exp"', payload):
                self.refreshes_ok += 1

        socket.on("framesent", sent)
        socket.on("framereceived", received)

    def assert_no_token_in_urls(self, tokens: Sequence[str]) -> None:
        assert self.urls
        for url in self.urls:
            assert "token" not in parse_qs(urlsplit(url).query), url
            assert not JWT_SHAPE.search(url), url
            for token in tokens:
                assert token not in url, url

    def assert_streams_use_tickets(self) -> None:
        assert self.streams and len(self.tickets) >= len(self.streams)
        tickets = [parse_qs(urlsplit(url).query).get("ticket", [""])[0] for url in self.streams]
        assert all(tickets), self.streams
        assert len(set(tickets)) == len(tickets), "a ticket was used twice"

    async def close(self) -> None:
        await self.page.close()
        assert self.errors == [], f"uncaught errors in the page: {self.errors}"


class Dashboard(Watched):
    @classmethod
    async def open(cls, context: BrowserContext, url: str, phase: str | None = "live") -> Dashboard:
        tab = cls(await context.new_page())
        await tab.page.goto(url)
        if phase is not None:
            await tab.expect_phase(phase)
        return tab

    @property
    def phase(self) -> Locator:
        return self.page.get_by_test_id("connection").locator("[data-phase]")

    async def expect_phase(self, phase: str, within_ms: float = 10_000) -> None:
        await expect(self.phase).to_have_attribute("data-phase", phase, timeout=within_ms)

    def rows(self) -> Locator:
        return self.page.locator("tbody tr[data-order-id]")

    def row(self, order_id: int) -> Locator:
        return self.page.locator(f'tbody tr[data-order-id="{order_id}"]')

    async def shown(self) -> set[int]:
        ids = await self.rows().evaluate_all("rows => rows.map(r => Number(r.dataset.orderId))")
        return {int(i) for i in ids}

    async def expect_ids(self, expected: set[int], within: float = 5.0) -> None:
        latest: set[int] = set()

        async def matches() -> bool:
            nonlocal latest
            latest = await self.shown()
            return latest == expected

        try:
            await until_async(matches, within, "the table to show the expected orders")
        except AssertionError:
            raise AssertionError(f"the table shows {sorted(latest)}, expected {sorted(expected)}") from None

    async def expect_counts(self, orders: Sequence[dict[str, Any]]) -> None:
        """The counts per status the tiles show (raw numbers in data-count) are those of ``orders``."""
        counts = Counter(o["status"] for o in orders)
        tiles = self.page.get_by_test_id("counts")
        for status in STATUSES:
            await expect(tiles.get_by_test_id(f"count-{status}")).to_have_attribute(
                "data-count", str(counts[status]), timeout=SOON
            )
        await expect(tiles.get_by_test_id("count-total")).to_have_attribute("data-count", str(len(orders)))

    async def watch_phases(self) -> None:
        """From now on, every value the orders connection's data-phase takes (not the Agent
        panel's) goes to window.phasesSeen."""
        await self.page.evaluate(
            """() => {
                window.phasesSeen = [];
                new MutationObserver((changes) => {
                    for (const change of changes) window.phasesSeen.push(change.target.getAttribute("data-phase"));
                }).observe(document.querySelector('[data-testid="connection"]'),
                           { subtree: true, attributes: true, attributeFilter: ["data-phase"] });
            }"""
        )

    async def phases_seen(self) -> list[str]:
        seen: list[str] = await self.page.evaluate("window.phasesSeen")
        return seen

    async def picture(self) -> bytes:
        await expect(self.page.locator("tr.flash")).to_have_count(0, timeout=5_000)  # highlights faded
        await self.page.mouse.move(0, 0)
        return await self.page.screenshot()


class LivePage(Watched):
    @classmethod
    async def open(cls, context: BrowserContext, url: str, state: str | None = "live") -> LivePage:
        tab = cls(await context.new_page())
        await tab.page.goto(url)
        if state is not None:
            await tab.expect_state(state)
        return tab

    @property
    def state(self) -> Locator:
        return self.page.get_by_test_id("state")

    async def expect_state(self, state: str, within_ms: float = 10_000) -> None:
        await expect(self.state).to_have_attribute("data-state", state, timeout=within_ms)

    def info(self, text: str) -> Locator:
        return self.page.locator('[data-testid="log"] li[data-kind="info"]', has_text=text)

    def changes(self) -> Locator:
        return self.page.locator('[data-testid="log"] li[data-kind="change"]')

    async def logged(self) -> list[tuple[str, int, int | None]]:
        """The log's change lines, oldest first: (op, order id, version or None)."""
        lines = await self.changes().evaluate_all(
            "lines => lines.map(l => [l.dataset.op, Number(l.dataset.orderId), l.dataset.version ?? null])"
        )
        return [(str(op), int(i), None if v is None else int(v)) for op, i, v in reversed(lines)]

    async def shown(self) -> list[Row]:
        rows = await self.page.locator("tbody tr[data-order-id]").evaluate_all(
            "rows => rows.map(r => [Number(r.dataset.orderId), r.dataset.status, Number(r.dataset.version)])"
        )
        return [(int(i), str(s), int(v)) for i, s, v in rows]

    def stream_queries(self) -> list[dict[str, str]]:
        return [
            {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            for url in self.streams
            if "/api/changes/stream" in url
        ]


# -- 1. two identities, two tabs ---------------------------------------------------------------------


async def test_a_staff_tab_and_a_customer_tab_side_by_side_each_see_their_own_scope(
    database_url: str, browser: Browser
) -> None:
    """One browser, two tabs (sessionStorage is per tab), each opened at its own URL from the
    demo's token endpoint: the customer tab shows exactly Ada's orders and counts, the staff tab
    all of them; an order moved away from Ada leaves her tab only; a new one for her shows in
    both. No request URL of either tab holds a token; their streams use stream tickets."""
    demo = DemoIdentities(jwt_settings(database_url))
    minted: list[str] = []
    routes = [recording(route, minted) for route in demo.routes()]
    grant = {role: g for g, (role, _, _) in demo.grants.items()}
    async with jwt_service(demo.settings, routes) as service:
        created = await seed(service.url)
        context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        staff = await Dashboard.open(context, f"{service.url}/#token-url=/demo/token&grant={grant['staff']}")
        ada = await Dashboard.open(context, f"{service.url}/#token-url=/demo/token&grant={grant['customer']}")
        assert ada.page.url == f"{service.url}/" and staff.page.url == f"{service.url}/"  # out of the address bar
        # Each tab kept its own identity (per tab), so the second did not replace the first.
        assert await staff.page.evaluate("sessionStorage.getItem('orders-live-grant')") == grant["staff"]
        assert await ada.page.evaluate("sessionStorage.getItem('orders-live-grant')") == grant["customer"]

        hers = [o for o in created if o["customer_name"] == ADA]
        await ada.expect_ids({o["id"] for o in hers})
        await ada.expect_counts(hers)
        await staff.expect_ids({o["id"] for o in created})
        await staff.expect_counts(created)
        await expect(ada.rows().filter(has_not_text=ADA)).to_have_count(0)

        async with aiohttp.ClientSession() as session:
            api = await staff_api(service.url, session)
            # Staff moves one of Ada's orders to Grace Hopper: gone from Ada's tab, kept in staff's.
            moved = hers[0]
            await api.update(moved["id"], if_match=moved["version"], customer_name="Grace Hopper")
            await expect(ada.row(moved["id"])).to_have_count(0, timeout=SOON)
            await expect(staff.row(moved["id"])).to_contain_text("Grace Hopper", timeout=SOON)
            hers = hers[1:]
            await ada.expect_ids({o["id"] for o in hers})
            await ada.expect_counts(hers)
            await staff.expect_counts(created)

            # A new order for Ada: in her tab (and in staff's); one for someone else in staff's only.
            new = await api.create(ADA, "Bernoulli numbers table", "pending")
            other = await api.create("Edsger Dijkstra", "Standing desk", "shipped")
            await expect(ada.row(new["id"])).to_contain_text("Bernoulli numbers table", timeout=SOON)
            await expect(staff.row(other["id"])).to_be_visible(timeout=SOON)
            await expect(staff.row(new["id"])).to_be_visible()
            hers.append(new)
            created += [new, other]
            await ada.expect_ids({o["id"] for o in hers})
            await ada.expect_counts(hers)
            await staff.expect_ids({o["id"] for o in created})
            await staff.expect_counts(created)
        await expect(ada.rows().filter(has_not_text=ADA)).to_have_count(0)
        assert {order_id for order_id, _, _ in await database_rows(database_url, ADA)} == {o["id"] for o in hers}

        # Streams (the Agent panel's) open with a ticket, each asked with the tab's own token.
        for tab, role in ((staff, "staff"), (ada, "customer")):
            await expect(tab.page.get_by_test_id("agent-state")).to_have_attribute("data-phase", "live")
            tab.assert_streams_use_tickets()
            assert {claims_of(t)["role"] for t in tab.tickets} == {role}
        assert {claims_of(t).get("customer") for t in ada.tickets} == {ADA}
        # and no token in any URL either tab asked for (the tokens came in POST answers only).
        assert len(minted) >= 2
        for tab in (staff, ada):
            tab.assert_no_token_in_urls(minted)

        # The picture for the README: the two tabs side by side.
        pictures = [await staff.picture(), await ada.picture()]
        await side_by_side(context, pictures, ["Staff", f"Customer: {ADA}"], SCREENSHOTS / "dashboard-scopes.png")
        await staff.close()
        await ada.close()
        await context.close()


async def side_by_side(context: BrowserContext, pictures: list[bytes], captions: list[str], path: Path) -> None:
    page = await context.new_page()
    await page.set_viewport_size({"width": 1600, "height": 600})
    figures = "".join(
        f"<figure><figcaption>{caption}</figcaption>"
        f'<img src="data:image/png;base64,{b64encode(png).decode()}"></figure>'
        for png, caption in zip(pictures, captions, strict=True)
    )
    await page.set_content(
        "<style>body{margin:0;display:flex;gap:16px;padding:16px;background:#d9dde3;font:600 16px system-ui}"
        "figure{margin:0;flex:1}figcaption{margin:0 0 8px}img{width:100%;border:1px solid #999;"
        f"border-radius:6px;display:block}}</style>{figures}"
    )
    await expect(page.locator("img")).to_have_count(len(pictures))
    await page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    await page.close()


# -- 2. refresh in-band ------------------------------------------------------------------------------


async def test_the_dashboard_refreshes_short_tokens_in_band_and_stays_live_on_the_same_socket(
    mongo_url: str, browser: Browser
) -> None:
    ttl = 6.0
    endpoint = TokenEndpoint(ttl, {"staff-grant": ("staff", "staff:refresher", None)})
    async with jwt_service(jwt_settings(mongo_url), [endpoint.route()]) as service:
        created = await seed(service.url, SEED[:3])
        context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        tab = await Dashboard.open(context, f"{service.url}/{endpoint.fragment('staff-grant')}")
        await tab.watch_phases()
        await expect(tab.rows()).to_have_count(len(created))
        gateway = service.gateway
        assert gateway is not None
        (sid,) = gateway.connection_per_sid  # this tab's socket
        first_exp = gateway.connection_per_sid[sid].identity.exp
        assert first_exp is not None and first_exp <= time.time() + ttl

        # Several lifetimes of the first token pass: the tab refreshes in-band each time.
        await until(
            lambda: time.time() > first_exp + 2 * ttl and tab.refreshes_ok >= 3,
            within=40,
            what="three lifetimes of the first token and three refreshes accepted",
        )
        assert endpoint.calls["staff-grant"] >= 3
        assert tab.refreshes_sent >= 3
        # The same socket throughout: never dropped (no token_expired), never a new one.
        assert list(gateway.connection_per_sid) == [sid]
        connection = gateway.connection_per_sid[sid]
        assert connection.identity.exp is not None and connection.identity.exp > first_exp + ttl
        assert connection.identity.exp > time.time()  # refreshed: the first token is long gone
        assert connection.identity.exp in {claims_of(token)["exp"] for token in endpoint.minted}
        assert tab.sockets == 1
        assert set(await tab.phases_seen()) <= {"live"}  # never reconnecting, never refused
        await expect(tab.phase).to_have_attribute("data-phase", "live")

        # and it is live: a change written now shows.
        async with aiohttp.ClientSession() as session:
            late = await (await staff_api(service.url, session)).create("Radia Perlman", "NVMe SSD")
        await expect(tab.row(late["id"])).to_be_visible(timeout=SOON)
        # Its REST calls send the current token (the first one expired long ago): a write goes through.
        await tab.page.get_by_label("Customer").fill("Ken Thompson")
        await tab.page.get_by_label("Product").fill("Webcam")
        async with tab.page.expect_response(
            lambda r: urlsplit(r.url).path == "/api/orders" and r.request.method == "POST"
        ) as answer:
            await tab.page.get_by_role("button", name="Create order").click()
        response = await answer.value
        assert response.status == 201
        bearer = (await response.request.all_headers())["authorization"].removeprefix("Bearer ")
        assert claims_of(bearer)["exp"] > first_exp + ttl
        made = await response.json()
        await expect(tab.row(made["id"])).to_contain_text("Ken Thompson", timeout=SOON)
        assert list(gateway.connection_per_sid) == [sid] and tab.sockets == 1
        assert set(await tab.phases_seen()) <= {"live"}
        tab.assert_no_token_in_urls(endpoint.minted)
        tab.assert_streams_use_tickets()
        await tab.close()
        await context.close()


# -- 3. a token that ends ----------------------------------------------------------------------------


async def test_a_fixed_token_that_expires_is_said_and_not_tried_again(mongo_url: str, browser: Browser) -> None:
    async with jwt_service(jwt_settings(mongo_url)) as service:
        created = await seed(service.url, SEED[:3])
        context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        token = mint("viewer", "viewer:short", ttl=4)
        tab = await Dashboard.open(context, f"{service.url}/#token={token}")
        await expect(tab.rows()).to_have_count(len(created))
        gateway = service.gateway
        assert gateway is not None and len(gateway.connection_per_sid) == 1

        # At exp the server ends the connection (token_expired); a fixed token cannot be renewed.
        banner = tab.page.get_by_test_id("refusal")
        await expect(banner.get_by_role("heading")).to_have_text(
            "Your token expired: open the dashboard at /#token=<a new token>", timeout=10_000
        )
        assert time.time() >= claims_of(token)["exp"]
        await tab.expect_phase("refused")
        await expect(tab.phase).to_contain_text("Token expired")
        await expect(tab.phase).to_contain_text("not retrying by itself")
        await expect(tab.page.get_by_test_id("refusal-retry")).to_have_text("Not retrying by itself")
        await expect(banner).to_contain_text("token_expired")
        await expect(tab.rows()).to_have_count(len(created))  # the last orders it had stay on screen
        await expect(tab.page.get_by_test_id("agent-state")).to_contain_text("your token expired", timeout=10_000)

        # It stops: no new socket, no new ticket, nothing at the server, while we look.
        await until(lambda: not gateway.connection_per_sid, what="the server to close the socket")
        await holds(
            lambda: (tab.sockets, len(tab.tickets), len(tab.streams), len(gateway.connection_per_sid)),
            3.0,
            "(sockets, tickets, streams, connections at the server)",
        )
        assert tab.sockets == 1
        await expect(tab.phase).to_have_attribute("data-phase", "refused")
        tab.assert_no_token_in_urls([token])
        await tab.close()
        await context.close()


async def test_a_revoked_token_ends_the_dashboard_and_the_live_page_within_a_second(
    mongo_url: str, browser: Browser, tmp_path: Path
) -> None:
    revoked = tmp_path / "revoked"
    revoked.write_text("# revoked subs and jtis\n")
    sub = "staff:leaving"
    endpoint = TokenEndpoint(300, {"leaving": ("staff", sub, None)})
    async with jwt_service(jwt_settings(mongo_url, revoked=revoked), [endpoint.route()]) as service:
        created = await seed(service.url, SEED[:3])
        token = mint("staff", sub)
        context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        fixed = await Dashboard.open(context, f"{service.url}/#token={token}")
        renewable = await Dashboard.open(context, f"{service.url}/{endpoint.fragment('leaving')}")
        live = await LivePage.open(context, f"{service.url}/live.html#token={token}")
        for tab in (fixed, renewable):
            await expect(tab.rows()).to_have_count(len(created))
        await expect(live.page.locator("tbody tr")).to_have_count(len(created))
        gateway = service.gateway
        assert gateway is not None and len(gateway.connection_per_sid) == 2

        with revoked.open("a") as file:
            file.write(f"{sub}\n")
        written = time.monotonic()
        # The fixed token's tab: told at once (token_revoked), final.
        await expect(fixed.page.get_by_test_id("refusal").get_by_role("heading")).to_have_text(
            "Your token was revoked", timeout=2_000
        )
        took = time.monotonic() - written
        await expect(fixed.phase).to_contain_text("Token revoked")
        await expect(fixed.page.get_by_test_id("refusal-retry")).to_have_text("Not retrying by itself")
        # The token URL's tab tries one new token (the same sub: refused too), then says so, final.
        await expect(renewable.page.get_by_test_id("refusal").get_by_role("heading")).to_have_text(
            "Your token was revoked", timeout=2_000
        )
        await expect(renewable.page.get_by_test_id("refusal")).to_contain_text("Open the dashboard with another grant")
        await expect(renewable.page.get_by_test_id("refusal-retry")).to_have_text("Not retrying by itself")
        # /live.html: the stream ends (token_revoked), the next ticket is refused, and it says so.
        await live.expect_state("refused", within_ms=2_000)
        await expect(live.page.get_by_test_id("state-detail")).to_have_text("your token was revoked")
        await expect(live.state).to_have_attribute("data-final", "true")
        await expect(live.info("the token was revoked: reconnecting with a new ticket")).to_have_count(1)
        all_said = time.monotonic() - written
        assert took < 1.5, f"the dashboard said it after {took:.2f} s"
        assert all_said < 2.5, f"the three pages said it after {all_said:.2f} s"

        # The pages with the fixed token stop (the one with a token URL: see the next test).
        await until(lambda: not gateway.connection_per_sid, what="the server to close the sockets")
        await holds(
            lambda: [(t.sockets, len(t.tickets), len(t.streams)) for t in (fixed, live)],
            2.0,
            "[(sockets, tickets, streams) of each page]",
        )
        assert not gateway.connection_per_sid
        for tab in (fixed, renewable, live):
            tab.assert_no_token_in_urls([token, *endpoint.minted])
            await tab.close()
        await context.close()


async def test_a_dashboard_whose_token_url_gives_revoked_tokens_stops_asking_once_it_says_so(
    mongo_url: str, browser: Browser, tmp_path: Path
) -> None:
    """The banner says "Your token was revoked" and "Not retrying by itself": then the page must
    not go on asking its token URL for tokens and the service for stream tickets by itself."""
    revoked = tmp_path / "revoked"
    revoked.write_text("")
    sub = "staff:leaving"
    endpoint = TokenEndpoint(300, {"leaving": ("staff", sub, None)})
    async with jwt_service(jwt_settings(mongo_url, revoked=revoked), [endpoint.route()]) as service:
        await seed(service.url, SEED[:3])
        context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        tab = await Dashboard.open(context, f"{service.url}/{endpoint.fragment('leaving')}")
        await expect(tab.page.get_by_test_id("agent-state")).to_have_attribute("data-phase", "live")
        revoked.write_text(f"{sub}\n")
        await expect(tab.page.get_by_test_id("refusal").get_by_role("heading")).to_have_text(
            "Your token was revoked", timeout=2_000
        )
        await expect(tab.page.get_by_test_id("refusal-retry")).to_have_text("Not retrying by itself")
        await expect(tab.phase).to_contain_text("not retrying by itself")
        gateway = service.gateway
        assert gateway is not None
        await until(lambda: not gateway.connection_per_sid, what="the server to close the socket")
        # Fails (frontend/src/agentFeed.ts): the Agent panel keeps asking the token URL for a token
        # and the service for a ticket, after 1 s, 2 s, 4 s … up to every 30 s, for good.
        await holds(
            lambda: (tab.sockets, endpoint.calls["leaving"], len(tab.tickets), len(tab.streams)),
            4.0,
            "(sockets, tokens asked of the token URL, stream tickets asked, streams opened)",
        )
        await tab.close()
        await context.close()


# -- 4. /live.html across expiries -----------------------------------------------------------------


class Writer:
    """Writes as staff, one write at a time, and keeps what Ada's view must get from each:
    (op, id, version) for a change of her orders, (delete, id, None) for one that left her."""

    def __init__(self, api: OrdersClient, orders: list[dict[str, Any]]) -> None:
        self.api = api
        self.orders = {o["id"]: o for o in orders}
        self.expected: list[tuple[str, int, int | None]] = []
        self.lock = asyncio.Lock()
        self.writes = 0
        self.stopped = False  # no more writes once set
        self.kinds = itertools.cycle(
            ["create_ada", "status_ada", "create_other", "move_away", "product_ada", "move_in", "delete_ada", "other"]
        )

    def _hers(self) -> list[dict[str, Any]]:
        return sorted((o for o in self.orders.values() if o["customer_name"] == ADA), key=lambda o: o["id"])

    def _others(self) -> list[dict[str, Any]]:
        return sorted((o for o in self.orders.values() if o["customer_name"] != ADA), key=lambda o: o["id"])

    async def _update(self, order: dict[str, Any], **fields: str) -> dict[str, Any]:
        updated = await self.api.update(order["id"], if_match=order["version"], **fields)
        self.orders[updated["id"]] = updated
        return updated

    async def step(self, kind: str | None = None) -> None:
        async with self.lock:
            if self.stopped:  # checked under the lock: a reconnect's writes may be midway when it is set
                return
            kind = kind or next(self.kinds)
            hers, others = self._hers(), self._others()
            if kind in ("status_ada", "product_ada", "move_away", "delete_ada") and len(hers) < 3:
                kind = "create_ada"
            self.writes += 1
            n = self.writes
            if kind == "create_ada":
                made = await self.api.create(ADA, f"Notebook {n}")
                self.orders[made["id"]] = made
                self.expected.append(("insert", made["id"], 1))
            elif kind == "status_ada":
                order = hers[n % len(hers)]
                nxt = STATUSES[(STATUSES.index(order["status"]) + 1) % 3]
                updated = await self._update(order, status=nxt)
                self.expected.append(("update", updated["id"], updated["version"]))
            elif kind == "product_ada":
                updated = await self._update(hers[-1], product_name=f"Notebook {n}, revised")
                self.expected.append(("update", updated["id"], updated["version"]))
            elif kind == "move_away":
                order = hers[0]
                await self._update(order, customer_name="Grace Hopper")
                self.expected.append(("delete", order["id"], None))
            elif kind == "move_in":
                updated = await self._update(others[0], customer_name=ADA)
                self.expected.append(("update", updated["id"], updated["version"]))
            elif kind == "delete_ada":
                order = hers[1]
                await self.api.delete(order["id"])
                del self.orders[order["id"]]
                self.expected.append(("delete", order["id"], None))
            elif kind == "create_other":
                made = await self.api.create("Grace Hopper", f"Manual {n}", "shipped")
                self.orders[made["id"]] = made
            else:  # someone else's order changes: nothing for Ada
                order = others[-1]
                await self._update(order, product_name=f"Manual {n}, revised")


async def test_the_live_page_on_short_tokens_reconnects_at_each_expiry_and_misses_nothing(
    database_url: str, browser: Browser
) -> None:
    ttl = 5.0
    endpoint = TokenEndpoint(ttl, {"ada": ("customer", f"customer:{ADA}", ADA)})
    async with jwt_service(jwt_settings(database_url), [endpoint.route()]) as service:
        created = await seed(service.url)
        context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        async with aiohttp.ClientSession() as session:
            writer = Writer(await staff_api(service.url, session), created)
            reconnect_writes = 0

            async def ticket(route: Route) -> None:
                """Every ticket after the first is a reconnect: write while the page has no stream."""
                nonlocal reconnect_writes
                if len(tab.tickets) > 1 and not writer.stopped:
                    for kind in ("create_ada", "status_ada", "move_away"):
                        await writer.step(kind)
                    reconnect_writes += 3
                await route.continue_()

            tab = LivePage(await context.new_page())
            await tab.page.route("**/api/stream-tickets", ticket)
            await tab.page.goto(f"{service.url}/live.html{endpoint.fragment('ada')}")
            await tab.expect_state("live")
            assert tab.page.url == f"{service.url}/live.html"
            assert await tab.shown() == await database_rows(database_url, ADA)
            await expect(tab.changes()).to_have_count(0)

            async def keep_writing() -> None:
                while not writer.stopped and writer.writes < 100:
                    await writer.step()
                    await asyncio.sleep(0.2)  # the pace of the writes, not a wait for anything

            writing = asyncio.create_task(keep_writing(), name="test-writer")
            try:
                # Three expiries: each stream ends with token_expired, the page comes back.
                expired = tab.info("the token expired: reconnecting with a new ticket")
                await until_async(lambda: _at_least(expired, 3), within=40, what="three token expiries")
                assert reconnect_writes >= 6
            finally:
                writer.stopped = True
                await writing
            async with writer.lock:  # the last write (of a reconnect, too) has returned
                expected = list(writer.expected)

            # The table equals her orders in the database; the log holds each change of hers once.
            wanted = await database_rows(database_url, ADA)
            await until_equal(tab.shown, wanted, "the table to show Ada's orders in the database")
            await until_equal(tab.logged, expected, "one log line per change")
            await tab.expect_state("live")
            assert {o["id"] for o in (await database_orders(database_url)).values() if o["customer_name"] == ADA} == {
                r[0] for r in await tab.shown()
            }
            # The writes made while it reconnected came as the replay of the next stream.
            replayed = await tab.page.locator('[data-testid="log"] li.replayed').count()
            assert replayed >= reconnect_writes, (replayed, reconnect_writes)
            await expect(tab.page.locator('[data-testid="log"] [data-tag="stale"]')).to_have_count(0)
            await expect(tab.page.locator('[data-testid="log"] [data-tag="not held"]')).to_have_count(0)
            counts = Counter(status for _, status, _ in wanted)
            for status in STATUSES:
                await expect(tab.page.get_by_test_id(f"count-{status}")).to_have_attribute(
                    "data-count", str(counts[status])
                )
            assert len(expected) > 30

        # Each stream: a new ticket, no token; each after the first resumes from a position.
        queries = tab.stream_queries()
        assert len(queries) >= 4, queries
        assert all(q.get("ticket") and "token" not in q for q in queries), queries
        assert "since" not in queries[0] and all(q.get("since") for q in queries[1:]), queries
        tab.assert_streams_use_tickets()
        tab.assert_no_token_in_urls(endpoint.minted)
        assert {claims_of(t).get("customer") for t in tab.tickets} == {ADA}
        assert endpoint.calls["ada"] >= 4
        await tab.close()
        await context.close()


async def _at_least(lines: Locator, n: int) -> bool:
    return await lines.count() >= n


async def until_equal(read: Callable[[], Any], wanted: Any, what: str, within: float = 5.0) -> None:
    """Until ``await read()`` equals ``wanted``; fails with what it read last."""
    latest: Any = None

    async def equal() -> bool:
        nonlocal latest
        latest = await read()
        return bool(latest == wanted)

    try:
        await until_async(equal, within, what)
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what}:\n read   {latest}\n wanted {wanted}") from None


# -- 5. /live.html with a fixed token that expired -------------------------------------------------


async def test_the_live_page_with_an_expired_fixed_token_says_so_and_stops(mongo_url: str, browser: Browser) -> None:
    async with jwt_service(jwt_settings(mongo_url)) as service:
        await seed(service.url, SEED[:3])
        context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]

        # Expired before the page opens: the ticket is refused, and the page says why, once.
        gone = mint("customer", f"customer:{ADA}", ADA, exp=int(time.time()) - 60)
        old = await LivePage.open(context, f"{service.url}/live.html#token={gone}", state="refused")
        await expect(old.page.get_by_test_id("state-detail")).to_have_text(
            "your token expired: open /live.html#token=<a new token>"
        )
        await expect(old.state).to_have_attribute("data-final", "true")
        await expect(old.page.get_by_test_id("state-label")).to_have_text("Refused")
        await expect(old.page.locator('[data-testid="log"] li.problem')).to_have_count(1)
        await expect(old.page.locator("tbody tr")).to_have_count(0)

        # Expiring while it is open: the stream ends at exp, the next ticket is refused, it stops.
        short = mint("customer", f"customer:{ADA}", ADA, ttl=4)
        soon = await LivePage.open(context, f"{service.url}/live.html#token={short}")
        await expect(soon.page.locator("tbody tr")).to_have_count(3)  # Ada's
        await soon.expect_state("refused")
        assert time.time() >= claims_of(short)["exp"]
        await expect(soon.info("the token expired: reconnecting with a new ticket")).to_have_count(1)
        await expect(soon.page.get_by_test_id("state-detail")).to_have_text(
            "your token expired: open /live.html#token=<a new token>"
        )
        await expect(soon.state).to_have_attribute("data-final", "true")
        await expect(soon.page.locator("tbody tr")).to_have_count(3)  # what it had stays

        assert old.streams == [] and len(old.tickets) == 1
        assert len(soon.streams) == 1 and len(soon.tickets) == 2
        await holds(
            lambda: (len(old.tickets), len(old.streams), len(soon.tickets), len(soon.streams)),
            2.0,
            "(tickets, streams) of each page",
        )
        old.assert_no_token_in_urls([gone])
        soon.assert_no_token_in_urls([short])
        await old.close()
        await soon.close()
        await context.close()
