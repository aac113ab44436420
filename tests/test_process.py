"""The service as a process: embedded database start/stop, idle cost, the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from conftest import ORDERS_LIVE, Listener, ServeProcess, free_port, until
from orders_live.client.rest import OrdersClient

pytestmark = [pytest.mark.database, pytest.mark.slow]


EMBEDDED = {
    "nx-27017": "nx_await",
    "postgres": "postgres",
}  # --database: what its process's command line shows (nx-27017 runs through its launcher)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder the embedded database's own user can reach (as root, PostgreSQL runs as
    ``postgres``, and pytest's folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="orders-live-serve-"))
    folder.chmod(0o755)
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=sorted(EMBEDDED))
def embedded(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def serve(data_dir: Path, embedded: str) -> Iterator[ServeProcess]:
    process = ServeProcess(data_dir, free_port(), "--database", embedded)
    process.wait_until_live()
    yield process
    process.stop()


def database_of(service: psutil.Process, embedded: str) -> psutil.Process:
    return next(p for p in service.children() if EMBEDDED[embedded] in " ".join(p.cmdline()))


def cpu_with_children(process: psutil.Process) -> float:
    """A server's CPU time, with its children's (PostgreSQL's backends)."""
    return cpu_seconds(process) + sum(cpu_seconds(child) for child in process.children(recursive=True))


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def test_an_idle_service_with_a_subscriber_costs_almost_no_cpu_on_either_side(
    serve: ServeProcess, embedded: str
) -> None:
    service = psutil.Process(serve.process.pid)
    database = database_of(service, embedded)
    listener = await Listener(serve.url).connect()
    try:
        await listener.subscribe({})
        await asyncio.sleep(0.5)  # let start-up work settle before measuring
        service_before, database_before = cpu_seconds(service), cpu_with_children(database)
        started = time.monotonic()
        await asyncio.sleep(3)  # the measurement window: CPU time spent in it, not wall time
        wall = time.monotonic() - started
        service_used = cpu_seconds(service) - service_before
        database_used = cpu_with_children(database) - database_before
    finally:
        await listener.close()
    # A watcher spinning on nx-27017's instant empty getMore burns ~100% of a core on both sides.
    assert service_used / wall < 0.03, f"service used {service_used:.3f}s of CPU in {wall:.1f}s"
    assert database_used / wall < 0.03, f"{embedded} used {database_used:.3f}s of CPU in {wall:.1f}s"


def test_sigterm_stops_the_service_and_its_embedded_database(serve: ServeProcess, embedded: str) -> None:
    service = psutil.Process(serve.process.pid)
    database = database_of(service, embedded)
    assert serve.stop() == 0
    database.wait(10)
    assert not database.is_running()
    log = serve.log.read_text()
    assert f"embedded database {'nx-27017' if embedded == 'nx-27017' else 'PostgreSQL'}" in log
    assert "embedded database stopped" in log


def test_a_killed_service_leaves_no_database_behind_and_starts_again(data_dir: Path, embedded: str) -> None:
    first = ServeProcess(data_dir, free_port(), "--database", embedded)
    first.wait_until_live()
    database = database_of(psutil.Process(first.process.pid), embedded)
    first.process.kill()
    first.process.wait(10)
    database.wait(15)  # it dies with its parent
    second = ServeProcess(data_dir, free_port(), "--database", embedded)
    try:
        second.wait_until_live()
    finally:
        assert second.stop() == 0


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ORDERS_LIVE, *args], capture_output=True, text=True, timeout=30, check=False)


async def test_cli_writes_and_watch_prints_each_change(serve: ServeProcess) -> None:
    watch = await asyncio.create_subprocess_exec(
        *ORDERS_LIVE, "watch", "--json", "--url", serve.url, stdout=asyncio.subprocess.PIPE
    )
    lines: list[dict[str, Any]] = []

    async def read() -> None:
        assert watch.stdout is not None
        async for line in watch.stdout:
            lines.append(json.loads(line))

    reading = asyncio.create_task(read())
    try:
        await until(lambda: any(line.get("event") == "snapshot" for line in lines), within=15, what="watch ready")
        created = await asyncio.to_thread(run_cli, "create", "Ada Lovelace", "Keyboard", "--url", serve.url)
        assert created.returncode == 0, created.stderr
        order = json.loads(created.stdout)
        updated = await asyncio.to_thread(
            run_cli, "update", str(order["id"]), "--status", "shipped", "--url", serve.url
        )
        assert updated.returncode == 0, updated.stderr
        refused = await asyncio.to_thread(
            run_cli, "update", str(order["id"]), "--if-match", "1", "--status", "delivered", "--url", serve.url
        )
        assert refused.returncode == 1
        assert "409" in refused.stderr
        deleted = await asyncio.to_thread(run_cli, "delete", str(order["id"]), "--url", serve.url)
        assert deleted.returncode == 0, deleted.stderr
        await until(lambda: len([line for line in lines if "op" in line]) == 3, within=10, what="three changes")
    finally:
        watch.terminate()
        await watch.wait()
        await reading
    changes = [line for line in lines if "op" in line]
    assert [(c["op"], c["id"]) for c in changes] == [
        ("insert", order["id"]),
        ("update", order["id"]),
        ("delete", order["id"]),
    ]
    assert changes[1]["order"]["status"] == "shipped"


