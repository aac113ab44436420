"""HTTP defects, black-box against ``orders-live serve``: ids past what ``int()`` takes, a frozen
database, requests whose headers never end, and the open-files limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import conftest
from conftest import NxServer, ServeProcess, free_port, until, until_async

pytestmark = pytest.mark.database

IDLE_TIMEOUT = 1.0  # ORDERS_LIVE_HTTP_IDLE_TIMEOUT of the shared service
CLOSE_BOUND = 10.0  # liveness deadline for the server to close a connection
HUGE_ID = "9" * 5000  # past Python's int() limit of 4,300 digits
ORDER = {"customer_name": "Ada Lovelace", "product_name": "Keyboard"}


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, nx: NxServer) -> Iterator[ServeProcess]:
    folder = tmp_path_factory.mktemp("http-defects")
    process = ServeProcess(
        folder / "data",
        free_port(),
        "--mongo-url",
        nx.url(f"t_{uuid.uuid4().hex[:12]}"),
        env={"ORDERS_LIVE_HTTP_IDLE_TIMEOUT": str(IDLE_TIMEOUT)},
    )
    try:
        process.wait_until_live()
        yield process
    finally:
        process.stop()


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    body: dict[str, Any] = await response.json(content_type=None)
    return body


# --- 1. ids outside 1…2**63-1 -------------------------------------------------------------

NO_SUCH_IDS = [HUGE_ID, "0", "0" * 5000, str(2**63), str(2**63 - 1), "1" + "0" * 4400]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_an_order_id_outside_the_range_names_no_order(serve: ServeProcess, method: str) -> None:
    async with aiohttp.ClientSession() as http:
        for raw in NO_SUCH_IDS:
            options: dict[str, Any] = {"json": {"status": "shipped"}} if method == "PATCH" else {}
            async with http.request(method, f"{serve.url}/api/orders/{raw}", **options) as response:
                assert response.status == 404, f"{method} /api/orders/<{len(raw)} digits>: {response.status}"
                assert (await _json(response))["error"]["code"] == "not_found"
    assert "Traceback" not in serve.log.read_text()


FEED_BAD_IDS = [HUGE_ID, "0", str(2**63), "1" + "0" * 4400, "²"]  # "²".isdigit(), int("²") fails


@pytest.mark.parametrize(("path", "query"), [("/api/changes", {"since": "x"}), ("/api/changes/stream", {})])
async def test_a_feed_id_outside_the_range_is_a_field_error(
    serve: ServeProcess, path: str, query: dict[str, str]
) -> None:
    async with aiohttp.ClientSession() as http:
        for raw in FEED_BAD_IDS:
            async with http.get(f"{serve.url}{path}", params={**query, "id": raw}) as response:
                assert response.status == 422, f"{path}?id=<{raw[:8]}… {len(raw)} chars>: {response.status}"
                error = (await _json(response))["error"]
                assert error["code"] == "validation_failed"
                assert error["fields"].get("id"), error
    assert "Traceback" not in serve.log.read_text()


async def test_a_limit_past_the_int_limit_is_a_field_error(serve: ServeProcess) -> None:
    async with aiohttp.ClientSession() as http:
        for raw in [HUGE_ID, "²", "0", str(2**63)]:
            async with http.get(f"{serve.url}/api/orders", params={"limit": raw}) as response:
                assert response.status == 422, f"limit=<{raw[:8]}… {len(raw)} chars>: {response.status}"
                assert (await _json(response))["error"]["fields"].get("limit")
    assert "Traceback" not in serve.log.read_text()


MALFORMED_REQUESTS = [
    b"GET /" + b"a" * 9000 + b"?token=secret-in-url HTTP/1.1\r\nHost: x\r\n\r\n",  # request line too long
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"b" * 9000 + b"\r\n\r\n",  # header too long
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",  # not a length
]


async def test_a_malformed_http_request_gets_400_and_one_warning_line(serve: ServeProcess) -> None:
    """aiohttp answers these itself, and logged each one with a traceback at ERROR."""
    before = serve.log.read_text()
    for raw in MALFORMED_REQUESTS:
        reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
        try:
            writer.write(raw)
            async with asyncio.timeout(CLOSE_BOUND):
                answer = await reader.read()
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer[:40]

    def logged() -> str:
        return serve.log.read_text()[len(before) :]

    await until(lambda: logged().count("refused a malformed HTTP request") == 3, what="three warnings")
    text = logged()
    assert "Traceback" not in text and "ERROR" not in text
    assert "secret-in-url" not in text and "bbbb" not in text


# --- 2. a frozen database -----------------------------------------------------------------


async def _post(http: aiohttp.ClientSession, url: str, within: float = 10.0) -> tuple[int, dict[str, Any]]:
    """POST an order; a request held past ``within`` seconds fails the test (liveness bound)."""
    try:
        async with asyncio.timeout(within):
            async with http.post(f"{url}/api/orders", json=ORDER) as response:
                return response.status, await _json(response)
    except TimeoutError:
        raise AssertionError(f"POST /api/orders was held for more than {within:g}s") from None


@contextlib.contextmanager
def _service_on_its_own_database(tmp_path: Path) -> Iterator[tuple[ServeProcess, NxServer]]:
    """``orders-live serve`` (database_timeout 1 s) on a private nx-27017, to freeze without
    touching the session's."""
    database = NxServer(tmp_path / "frozen-nx")
    serve = ServeProcess(
        tmp_path / "data",
        free_port(),
        "--mongo-url",
        database.url("frozen"),
        env={"ORDERS_LIVE_DATABASE_TIMEOUT": "1"},
    )
    try:
        serve.wait_until_live()
        yield serve, database
    finally:
        os.kill(database.process.pid, signal.SIGCONT)  # whatever happened: never leave it stopped
        serve.stop()
        database.stop()


