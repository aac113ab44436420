"""``orders-live serve --workers N``: N processes on one port (SO_REUSEPORT), one embedded
database started by the parent, workers restarted when they die, all stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from conftest import ORDERS_LIVE, Listener, ServeProcess, free_port, until, until_async
from orders_live.cli import _parser, _settings
from orders_live.cli.workers import Workers
from orders_live.client.rest import OrdersClient
from orders_live.settings import Settings
from orders_live.transports.http.engine_polling import engine_polling_refused
from orders_live.transports.http.errors import json_errors

WORKER_INFO = re.compile(r'^orders_live_worker_info\{pid="(\d+)",worker="(\d+)"\} 1\.0$', re.MULTILINE)
SOCKETIO_CLIENTS = re.compile(r'^orders_live_connected_clients\{transport="socketio"\} (\d+)', re.MULTILINE)
POLLING = "/socket.io/?EIO=4&transport=polling"


# The fast tier: the option, the setting, the instance names, the refusal.


@pytest.mark.fast
def test_workers_auto_is_one_per_core_on_the_command_line_and_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cores = os.cpu_count()
    assert _settings(_parser().parse_args(["serve", "--workers", "auto"])).workers == cores
    assert _settings(_parser().parse_args(["serve", "--workers", "3"])).workers == 3
    assert _settings(_parser().parse_args(["serve"])).workers == 1
    monkeypatch.setenv("ORDERS_LIVE_WORKERS", "auto")
    assert Settings().workers == cores


@pytest.mark.fast
@pytest.mark.parametrize("given", ["0", "-2", "many", "1.5"])
def test_a_worker_count_that_is_not_a_positive_number_or_auto_is_refused(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["serve", "--workers", given])
    assert exited.value.code == 2
    assert "argument --workers: " in capsys.readouterr().err  # the option's own message


@pytest.mark.fast
def test_each_worker_is_an_instance_of_its_own() -> None:
    """Checkpoints are saved under the instance name: two workers must never share one."""
    plain = Settings(instance="eu-1")
    assert plain.instance_name(8080) == "eu-1"
    names = {Settings(instance="eu-1", worker=n).instance_name(8080) for n in (1, 2)}
    assert names == {"eu-1/worker-1", "eu-1/worker-2"}
    assert Settings(worker=2).instance_name(8080).endswith(":8080/worker-2")


@pytest.mark.fast
@pytest.mark.parametrize(
    ("given", "shared"),
    [
        ({}, True),  # open mode: the key would be random per process
        ({"jwt_public_keys": Path("keys.json")}, True),  # likewise
        ({"jwt_secret": "s" * 32}, False),  # derived from the secret: the same in every worker
        ({"read_token": "r" * 16}, False),  # derived from the tokens
        ({"ticket_secret": "t" * 16}, False),  # set: inherited as it is
    ],
)
def test_the_workers_share_a_ticket_key_when_each_would_make_its_own(given: dict[str, object], shared: bool) -> None:
    """A stream ticket taken from one worker must open a stream on another."""
    workers = Workers(Settings(**given), 2, 8080, "memory://")
    first, second = workers.environment(1), workers.environment(2)
    assert (first["ORDERS_LIVE_WORKER"], second["ORDERS_LIVE_WORKER"]) == ("1", "2")
    assert first["DATABASE_URL"] == "memory://"
    assert first.get("ORDERS_LIVE_TICKET_SECRET") == second.get("ORDERS_LIVE_TICKET_SECRET")
    assert ("ORDERS_LIVE_TICKET_SECRET" in first) is shared


@pytest_asyncio.fixture
async def refusing() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def answered(_: web.Request) -> web.Response:
        return web.Response(text="answered")

    app = web.Application(middlewares=[json_errors, engine_polling_refused("/socket.io/")])
    app.router.add_route("*", "/socket.io/", answered)
    app.router.add_get("/api/changes", answered)
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.mark.fast
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_engine_io_long_polling_is_refused_with_a_clear_error(
    refusing: TestClient[web.Request, web.Application], method: str
) -> None:
    async with refusing.request(method, POLLING) as response:
        assert response.status == 400
        body = await response.json()
    assert body["error"]["code"] == "polling_unavailable"
    assert "WebSocket" in body["error"]["message"]


@pytest.mark.fast
@pytest.mark.parametrize("path", ["/socket.io/?EIO=4&transport=websocket", "/api/changes?since=0"])
async def test_websocket_requests_and_our_own_polling_pass(
    refusing: TestClient[web.Request, web.Application], path: str
) -> None:
    async with refusing.get(path) as response:
        assert response.status == 200
        assert await response.text() == "answered"


# The database tier: the command itself, with the embedded nx-27017 or a PostgreSQL.


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Readable by the embedded database's own user (as root, PostgreSQL runs as ``postgres``)."""
    folder = Path(tempfile.mkdtemp(prefix="orders-live-workers-"))
    folder.chmod(0o755)
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