def test_json_logs_carry_neither_tokens_nor_order_contents(tmp_path: Path) -> None:
    secrets = {"ORDERS_LIVE_READ_TOKEN": "read-tok-123", "ORDERS_LIVE_WRITE_TOKEN": "write-tok-456"}
    process = ServeProcess(tmp_path / "data", free_port(), env={"ORDERS_LIVE_LOG_FORMAT": "json", **secrets})
    try:
        process.wait_until_live()
        url = f"{process.url}/api/orders"
        created = run_cli("create", "Zelda Secretname", "Hidden product", "--url", process.url)
        assert created.returncode == 1  # no write token given
        request = urllib.request.Request(
            url,
            data=json.dumps({"customer_name": "Zelda Secretname", "product_name": "Hidden product"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer write-tok-456"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}?token=wrong-guess-789", timeout=10)
        assert refused.value.code == 403
        refused.value.close()
    finally:
        assert process.stop() == 0
    lines = process.log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any("refused read" in entry["message"] for entry in entries)
    text = process.log.read_text()
    for secret in ("read-tok-123", "write-tok-456", "wrong-guess-789", "Zelda Secretname", "Hidden product"):
        assert secret not in text


async def test_a_served_process_runs_on_uvloop_and_pushes_over_sse_and_socketio(serve: ServeProcess) -> None:
    """The service's own process runs on uvloop (the default ``event_loop``), whose transports
    are not asyncio's classes: the direct write paths of both transports must still deliver."""
    assert "event loop: uvloop" in serve.log.read_text()
    listener = await Listener(serve.url).connect()
    try:
        await listener.subscribe({})
        async with aiohttp.ClientSession() as session, session.get(f"{serve.url}/api/changes/stream") as stream:
            async for line in stream.content:  # up to the end of the (empty) snapshot
                if line.startswith(b"event: caught_up"):
                    break
            created = await OrdersClient(serve.url, session).create("Ada", "Lamp")
            async for line in stream.content:
                if line.startswith(b"data: ") and b'"op":"insert"' in line:
                    assert json.loads(line[6:])["id"] == created["id"]
                    break
        await until(lambda: any(c["id"] == created["id"] for c in listener.changes()), what="the Socket.IO change")
    finally:
        await listener.close()


async def test_the_demo_runs_with_identities_and_ctrl_c_stops_it_cleanly(data_dir: Path, embedded: str) -> None:
    """`orders-live demo` as a person runs it: it prints a staff and a customer URL whose grants
    give tokens of those identities, keeps token files for the command line, a customer sees
    only its orders, and Ctrl-C ends it with exit 0 and no traceback."""
    port = free_port()
    log = data_dir.parent / "demo.log"
    with log.open("wb") as out:
        demo = await asyncio.create_subprocess_exec(
            *ORDERS_LIVE,
            *("demo", "--port", str(port), "--data-dir", str(data_dir), "--database", embedded),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await until(lambda: "as customer Ada Lovelace:" in log.read_text(), within=30, what="the demo's URLs")
        grants = dict(
            re.findall(r"as (staff|customer Ada Lovelace):\s+\S+#token-url=/demo/token&grant=(\S+)", log.read_text())
        )
        assert set(grants) == {"staff", "customer Ada Lovelace"}
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/demo/token", json={"grant": grants["customer Ada Lovelace"]}) as response:
                assert response.status == 200
                ada = (await response.json())["token"]
            async with session.post(f"{base}/demo/token", json={"grant": "not-a-grant"}) as response:
                assert response.status == 401
            await until(lambda: (data_dir / "tokens" / "staff.jwt").exists(), within=10, what="the token files")
            staff = (data_dir / "tokens" / "staff.jwt").read_text().strip()
            for owner in ("Ada Lovelace", "Grace Hopper"):
                body = {"customer_name": owner, "product_name": "Lamp"}
                async with session.post(
                    f"{base}/api/orders", json=body, headers={"Authorization": f"Bearer {staff}"}
                ) as r:
                    assert r.status == 201, await r.text()
            async with session.get(f"{base}/api/orders?limit=1000", headers={"Authorization": f"Bearer {ada}"}) as r:
                assert r.status == 200, await r.text()
                mine = (await r.json())["orders"]
        assert mine and {order["customer_name"] for order in mine} == {"Ada Lovelace"}
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        code = await asyncio.wait_for(demo.wait(), 30)
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text
