"""End to end: the dashboard's Agent panel, in headless Chromium, against a real service and
database. Records are appended with ``POST /api/agent/actions`` (as the agent does) and must show
in the open panel, newest first, as they are recorded (``GET /api/agent/actions/stream``).

Needs Debian's chromium at /usr/bin/chromium and a built frontend (scripts/build-frontend.sh);
without either the module is skipped. Every wait is on a condition, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from chromium_launch import DESKTOP, DIST, skip_without_a_dashboard

pytestmark = pytest.mark.browser

skip_without_a_dashboard()

import aiohttp  # noqa: E402
import pytest_asyncio  # noqa: E402
from playwright.async_api import Browser, Locator, Page, Request, expect  # noqa: E402

from conftest import free_port, running_service, settings_for  # noqa: E402
from orders_live.agent import Agent, OfflinePlanner  # noqa: E402
from orders_live.client.rest import OrdersClient  # noqa: E402
from orders_live.service import Service  # noqa: E402

SOON = 2_000  # ms for a record to show: it takes milliseconds; this leaves room on a busy machine


@pytest_asyncio.fixture
async def service(database_url: str) -> AsyncIterator[Service]:
    async with running_service(settings_for(database_url, port=free_port(), frontend_dir=DIST)) as running:
        yield running


class Dashboard:
    """One dashboard page and its Agent panel; records uncaught page errors (there must be none)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.streams: list[str] = []  # the URLs of the Agent panel's event streams
        self.tickets = 0  # stream tickets asked for (POST /api/stream-tickets)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", self._request)

    def _request(self, request: Request) -> None:
        if "/api/agent/actions/stream" in request.url:
            self.streams.append(request.url)
        if request.method == "POST" and urlsplit(request.url).path == "/api/stream-tickets":
            self.tickets += 1

    @classmethod
    async def open(cls, browser: Browser, url: str) -> Dashboard:
        context = await browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
        tab = cls(await context.new_page())
        await tab.page.goto(url)
        await expect(tab.page.get_by_test_id("connection").locator("[data-phase]")).to_have_attribute(
            "data-phase", "live", timeout=10_000
        )
        await tab.expect_agent_phase("live")
        return tab

    @property
    def panel(self) -> Locator:
        return self.page.get_by_role("region", name="Agent", exact=True)

    @property
    def records(self) -> Locator:
        return self.panel.get_by_role("list").get_by_role("listitem")

    def record(self, seq: int) -> Locator:
        return self.panel.locator(f'[data-testid="agent-record"][data-seq="{seq}"]')

    async def expect_agent_phase(self, phase: str, within_ms: float = 10_000) -> None:
        await expect(self.panel.get_by_test_id("agent-state")).to_have_attribute("data-phase", phase, timeout=within_ms)

    async def close(self) -> None:
        await self.page.context.close()
        assert self.errors == [], f"uncaught errors in the page: {self.errors}"


