"""Shared fixtures: a real nx-27017 server for the database tier, services, Socket.IO test clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pymongo
import pytest
import pytest_asyncio
import socketio

from orders_live.bench.balancer import stop_process
from orders_live.domain.order import STATUSES
from orders_live.domain.source import Source
from orders_live.service import Service
from orders_live.settings import Settings
from orders_live.sources import source_from_url
from orders_live.sources.database_process import free_port
from orders_live.sources.postgres.embedded import become, create_database, server_binaries, server_user

TIERS = frozenset({"fast", "database", "browser"})
NEEDS_A_DATABASE = frozenset({"nx", "pg", "mongo_url", "postgres_url", "database_url", "service"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test is in exactly one tier, and the fast tier touches no database."""
    wrong = []
    for item in items:
        tiers = {mark.name for mark in item.iter_markers()} & TIERS
        if len(tiers) != 1:
            wrong.append(f"{item.nodeid}: tiers {sorted(tiers)} (mark it with exactly one of {sorted(TIERS)})")
        elif "fast" in tiers and NEEDS_A_DATABASE & set(getattr(item, "fixturenames", ())):
            wrong.append(f"{item.nodeid}: in the fast tier but uses a database fixture")
    if wrong:
        raise pytest.UsageError("tests outside the tiers:\n" + "\n".join(wrong))
    for item in items:  # the suites that run again on the WAL feed (scripts/test.sh)
        if on_postgres(item):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def second_pass(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test command's second pass (``ORDERS_LIVE_TEST_SECOND_PASS=1``, scripts/test.sh): the
    Socket.IO tests on the libraries' own path, and the PostgreSQL tests on the trigger feed (the
    first pass runs them on the default, the WAL feed, which the test server can give); each
    setting only for the tests it concerns."""
    if os.environ.get("ORDERS_LIVE_TEST_SECOND_PASS") != "1":
        return
    marks = {mark.name for mark in request.node.iter_markers()}
    if "socketio" in marks:
        monkeypatch.setenv("ORDERS_LIVE_SOCKETIO_DIRECT", "false")
    if "postgres" in marks:
        monkeypatch.setenv("ORDERS_LIVE_PG_CHANGES", "triggers")


def on_postgres(item: pytest.Item) -> bool:
    """The test uses a PostgreSQL database (a fixture of it, or a parameter that picks it)."""
    if {"pg", "postgres_url"} & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "pg" in {str(value) for value in callspec.params.values()}


async def until(condition: Callable[[], bool], within: float = 5.0, what: str = "condition") -> None:
    """Wait for a condition to hold (checked every 10 ms); fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


ORDERS_LIVE = [sys.executable, "-m", "orders_live"]


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str | None, Any]]:
    """(event, id, data) for each event; ("comment", None, text) for keep-alives."""
    event, event_id, data = "message", None, []
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith(":"):
            yield "comment", None, line[1:].strip()
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            yield event, event_id, json.loads("\n".join(data))
            event, event_id, data = "message", None, []


class ServeProcess:
    """``orders-live serve`` as a child process (embedded database unless --database-url)."""

    def __init__(self, data_dir: Path, port: int, *extra: str, env: dict[str, str] | None = None) -> None:
        environment = {k: v for k, v in os.environ.items() if k not in ("MONGO_URL", "DATABASE_URL")}
        environment.update(env or {})
        self.log = data_dir.parent / f"serve-{port}-{time.monotonic_ns()}.log"
        self.port = port
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*ORDERS_LIVE, "serve", "--port", str(port), "--data-dir", str(data_dir), *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_live(self, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while "change feed live" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the service did not come up:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)

    # The same, awaited: the loop (writers, clients, the test's own tasks) runs on meanwhile.
    async def until_ready(self, within: float = 30) -> None:
        """Until ``GET /readyz`` answers 200 (database answering, change feed live); fails at
        once if the process exits, and after ``within`` seconds, with the service's log."""

        async def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                async with session.get(f"{self.url}/readyz") as response:
                    return response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False  # not listening yet, or not answering yet

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            try:
                await until_async(ready, within, f"{self.url}/readyz to answer 200")
            except AssertionError as exc:
                if self.process.poll() is not None:
                    raise
                raise AssertionError(f"{exc}:\n{self.log.read_text()}") from None

    async def until_exited(self, within: float = 20) -> int:
        """The process's exit code, once it has exited."""
        await until(lambda: self.process.poll() is not None, within, f"the service on port {self.port} to exit")
        code = self.process.poll()
        assert code is not None
        return code

    async def stop_async(self, within: float = 20) -> int:
        """``stop``, awaited."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.until_exited(within)


async def until_async(check: Callable[[], Awaitable[bool]], within: float = 5.0, what: str = "condition") -> None:
    """Like ``until`` for a condition that must be awaited (an HTTP probe, say), every 50 ms."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class NxServer:
    """One nx-27017 process for the whole session (through the service's launcher, so with
    awaitData); every test gets its own database in it."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orders_live.sources.mongo.nx_await",  # as the service starts it: with awaitData
                "--data-dir",
                str(folder / "db"),
                "--port",
                str(self.port),
                "--log-file",
                str(folder / "nx.log"),
                "--pid-file",
                str(folder / "nx.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("nx-27017 did not start") from None
                time.sleep(0.05)

    def url(self, database: str) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{database}?directConnection=true"

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 10)


@pytest.fixture(scope="session")
def nx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NxServer]:
    server = NxServer(tmp_path_factory.mktemp("nx"))
    yield server
    server.stop()


@pytest.fixture
def mongo_url(nx: NxServer) -> Iterator[str]:
    """A fresh database on the session's nx-27017, dropped afterwards: nx keeps at most 100
    database files open, and past that it closes the least recently used one that no change
    stream holds, which, once a long suite has left a hundred behind, is the newest."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield nx.url(name)
    with pymongo.MongoClient(nx.url(name), serverSelectionTimeoutMS=5000) as client:
        client.drop_database(name)


