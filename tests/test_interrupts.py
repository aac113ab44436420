"""Ctrl-C as a terminal sends it (SIGINT to the whole foreground process group), at any moment:
each long-running command exits 0, says once that it stopped, and logs no traceback."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ORDERS_LIVE, free_port, until

pytestmark = [pytest.mark.database, pytest.mark.slow]


@pytest.fixture
def folder() -> Iterator[Path]:
    """Readable by the embedded database's own user (as root, PostgreSQL runs as ``postgres``)."""
    path = Path(tempfile.mkdtemp(prefix="orders-live-interrupt-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Terminal:
    """A command in its own process group, its output in a file, interrupted as a terminal does."""

    def __init__(self, folder: Path, name: str, *args: str) -> None:
        self.output = folder / f"{name}.log"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [*ORDERS_LIVE, *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    async def until_printed(self, text: str, within: float = 30.0) -> None:
        await until(lambda: text in self.text() or self.process.poll() is not None, within=within, what=repr(text))
        assert text in self.text(), self.text()

    async def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.process.wait), 30)
        except TimeoutError:
            os.kill(self.process.pid, signal.SIGUSR1)  # its threads' stacks, to its output
            await until(lambda: "Thread 0x" in self.text() or "Current thread" in self.text(), within=5, what="stacks")
            pytest.fail(f"still running 30 s after Ctrl-C; its output and stacks:\n{self.text()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def assert_stopped_cleanly(code: int, text: str, line: str) -> None:
    assert code == 0, text
    assert "Traceback" not in text, text
    assert "Unclosed" not in text, text
    assert text.count(line) == 1, text


@pytest.mark.parametrize("moment", ["event loop:", "listening on", "Ctrl-C stops it"])
@pytest.mark.parametrize("embedded", ["nx-27017", "postgres"])
async def test_ctrl_c_at_any_moment_of_the_demo_stops_it_cleanly(folder: Path, embedded: str, moment: str) -> None:
    """While it starts (before and after its event loop runs) and while it runs, with the
    embedded database in the same process group getting the same signal."""
    args = ("demo", "--port", str(free_port()), "--data-dir", str(folder / "data"), "--database", embedded)
    demo = Terminal(folder, "demo", *args)
    try:
        await demo.until_printed(moment)
        code = await demo.ctrl_c()
    finally:
        demo.kill()
    assert_stopped_cleanly(code, demo.text(), "orders-live stopped")
    assert "embedded database stopped" in demo.text() or "listening on" not in demo.text()


async def test_ctrl_c_stops_serve_and_watch_cleanly(folder: Path) -> None:
    """``watch`` closes its connection (no unclosed session) and says ``-- stopped``; ``serve``
    says ``orders-live stopped``; both exit 0."""
    port = free_port()
    serve = Terminal(folder, "serve", "serve", "--port", str(port), "--database-url", "memory://")
    try:
        await serve.until_printed("Ctrl-C stops it")
        watch = Terminal(folder, "watch", "watch", "--url", f"http://127.0.0.1:{port}")
        try:
            await watch.until_printed("-- snapshot")
            watch_code = await watch.ctrl_c()
        finally:
            watch.kill()
        serve_code = await serve.ctrl_c()
    finally:
        serve.kill()
    assert_stopped_cleanly(watch_code, watch.text(), "-- stopped")
    assert_stopped_cleanly(serve_code, serve.text(), "orders-live stopped")


def piped(folder: Path, *args: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    """A command whose output goes to a pipe we read (and may close), its errors to a file."""
    errors = folder / "errors.log"
    reading, writing = os.pipe()
    with errors.open("wb") as err:
        process = subprocess.Popen([*ORDERS_LIVE, *args], stdout=writing, stderr=err)
    os.close(writing)
    return process, reading, errors


async def test_watch_ends_quietly_when_its_reader_goes_away(folder: Path) -> None:
    """``orders-live watch | head -1``: the next line finds the pipe closed; watch ends, exit 0,
    with no traceback (it used to log one per change, for ever)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = Terminal(folder, "serve", "serve", "--port", str(port), "--database-url", "memory://")
    try:
        await serve.until_printed("Ctrl-C stops it")
        watch, reading, errors = piped(folder, "watch", "--url", url)
        try:
            first = await asyncio.to_thread(os.read, reading, 4096)
            assert first.startswith(b"-- snapshot"), first
            os.close(reading)  # what `head -1` does after its line
            create = Terminal(folder, "create", "create", "Ada", "Lamp", "--url", url)
            assert await asyncio.wait_for(asyncio.to_thread(create.process.wait), 30) == 0, create.text()
            code = await asyncio.wait_for(asyncio.to_thread(watch.wait), 30)
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.wait()
        await serve.ctrl_c()
    finally:
        serve.kill()
    text = errors.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "BrokenPipe" not in text, text