async def record(url: str, body: dict[str, Any], token: str | None = None, expect_status: int = 201) -> dict[str, Any]:
    """``POST /api/agent/actions``: the record as stored (or the error body)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/agent/actions", json=body, headers=headers) as response,
    ):
        answer: dict[str, Any] = await response.json()
        assert response.status == expect_status, answer
        return answer


async def shipped_order(url: str, token: str | None = None) -> dict[str, Any]:
    """An order that was created pending, then shipped (version 2)."""
    async with aiohttp.ClientSession() as session:
        api = OrdersClient(url, session, token)
        made = await api.create("Ada Lovelace", "Desk lamp")
        shipped: dict[str, Any] = await api.update(made["id"], if_match=made["version"], status="shipped")
        return shipped


def action(order: dict[str, Any], message: str) -> dict[str, Any]:
    return {
        "kind": "action",
        "trigger": "shipped",
        "order_id": order["id"],
        "order_version": order["version"],
        "tool": "notify_customer",
        "arguments": {"order_id": order["id"], "message": message},
        "message": message,
        "reason": None,
        "model": "offline-planner",
    }


def refusal(order: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "kind": "refusal",
        "trigger": "shipped",
        "order_id": order["id"],
        "order_version": order["version"],
        "tool": "notify_customer",
        "arguments": {"order_id": order["id"] + 1, "message": "Your order has shipped."},
        "message": None,
        "reason": reason,
        "model": "offline-planner",
    }


async def test_the_agent_panel_shows_each_record_as_it_is_recorded(service: Service, browser: Browser) -> None:
    order = await shipped_order(service.url)
    assert order["version"] == 2
    tab = await Dashboard.open(browser, service.url)
    await expect(tab.panel.get_by_role("heading", name="Agent", exact=True)).to_be_visible()
    await expect(tab.records).to_have_count(0)
    await expect(tab.panel).to_contain_text("No agent actions recorded yet.")

    # The agent notifies the customer: the record shows at once, with everything it says.
    message = f"Your order #{order['id']} has shipped."
    stored = await record(service.url, action(order, message))
    assert stored["seq"] >= 1 and stored["message"] == message
    shown = tab.record(stored["seq"])
    await expect(shown).to_be_visible(timeout=SOON)
    await expect(shown.get_by_test_id("agent-text")).to_have_text(message)
    await expect(shown.get_by_test_id("agent-kind")).to_have_text("Action")
    await expect(shown).to_contain_text("shipped")
    await expect(shown).to_contain_text(f"order #{order['id']} v2")
    await expect(shown).to_contain_text("notify_customer")
    await expect(shown).to_contain_text("offline-planner")
    await expect(shown.locator("time")).to_have_attribute("datetime", stored["recorded_at"])
    await expect(tab.records).to_have_count(1)
    # Said to the screen reader.
    await expect(tab.panel.get_by_test_id("agent-announcer")).to_contain_text(message)

    # A guardrail refuses a call: the refusal shows its reason, above the earlier record.
    reason = "the message names another order"
    refused = await record(service.url, refusal(order, reason))
    assert refused["seq"] > stored["seq"]
    shown_refusal = tab.record(refused["seq"])
    await expect(shown_refusal).to_be_visible(timeout=SOON)
    await expect(shown_refusal.get_by_test_id("agent-text")).to_have_text(reason)
    await expect(shown_refusal.get_by_test_id("agent-kind")).to_have_text("Refused")
    await expect(tab.records).to_have_count(2)
    await expect(tab.records.first).to_have_attribute("data-seq", str(refused["seq"]))
    await expect(tab.records.nth(1)).to_have_attribute("data-seq", str(stored["seq"]))
    await expect(tab.panel.get_by_test_id("agent-announcer")).to_contain_text(reason)

    # A second action for the same event is refused by the store, and shows nothing new.
    again = await record(service.url, action(order, "Shipped, again."), expect_status=409)
    assert again["error"]["code"] == "already_recorded"
    assert again["record"]["seq"] == stored["seq"]
    await tab.expect_agent_phase("live")
    await expect(tab.records).to_have_count(2)

    # A page opened later gets the log from the stream's first records, newest first.
    await tab.page.reload()
    await tab.expect_agent_phase("live")
    await expect(tab.records).to_have_count(2)
    await expect(tab.records.first).to_have_attribute("data-seq", str(refused["seq"]))
    await expect(tab.record(stored["seq"]).get_by_test_id("agent-text")).to_have_text(message)
    await tab.close()


async def test_with_tokens_the_panel_reads_with_the_dashboards_token(database_url: str, browser: Browser) -> None:
    read, write = "reader-secret", "writer-secret"
    settings = settings_for(database_url, port=free_port(), frontend_dir=DIST, read_token=read, write_token=write)
    async with running_service(settings) as service:
        order = await shipped_order(service.url, token=write)
        tab = await Dashboard.open(browser, f"{service.url}/#token={read}")
        # EventSource cannot send headers: each stream is let in with a stream ticket taken with the
        # token (POST /api/stream-tickets), and the token itself never goes in the address.
        assert tab.streams
        for url in tab.streams:
            query = parse_qs(urlsplit(url).query)
            assert query.get("ticket") and "token" not in query, url
            assert read not in url
        assert tab.tickets >= len(tab.streams)
        message = f"Your order #{order['id']} has shipped."
        stored = await record(service.url, action(order, message), token=write)
        await expect(tab.record(stored["seq"]).get_by_test_id("agent-text")).to_have_text(message, timeout=SOON)
        await tab.close()


async def test_after_a_restart_the_panel_gets_the_records_it_missed_in_order(
    database_url: str, browser: Browser
) -> None:
    port = free_port()
    settings = settings_for(database_url, port=port, frontend_dir=DIST)
    async with running_service(settings) as first:
        order = await shipped_order(first.url)
        before = await record(first.url, action(order, f"Your order #{order['id']} has shipped."))
        tab = await Dashboard.open(browser, first.url)
        await expect(tab.record(before["seq"])).to_be_visible()

    # The service is down: the panel says so, and the browser keeps trying (with Last-Event-ID).
    await tab.expect_agent_phase("reconnecting")
    await expect(tab.panel.get_by_test_id("agent-state")).to_contain_text("Reconnecting")
    # Meanwhile another instance, on the same database, records two more.
    async with running_service(settings_for(database_url, port=free_port(), frontend_dir=DIST)) as other:
        missed = [
            await record(other.url, refusal(order, "the message names another order")),
            await record(
                other.url,
                {
                    **action(order, "unused"),
                    "kind": "no_action",
                    "tool": None,
                    "message": None,
                    "reason": "told already",
                },
            ),
        ]

    async with running_service(settings) as second:
        await tab.expect_agent_phase("live", within_ms=20_000)
        await expect(tab.records).to_have_count(3)
        seqs = [before["seq"], *(r["seq"] for r in missed)]
        assert seqs == sorted(seqs)
        for at, seq in enumerate(reversed(seqs)):  # newest first
            await expect(tab.records.nth(at)).to_have_attribute("data-seq", str(seq))
        await expect(tab.panel.get_by_test_id("agent-announcer")).to_contain_text("Agent log back: 2 new records.")
        # and it is live again
        late = await record(second.url, {**action(order, "Would say it again."), "kind": "dry_run"})
        await expect(tab.records.first).to_have_attribute("data-seq", str(late["seq"]), timeout=SOON)
        await tab.close()


async def test_an_action_the_agent_takes_appears_in_the_panel(service: Service, browser: Browser) -> None:
    """The whole path: an order ships, the agent (offline planner) notifies its customer, and the
    open dashboard shows the recorded notification."""
    agent = Agent(service.url, OfflinePlanner())
    running = asyncio.create_task(agent.run(), name="test-agent")
    try:
        await agent.live.wait_live()
        tab = await Dashboard.open(browser, service.url)
        order = await shipped_order(service.url)
        expected = f"Hello Ada Lovelace, good news: your order #{order['id']} (Desk lamp) has shipped."
        shown = tab.panel.locator('[data-testid="agent-record"]', has_text=expected)
        await expect(shown).to_be_visible(timeout=10_000)
        await expect(shown.get_by_test_id("agent-kind")).to_have_text("Action")
        await expect(shown).to_contain_text(f"order #{order['id']} v2")
        await expect(tab.records).to_have_count(1)
        await tab.close()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
