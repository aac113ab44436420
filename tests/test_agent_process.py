"""``orders-live agent`` as a person runs it: Ctrl-C (or SIGTERM) stops it with exit 0, one line
saying so, and no traceback, whether it is following a service or still trying to reach one.
The service runs in this process on the in-memory database; the agent is a child process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest

from conftest import ORDERS_LIVE, free_port, running_service, settings_for, until
from orders_live.client.rest import OrdersClient

pytestmark = pytest.mark.fast


async def _stop(agent: asyncio.subprocess.Process, signum: int) -> int:
    agent.send_signal(signum)
    return await asyncio.wait_for(agent.wait(), 20)


def _assert_stopped_cleanly(code: int, text: str) -> None:
    assert code == 0, text
    assert "Traceback" not in text and "Unclosed" not in text and "ERROR" not in text, text
    stopped = [line for line in text.splitlines() if "stopped" in line]
    assert len(stopped) == 1 and stopped[0].endswith("orders-live agent stopped"), text


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_ctrl_c_stops_a_following_agent_with_exit_0_and_one_line(signum: int, tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    async with running_service(settings_for("memory://")) as service, aiohttp.ClientSession() as session:
        client = OrdersClient(service.url, session)
        with log.open("wb") as out:
            agent = await asyncio.create_subprocess_exec(
                *ORDERS_LIVE, "agent", "--url", service.url, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            await until(lambda: "agent following" in log.read_text(), within=20, what="the agent to start")
            order = await client.create("Ada", "Lamp")
            await client.update(order["id"], status="shipped")

            async def acted() -> bool:
                async with session.get(f"{service.url}/api/agent/actions?kind=action") as response:
                    return bool((await response.json())["actions"])

            for _ in range(1000):  # the offline planner acts on the shipped order: the agent is live
                if await acted():
                    break
                await asyncio.sleep(0.02)
            assert await acted(), log.read_text()
        finally:
            code = await _stop(agent, signum)
    _assert_stopped_cleanly(code, log.read_text())


async def test_ctrl_c_stops_an_agent_that_cannot_reach_its_service(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        agent = await asyncio.create_subprocess_exec(
            *ORDERS_LIVE, "agent", "--url", f"http://127.0.0.1:{free_port()}", stdout=out, stderr=subprocess.STDOUT
        )
    try:
        await until(lambda: "agent following" in log.read_text(), within=20, what="the agent to start")
    finally:
        code = await _stop(agent, signal.SIGINT)
    _assert_stopped_cleanly(code, log.read_text())
