"""/metrics counters move by the right amounts; /readyz follows the database."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conftest import Listener, NxServer, PgServer, running_service, settings_for, until, until_async
from orders_live.client.rest import OrdersClient
from orders_live.service import Service

pytestmark = pytest.mark.database


def parse_metrics(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def read_metrics(session: aiohttp.ClientSession, service: Service) -> dict[str, float]:
    async with session.get(f"{service.url}/metrics") as response:
        assert response.status == 200
        return parse_metrics(await response.text())


async def test_metrics_move_by_the_workload(service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        before = await read_metrics(session, service)
        everything, pending = Listener(service.url), Listener(service.url)
        for listener, wanted in ((everything, {}), (pending, {"status": "pending"})):
            await listener.connect()
            await listener.subscribe(wanted)
        try:
            api = OrdersClient(service.url, session)
            orders = [await api.create(f"C{n}", "P") for n in range(3)]
            await api.update(orders[0]["id"], status="shipped")
            await api.update(orders[1]["id"], customer_name="C1b")
            await until(lambda: len(everything.changes()) == 5 and len(pending.changes()) == 5, what="deliveries")
            resync = await pending.subscribe({"status": "shipped", "since": "garbage"})
            assert resync["resync"] == "unknown_position"

            async def position_saved() -> bool:
                return (await read_metrics(session, service))["orders_live_resume_position_age_seconds"] >= 0

            await until_async(position_saved, what="the resume position to be saved")
            after = await read_metrics(session, service)
        finally:
            await everything.close()
            await pending.close()
    assert after["orders_live_changes_in_total"] - before["orders_live_changes_in_total"] == 5
    assert after["orders_live_changes_out_total"] - before["orders_live_changes_out_total"] == 10
    assert after['orders_live_connected_clients{transport="socketio"}'] == 2
    assert after['orders_live_subscriptions{kind="all"}'] == 1
    assert after['orders_live_subscriptions{kind="status"}'] == 2
    count = "orders_live_fanout_seconds_count"
    assert after[count] - before[count] == 5
    assert after['orders_live_fanout_seconds_bucket{le="+Inf"}'] == after[count]
    assert after.get('orders_live_resyncs_total{reason="unknown_position"}') == 1
    assert 0 <= after["orders_live_resume_position_age_seconds"] < 5
    assert after["orders_live_ready"] == 1


METRICS_TOKEN = "metrics-token-0123456789"


async def ready(
    session: aiohttp.ClientSession, service: Service, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(f"{service.url}/readyz", headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("kind", ["nx", "pg"])
async def test_readyz_fails_while_the_database_is_down_and_recovers(tmp_path: Path, kind: str) -> None:
    """A database of its own, stopped and started again on the same port. The public hears
    only ready or not; the problems go to the metrics token."""
    # (PostgreSQL's folder is not under tmp_path: as root, its server user must reach it.)
    pg_folder = Path(tempfile.mkdtemp(prefix="orders-live-pg-"))
    database: NxServer | PgServer = NxServer(tmp_path / "nx") if kind == "nx" else PgServer(pg_folder)
    url = database.url("ready") if kind == "nx" else database.url("postgres")
    settings = settings_for(url, metrics_token=METRICS_TOKEN)
    try:
        async with running_service(settings) as service, aiohttp.ClientSession() as session:
            assert await ready(session, service) == (200, {"ready": True})
            database.stop()

            async def database_named() -> bool:
                # The database's last answer serves /readyz for a second: until the next ping fails,
                # /readyz may say ready, or not ready for another reason (a task that died and is
                # restarted at once, like the LISTEN loop).
                status, body = await ready(session, service, METRICS_TOKEN)
                return status == 503 and any(problem.startswith("database") for problem in body["problems"])

            await until_async(database_named, within=10, what="/readyz's problems to name the database")
            assert await ready(session, service) == (503, {"ready": False})  # the public: not ready, no more
            async with session.get(f"{service.url}/healthz") as response:
                assert response.status == 200  # the process is up all the same
            if isinstance(database, NxServer):
                database = NxServer(tmp_path / "nx", port=database.port)
            else:
                database.start()
                await until(database.answers, within=30, what="PostgreSQL to start again")

            async def ready_again() -> bool:
                return (await ready(session, service))[0] == 200

            await until_async(ready_again, within=30, what="/readyz to recover")
            assert service.hub is not None
            assert re.fullmatch(rf"{kind}:\d+", service.hub.position or "")
    finally:
        database.stop()  # after the service: closing a client against a stopped server hangs
        shutil.rmtree(pg_folder, ignore_errors=True)