@contextlib.contextmanager
def _frozen(database: NxServer) -> Iterator[None]:
    os.kill(database.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(database.process.pid, signal.SIGCONT)


async def _until_a_write_succeeds(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    written: list[dict[str, Any]] = []

    async def a_write_succeeds() -> bool:
        status, body = await _post(http, url)
        written.append(body)
        return status == 201

    await until_async(a_write_succeeds, within=20, what="a write after the database thawed")
    return written[-1]


async def test_a_frozen_database_gets_503_and_is_logged_once_per_outage(tmp_path: Path) -> None:
    with _service_on_its_own_database(tmp_path) as (serve, database):
        async with aiohttp.ClientSession() as http:
            assert (await _post(http, serve.url))[0] == 201
            with _frozen(database):
                for _ in range(3):
                    status, body = await _post(http, serve.url)
                    assert status == 503, body
                    assert body["error"]["code"] == "database_unavailable"
                async with asyncio.timeout(10), http.get(f"{serve.url}/readyz") as ready:
                    assert ready.status == 503
                assert serve.log.read_text().count("database requests are failing") == 1
            await _until_a_write_succeeds(http, serve.url)
        await until(lambda: "answers requests again" in serve.log.read_text(), what="the recovery logged")
        log = serve.log.read_text()
        assert log.count("database requests are failing") == 1
        assert log.count("answers requests again") == 1
        assert "Traceback" not in log


async def test_the_change_feed_carries_on_after_a_database_outage(tmp_path: Path) -> None:
    with _service_on_its_own_database(tmp_path) as (serve, database):
        async with aiohttp.ClientSession() as http:
            with _frozen(database):
                assert (await _post(http, serve.url))[0] == 503
            order = await _until_a_write_succeeds(http, serve.url)

            async def in_the_feed() -> bool:
                async with http.get(f"{serve.url}/api/orders/{order['id']}") as found:
                    return found.status == 200

            await until_async(in_the_feed, within=10, what=f"order {order['id']} in the change feed")


# --- 3. requests whose headers never finish -----------------------------------------------

PARTIAL_REQUESTS = [
    b"GET /api/ord",  # the request line unfinished
    b"GET /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",  # the headers unfinished
    b"",  # nothing sent at all
]


async def _closed_by_the_server(reader: asyncio.StreamReader, within: float = CLOSE_BOUND) -> bool:
    """True once the server has closed the connection (EOF or reset), False if it is still open."""
    try:
        async with asyncio.timeout(within):
            await reader.read()  # to EOF
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


async def test_connections_whose_request_never_finishes_are_closed(serve: ServeProcess) -> None:
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for n in range(51):
            reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
            writer.write(PARTIAL_REQUESTS[n % len(PARTIAL_REQUESTS)])
            await writer.drain()
            opened.append((reader, writer))
        closed = await asyncio.gather(*(_closed_by_the_server(reader) for reader, _ in opened))
    finally:
        for _, writer in opened:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    still_open = closed.count(False)
    assert still_open == 0, f"{still_open} of {len(closed)} unfinished requests still open after {CLOSE_BOUND:g}s"
    async with aiohttp.ClientSession() as http, http.get(f"{serve.url}/healthz") as response:
        assert response.status == 200


async def test_an_event_stream_outlives_the_idle_timeout(serve: ServeProcess) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=CLOSE_BOUND)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"{serve.url}/api/changes/stream") as stream,
        contextlib.AsyncExitStack() as stack,
    ):
        assert stream.status == 200
        events = await stack.enter_async_context(contextlib.aclosing(_events(stream)))
        assert (await anext(events))[0] == "snapshot"
        opened_at = time.monotonic()
        # An idle connection opened after the stream: once the server has closed it, the
        # idle timeout has passed for the stream's connection too.
        reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
        try:
            assert await _closed_by_the_server(reader), "an idle connection was not closed"
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        assert time.monotonic() - opened_at >= IDLE_TIMEOUT
        async with http.post(f"{serve.url}/api/orders", json=ORDER) as created:
            assert created.status == 201
            order_id = (await _json(created))["id"]
        async with asyncio.timeout(CLOSE_BOUND):
            async for event, data in events:
                if event == "order_change" and json.loads(data)["id"] == order_id:
                    break
            else:
                raise AssertionError("the event stream ended before the change arrived")