async def scrape(url: str) -> str:
    """``/metrics`` over a fresh connection (so that any worker may answer)."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
        session.get(f"{url}/metrics") as response,
    ):
        assert response.status == 200
        return await response.text()


async def workers_seen(url: str, count: int, within: float = 30) -> dict[str, str]:
    """worker number -> pid, once ``count`` workers have answered ``/metrics``."""
    seen: dict[str, str] = {}

    async def all_answered() -> bool:
        for pid, worker in WORKER_INFO.findall(await scrape(url)):
            seen[worker] = pid
        return len(seen) >= count

    await until_async(all_answered, within, f"{count} workers to answer /metrics")
    return seen


def worker_processes(serve: ServeProcess) -> list[psutil.Process]:
    return [p for p in psutil.Process(serve.process.pid).children() if "serve" in p.cmdline()]


@pytest_asyncio.fixture
async def two_workers(data_dir: Path) -> AsyncIterator[ServeProcess]:
    serve = ServeProcess(data_dir, free_port(), "--workers", "2")
    try:
        await serve.until_ready(60)
        yield serve
    finally:
        await serve.stop_async(60)


async def listeners_on_every_worker(url: str, workers: int) -> list[Listener]:
    """Socket.IO clients (WebSocket), each subscribed to every order, opened until each worker
    holds at least one (the kernel spreads connections over the workers)."""
    opened: list[Listener] = []
    holding: dict[str, int] = {}

    async def every_worker_holds_one() -> bool:
        text = await scrape(url)
        for (_, worker), clients in zip(WORKER_INFO.findall(text), SOCKETIO_CLIENTS.findall(text), strict=True):
            holding[worker] = int(clients)
        if len(holding) == workers and all(holding.values()):
            return True
        if len(opened) < 4 * workers + 16:
            listener = await Listener(url).connect()
            opened.append(listener)
            await listener.subscribe({})
        return False

    try:
        await until_async(every_worker_holds_one, 60, "a Socket.IO client on every worker")
    except BaseException:
        for listener in opened:
            await listener.close()
        raise
    return opened


async def a_write_reaches_every_worker(url: str, workers: int) -> None:
    listeners = await listeners_on_every_worker(url, workers)
    try:
        async with aiohttp.ClientSession() as session:
            created = await OrdersClient(url, session).create("Ada", "lamp")
        await until(
            lambda: all(any(c["order"]["id"] == created["id"] for c in each.changes()) for each in listeners),
            30,
            "the new order on every client",
        )
    finally:
        for listener in listeners:
            await listener.close()


@pytest.mark.database
@pytest.mark.slow
async def test_two_workers_answer_on_one_port_and_a_write_reaches_clients_of_both(two_workers: ServeProcess) -> None:
    seen = await workers_seen(two_workers.url, 2)
    assert set(seen) == {"1", "2"}
    assert {str(p.pid) for p in worker_processes(two_workers)} == set(seen.values())
    async with aiohttp.ClientSession() as session, session.get(f"{two_workers.url}/readyz") as response:
        assert (await response.json())["worker"] in (1, 2)  # the details (to loopback) name it too
    await a_write_reaches_every_worker(two_workers.url, 2)
    # The parent's banner, once it has seen a worker live (it probes every half second).
    await until(lambda: "orders-live is running" in two_workers.log.read_text(), 30, "the banner")
    log = two_workers.log.read_text()
    assert log.count("orders-live is running: open") == 1, log
    assert len(re.findall(r"worker \d started \(pid \d+\)", log)) == 2, log
    assert log.count("embedded database nx-27017 (pid") == 1, log


@pytest.mark.database
@pytest.mark.slow
async def test_long_polling_is_refused_by_every_worker_and_websocket_is_not(two_workers: ServeProcess) -> None:
    await workers_seen(two_workers.url, 2)
    for _ in range(8):  # over fresh connections: both workers answer some
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
            session.get(f"{two_workers.url}{POLLING}") as response,
        ):
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "polling_unavailable"
    listener = await Listener(two_workers.url).connect()
    try:
        assert (await listener.subscribe({}))["ok"] is True
    finally:
        await listener.close()


@pytest.mark.database
@pytest.mark.slow
async def test_a_killed_worker_is_started_again(two_workers: ServeProcess) -> None:
    before = await workers_seen(two_workers.url, 2)
    victim = next(p for p in worker_processes(two_workers) if str(p.pid) == before["1"])
    victim.send_signal(signal.SIGKILL)

    async def replaced() -> bool:
        pids = dict((worker, pid) for pid, worker in WORKER_INFO.findall(await scrape(two_workers.url)))
        return pids.get("1") not in (None, before["1"])

    await until_async(replaced, 60, "worker 1 to answer with a new pid")
    assert len(worker_processes(two_workers)) == 2
    assert "worker 1 failed" in two_workers.log.read_text()


@pytest.mark.database
@pytest.mark.slow
@pytest.mark.parametrize("embedded", ["nx-27017", "postgres"])
async def test_sigterm_stops_every_worker_and_the_database_and_exits_0(data_dir: Path, embedded: str) -> None:
    """The parent starts the embedded database (either) once, and stops it last."""
    serve = ServeProcess(data_dir, free_port(), "--workers", "2", "--database", embedded)
    try:
        await serve.until_ready(60)
        await workers_seen(serve.url, 2)
        children = psutil.Process(serve.process.pid).children(recursive=True)
        assert len(children) >= 3  # two workers and the database
    finally:
        code = await serve.stop_async(60)
    assert code == 0
    await until(lambda: not any(child.is_running() for child in children), 10, "no child left")
    log = serve.log.read_text()
    assert "Traceback" not in log, log
    assert log.count("orders-live stopped") == 1, log
    assert "embedded database stopped" in log, log
    assert log.count("embedded database ") == 2, log  # started once, stopped once


def in_a_terminal(output: Path, *args: str) -> subprocess.Popen[bytes]:
    """The command in a process group of its own, as a terminal runs it, its output in a file."""
    with output.open("wb") as out:
        return subprocess.Popen([*ORDERS_LIVE, *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.database
@pytest.mark.slow
async def test_ctrl_c_in_a_terminal_stops_the_parent_and_its_workers_cleanly(data_dir: Path) -> None:
    """A terminal sends SIGINT to its foreground process group: the parent's; the workers, in
    sessions of their own, hear it from the parent (SIGTERM) and stop without a word of their own."""
    output = data_dir.parent / "terminal.log"
    process = in_a_terminal(output, "serve", "--workers", "2", "--port", str(free_port()), "--data-dir", str(data_dir))
    try:
        await until(lambda: "orders-live is running" in output.read_text() or process.poll() is not None, 60)
        children = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGINT)
        code = await asyncio.wait_for(asyncio.to_thread(process.wait), 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = output.read_text()
    assert code == 0, text
    assert "Traceback" not in text, text
    assert text.count("orders-live stopped") == 1, text
    assert len(re.findall(r"orders-live worker \d stopped", text)) == 2, text  # each worker's own line
    await until(lambda: not any(child.is_running() for child in children), 10, "no child left")


@pytest.mark.database
@pytest.mark.slow
async def test_a_killed_parent_leaves_no_worker_behind(data_dir: Path) -> None:
    serve = ServeProcess(data_dir, free_port(), "--workers", "2")
    try:
        await serve.until_ready(60)
        await workers_seen(serve.url, 2)
        children = psutil.Process(serve.process.pid).children(recursive=True)
    finally:
        serve.process.kill()
        serve.process.wait(10)
    await until(lambda: not any(child.is_running() for child in children), 30, "the workers and database to die")


@pytest.mark.database
@pytest.mark.slow
async def test_workers_1_is_the_single_process_service(data_dir: Path) -> None:
    serve = ServeProcess(data_dir, free_port(), "--workers", "1")
    try:
        await serve.until_ready(60)
        assert worker_processes(serve) == []
        assert WORKER_INFO.search(await scrape(serve.url)) is None
        async with aiohttp.ClientSession() as session, session.get(f"{serve.url}{POLLING}") as response:
            assert response.status == 200  # long-polling works with one process
    finally:
        assert await serve.stop_async(60) == 0


@pytest.mark.database
@pytest.mark.slow
async def test_two_workers_follow_one_postgresql_each_with_its_own_checkpoint(
    data_dir: Path, postgres_url: str
) -> None:
    serve = ServeProcess(data_dir, free_port(), "--workers", "2", "--database-url", postgres_url)
    try:
        await serve.until_ready(60)
        await workers_seen(serve.url, 2)
        await a_write_reaches_every_worker(serve.url, 2)
        connection = await asyncpg.connect(postgres_url)
        try:

            async def both_saved() -> bool:
                rows = await connection.fetch("SELECT instance FROM orders_live_state")
                return {row["instance"].rsplit("/", 1)[-1] for row in rows} >= {"worker-1", "worker-2"}

            await until_async(both_saved, 30, "a checkpoint of each worker")
        finally:
            await connection.close()
    finally:
        assert await serve.stop_async(60) == 0