class PgServer:
    """One PostgreSQL server (the machine's binaries) for the whole session, in a folder of its
    own; every test gets its own database in it. As root, the server runs as ``postgres``."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.binaries, self.user = server_binaries(), server_user()
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)  # the server's user must reach its cluster
        self.cluster = folder / "pg"
        self.log = folder / "postgres.log"
        self.port = port or free_port()
        if not self.cluster.exists():
            self.cluster.mkdir(mode=0o700)
            if self.user is not None:
                os.chown(self.cluster, self.user.pw_uid, self.user.pw_gid)
            with self.log.open("ab") as log:
                initdb = [str(self.binaries / "initdb"), "-D", str(self.cluster), "-U", "orders_live", "--auth=trust"]
                subprocess.run(initdb, stdout=log, stderr=subprocess.STDOUT, preexec_fn=become(self.user), check=True)
        self.start()
        deadline = time.monotonic() + 30
        while not self.answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def start(self) -> None:
        """Starts the server; ``answers`` says when it takes connections."""
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binaries / "postgres"),
                    "-D",
                    str(self.cluster),
                    "-p",
                    str(self.port),
                    "--listen_addresses=127.0.0.1",
                    "--unix_socket_directories=",
                    "--fsync=off",  # tests, not benchmarks: durability is not what they measure
                    "--max_connections=300",
                    # the WAL feed's suites: logical decoding, a slot per database that follows it
                    "--wal_level=logical",
                    "--max_replication_slots=200",
                    "--max_wal_senders=100",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=become(self.user),
            )

    def answers(self) -> bool:
        """The server has said, since its last start, that it takes connections."""
        with self.log.open("rb") as log:
            log.seek(self._log_offset)
            return b"ready to accept connections" in log.read()

    def url(self, database: str) -> str:
        return f"postgresql://orders_live@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        asyncio.run(create_database(self.url("postgres"), name))
        return self.url(name)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGINT, 15)  # SIGINT: fast shutdown


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    server = PgServer(Path(tempfile.mkdtemp(prefix="orders-live-pg-")))
    yield server
    server.stop()
    shutil.rmtree(server.cluster.parent, ignore_errors=True)


@pytest.fixture
def postgres_url(pg: PgServer) -> Iterator[str]:
    url = pg.new_database()
    yield url
    asyncio.run(drop_slots(url))  # a slot left behind keeps the session server's WAL


async def drop_slots(url: str) -> None:
    """Drops the replication slots of the database at ``url`` (ending whoever still reads one)."""
    connection = await asyncpg.connect(url)
    try:
        for _ in range(50):
            slots = await connection.fetch(
                "SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = current_database()"
            )
            if not slots:
                return
            for slot in slots:
                if slot["active_pid"] is not None:
                    await connection.execute("SELECT pg_terminate_backend($1)", slot["active_pid"])
                    continue
                with contextlib.suppress(asyncpg.ObjectInUseError, asyncpg.UndefinedObjectError):
                    await connection.execute("SELECT pg_drop_replication_slot($1)", slot["slot_name"])
            await asyncio.sleep(0.1)  # a terminated reader takes a moment to let go of its slot
    finally:
        await connection.close()


@pytest.fixture(params=["nx", "pg"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each kind: the embedded nx-27017's, then PostgreSQL's."""
    if request.param == "nx":
        return str(request.getfixturevalue("mongo_url"))
    return str(request.getfixturevalue("postgres_url"))


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[Source]:
    """The database at ``url``, opened through its own source (to write as another client would)."""
    source = source_from_url(url)
    await source.connection.open()
    try:
        yield source
    finally:
        await source.connection.close()