async def _events(response: aiohttp.ClientResponse) -> AsyncGenerator[tuple[str, str], None]:
    """(event, data) of each SSE event; comments and retry lines skipped."""
    event, data = "", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif not line and event:
            yield event, data
            event, data = "", ""


# --- 4. the open-files limit --------------------------------------------------------------

# Start the service with a given RLIMIT_NOFILE: set it, then exec (same pid) the usual command.
LIMITED = (
    "import os, resource, sys;"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])));"
    "os.execv(sys.executable, [sys.executable, '-m', 'orders_live', *sys.argv[3:]])"
)


def _open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open-files line in /proc/{pid}/limits")


def _limited_serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, nx: NxServer, soft: int, hard: int, env: dict[str, str]
) -> ServeProcess:
    monkeypatch.setattr(conftest, "ORDERS_LIVE", [sys.executable, "-c", LIMITED, str(soft), str(hard)])
    return ServeProcess(tmp_path / "data", free_port(), "--mongo-url", nx.url(f"t_{uuid.uuid4().hex[:12]}"), env=env)


def test_a_low_open_files_limit_is_raised_to_the_hard_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, nx: NxServer
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 2000:
        pytest.skip(f"needs a finite hard open-files limit of at least 2000 (it is {hard})")
    process = _limited_serve(monkeypatch, tmp_path, nx, 256, hard, {"ORDERS_LIVE_MAX_CONNECTIONS": "1000"})
    try:
        process.wait_until_live()
        assert _open_files_limits(process.process.pid) == (hard, hard)
        log = process.log.read_text()
        assert f"open-files limit {hard} " in log
        assert "is below max_connections" not in log
    finally:
        assert process.stop() == 0


def test_a_hard_open_files_limit_below_max_connections_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, nx: NxServer
) -> None:
    process = _limited_serve(monkeypatch, tmp_path, nx, 200, 256, {"ORDERS_LIVE_MAX_CONNECTIONS": "1000"})
    try:
        process.wait_until_live()
        assert _open_files_limits(process.process.pid) == (256, 256)
        log = process.log.read_text()
        assert "open-files limit 256 (hard 256) is below max_connections 1000" in log
        assert "WARNING" in next(line for line in log.splitlines() if "open-files limit 256" in line)
    finally:
        assert process.stop() == 0


async def test_the_pages_past_an_updated_order_are_served(service: Any) -> None:
    """nx-27017 stored an update's date zoned and an insert's naive, and then failed every date
    range over an updated order: 'Load older' answered 503 once any order had changed."""
    base = f"{service.url}/api/orders"
    async with aiohttp.ClientSession() as session:
        ids = []
        for n in range(5):
            async with session.post(base, json={"customer_name": f"C{n}", "product_name": "P"}) as response:
                ids.append((await response.json())["id"])
        async with session.patch(f"{base}/{ids[1]}", json={"status": "shipped"}) as response:
            assert response.status == 200
        seen: list[int] = []
        url = f"{base}?limit=2"
        while url:
            async with session.get(url) as response:
                assert response.status == 200, await response.text()
                page = await response.json()
            seen += [order["id"] for order in page["orders"]]
            url = f"{base}?limit=2&before={page['next_before']}" if page["next_before"] else ""
    assert seen == [ids[1], ids[4], ids[3], ids[2], ids[0]]  # the updated one is the newest
