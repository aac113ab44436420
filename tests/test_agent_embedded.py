"""``orders-live agent`` as a process, with its offline planner, against a service on the real
databases (the embedded nx-27017, and PostgreSQL).

An order left pending past the threshold gets exactly one drafted follow-up, also after the
agent is restarted; an order shipped gets exactly one notification; an order that moves on
before the threshold gets none. ``orders-live ask`` answers through ``find_orders`` against a
scripted model and refuses a write; without a model it says questions need one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient, ReturnDocument

from chat_script import ChatScript, text_reply, tool_reply
from conftest import ORDERS_LIVE, running_service, settings_for, until_async
from orders_live.client.rest import OrdersClient
from orders_live.domain.order import utc_now
from orders_live.sources.database_process import free_port

pytestmark = pytest.mark.database


class AgentProcess:
    def __init__(self, url: str, log: Path, *extra: str) -> None:
        self.url, self.log, self.extra = url, log, extra
        self.metrics_port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        command = [*ORDERS_LIVE, "agent", "--url", self.url, "--metrics-port", str(self.metrics_port), *self.extra]
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(*command, stdout=log, stderr=log)

    async def metric(self, session: aiohttp.ClientSession, name: str) -> float:
        """A sample of the agent's /metrics (0 until it serves them)."""
        try:
            async with session.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as response:
                text = await response.text()
        except aiohttp.ClientError:
            return 0.0
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 20)


@contextlib.asynccontextmanager
async def agent_process(url: str, log: Path, *extra: str) -> AsyncIterator[AgentProcess]:
    agent = AgentProcess(url, log, *extra)
    await agent.start()
    try:
        yield agent
    finally:
        assert await agent.stop() == 0, text_of(log)


def text_of(log: Path) -> str:
    return log.read_text() if log.exists() else ""


async def actions(session: aiohttp.ClientSession, url: str) -> list[tuple[str, str, int, str | None]]:
    async with session.get(f"{url}/api/agent/actions?limit=500") as response:
        assert response.status == 200
        found = (await response.json())["actions"]
    return [(r["kind"], r["trigger"], r["order_id"], r["tool"]) for r in found]


async def test_each_trigger_acts_exactly_once_also_across_restarts(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    async with running_service(settings_for(database_url)) as service, aiohttp.ClientSession() as session:
        client = OrdersClient(service.url, session)
        async with agent_process(service.url, log, "--pending-after", "3s") as agent:

            async def live() -> bool:
                return await agent.metric(session, "orders_live_agent_live") == 1

            await until_async(live, 30, "the agent to be live")
            moved = await client.create("Bo", "Chair")
            await client.update(moved["id"], status="shipped")  # moves on before its threshold
            stale = await client.create("Ada", "Lamp")  # stays pending: due after moved's would have been
            follow_up = ("action", "pending_too_long", stale["id"], "draft_follow_up")
            shipped = ("action", "shipped", moved["id"], "notify_customer")

            async def acted() -> bool:
                return follow_up in await actions(session, service.url)

            await until_async(acted, 30, "the drafted follow-up")
            triggers = 'orders_live_agent_triggers_total{trigger="pending_too_long"}'
            assert await agent.metric(session, triggers) == 1  # the order that moved on fired none
        assert sorted(await actions(session, service.url)) == sorted([follow_up, shipped])

        async with agent_process(service.url, log, "--pending-after", "3s") as again:
            skipped = 'orders_live_agent_triggers_skipped_total{why="already_acted"}'

            async def both_skipped() -> bool:
                return await again.metric(session, skipped) == 2

            await until_async(both_skipped, 30, "the restarted agent to find both triggers acted on")
            await client.update(stale["id"], status="shipped")  # and it is live

            async def notified() -> bool:
                return ("action", "shipped", stale["id"], "notify_customer") in await actions(session, service.url)

            await until_async(notified, 30, "the notification after the restart")
        found = await actions(session, service.url)
    assert sorted(found) == sorted([follow_up, shipped, ("action", "shipped", stale["id"], "notify_customer")])
    assert "Traceback" not in text_of(log)


async def ask_process(url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *ORDERS_LIVE, "ask", "--url", url, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_ask_answers_the_briefs_question_through_find_orders_and_refuses_writes(mongo_url: str) -> None:
    question = "Which customers have undelivered orders older than a day?"

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        found = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]
        names = sorted({order["customer_name"] for result in found for order in result.get("orders", [])})
        return text_reply("Customers with undelivered orders older than a day: " + ", ".join(names))

    script = ChatScript(
        [
            tool_reply(
                ("find_orders", {"status": "pending", "older_than": "1d"}),
                ("find_orders", {"status": "shipped", "older_than": "1d"}),
                ("notify_customer", {"order_id": 1, "message": "hi"}),  # a write: refused
            ),
            answer,
        ]
    )
    async with (
        running_service(settings_for(mongo_url)) as service,
        script.serving(),
        aiohttp.ClientSession() as session,
    ):
        client = OrdersClient(service.url, session)
        two_days_ago = utc_now() - timedelta(days=2)
        await insert_directly(
            mongo_url,
            [("Ada", "pending", two_days_ago), ("Bo", "shipped", two_days_ago), ("Cy", "delivered", two_days_ago)],
        )
        await client.create("Di", "Rug")  # pending, but new

        async def applied() -> bool:
            return len((await client.list())["orders"]) == 4

        await until_async(applied, 10, "the service to see the four orders")
        code, out, err = await ask_process(service.url, question, "--model", "scripted", "--base-url", script.url)
        recorded = await actions(session, service.url)
    assert code == 0, err
    assert out.splitlines()[0] == "Customers with undelivered orders older than a day: Ada, Bo"
    assert "orders used (2)" in out
    assert "refused: notify_customer: tool_not_allowed" in err
    assert recorded == [("refusal", "question", None, "notify_customer")]
    assert script.tools_offered(0) == ["find_orders", "get_order"]


async def insert_directly(url: str, orders: list[tuple[str, str, datetime]]) -> None:
    """Orders written by another MongoDB client, with the last change they carry."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    try:
        database = client.get_default_database()
        counter = await database["counters"].find_one_and_update(
            {"_id": "orders"}, {"$inc": {"seq": len(orders)}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        first = int(counter["seq"]) - len(orders) + 1
        await database["orders"].insert_many(
            [
                {
                    "_id": n,
                    "customer_name": name,
                    "product_name": "Lamp",
                    "status": status,
                    "updated_at": at,
                    "version": 1,
                }
                for n, (name, status, at) in enumerate(orders, first)
            ]
        )
    finally:
        await client.close()


async def test_ask_without_a_model_says_questions_need_one(mongo_url: str) -> None:
    async with running_service(settings_for(mongo_url)) as service:
        code, out, err = await ask_process(service.url, "Which orders are late?")
    assert code == 2 and out == ""
    assert "questions need a model" in err and "--model" in err