async def database_orders(url: str) -> dict[int, dict[str, Any]]:
    """Every order in the database at ``url``, as JSON, read through its own source."""
    async with opened(url) as source:
        ids = [order_id async for chunk in source.store.index_rows() for order_id, *_ in chunk]
        return {
            order["id"]: order
            for start in range(0, len(ids), 1000)
            for order in await source.store.fetch(ids[start : start + 1000])
        }


async def database_counts(url: str) -> dict[str, int]:
    """Orders per status (every status) in the PostgreSQL database at ``url``."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT status, count(*) AS n FROM orders GROUP BY status")
    finally:
        await connection.close()
    return dict.fromkeys(STATUSES, 0) | {row["status"]: int(row["n"]) for row in rows}


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "port": 0,
        "checkpoint_interval": 0.05,
        "instance": "test",
        "frontend_dir": Path(os.devnull),
        "subscribe_rate": 1000.0,  # the bad-input tests subscribe many times in a row
        # The test process hosts many services in turn: a frozen heap and the full collection
        # at a service's start would be global to it, and would turn another test's leftover
        # garbage into this test's ResourceWarning. Served processes keep it (test_process,
        # test_workers, test_interrupts); tests/test_shared_reads.py tests it alone.
        "freeze_heap": False,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[Service]:
    """A service started in this process, its change feed live; stopped on the way out."""
    running = Service(settings)
    await running.start()
    try:
        assert running.hub is not None
        await running.hub.wait_ready(10)
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture
async def service(database_url: str) -> AsyncIterator[Service]:
    async with running_service(settings_for(database_url)) as running:
        yield running


class Listener:
    """A python-socketio client that records everything it receives, in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[tuple[str, Any]] = []
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.5)
        self.connects = 0
        self.batches = 0

        @self.sio.on("connect")
        async def _connected() -> None:
            self.connects += 1

        @self.sio.on("order_change")
        async def _change(payload: dict[str, Any]) -> None:
            self.received.append(("order_change", payload))

        @self.sio.on("order_changes")
        async def _changes(payload: dict[str, Any]) -> None:
            self.batches += 1
            self.received.extend(("order_change", change) for change in payload["changes"])

        @self.sio.on("resync")
        async def _resync(payload: dict[str, Any]) -> None:
            self.received.append(("resync", payload))

        @self.sio.on("snapshot")
        async def _page(payload: dict[str, Any]) -> None:
            self.received.append(("snapshot", payload))

    async def connect(self) -> Listener:
        await self.sio.connect(self.url, transports=["websocket"])
        return self

    async def subscribe(self, payload: Any) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call("subscribe", payload, timeout=10)
        self.received.append(("ack", ack))
        return ack

    def changes(self) -> list[dict[str, Any]]:
        return [payload for event, payload in self.received if event == "order_change"]

    def snapshot(self) -> list[dict[str, Any]]:
        """The orders of the last snapshot, built from its pages as a client builds them (each
        page in turn from the one with ``reset``: upserts, then ``removed``)."""
        orders: dict[int, dict[str, Any]] = {}
        for event, payload in self.received:
            if event != "snapshot":
                continue
            if payload.get("reset"):
                orders = {}
            orders.update((order["id"], order) for order in payload["orders"])
            for order_id in payload.get("removed", []):
                orders.pop(order_id, None)
        return list(orders.values())

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest_asyncio.fixture
async def listeners() -> AsyncIterator[Callable[[str], Any]]:
    opened: list[Listener] = []

    async def open_listener(url: str) -> Listener:
        listener = await Listener(url).connect()
        opened.append(listener)
        return listener

    yield open_listener
    for listener in opened:
        await listener.close()


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's chromium under Playwright, for the browser tier (tests/e2e)."""
    from chromium_launch import CHROMIUM, CHROMIUM_ARGS  # tests/e2e: only the browser tier needs them
    from playwright.async_api import async_playwright

    playwright = await async_playwright().start()
    try:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
    finally:
        await playwright.stop()
