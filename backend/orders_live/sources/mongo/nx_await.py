"""nx-27017 with MongoDB's ``awaitData``: the launcher of the embedded database.

nx-27017 answers an empty change-stream ``getMore`` at once, so a watcher must either spin or
pace itself, and a write made by another client waits for the next paced read (up to
``idle_poll_cap``). MongoDB holds such a ``getMore`` open until a write or ``maxAwaitTimeMS``.
This launcher gives nx-27017 that behaviour, and it is the one place that reaches into
nx-27017's internals (run as ``python -m orders_live.sources.mongo.nx_await <nx-27017 args>``):

- ``NeoSQLiteHandler.handle_command``: a ``getMore`` of a change stream that finds nothing
  waits (in its worker thread) until a write command completes, then reads again, until
  ``maxAwaitTimeMS``; every write command (and ``handle_insert``) wakes the waiters;
- ``nx_27017.server.run_server``: the event loop's default executor (where nx-27017 runs each
  command, ``asyncio.to_thread``) gets enough threads that waiting getMores never hold up
  writes.

``check`` compares the version and the shapes these rely on; if anything differs, or with
``--await-data false`` (what ``EmbeddedMongo`` passes for ``settings.mongo.nx_await``; without
the argument, ``ORDERS_LIVE_NX_AWAIT`` through ``MongoOptions``), nx-27017 runs as it is (the
watcher then paces its empty reads, as before). Which way it went is written to
``<data dir>/../nx-27017.mode``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from orders_live.sources.options import MongoOptions

PINNED = "0.8.1"
AWAIT_DATA = "--await-data"  # the launcher's own argument (true or false), taken out before nx-27017 reads the rest
MAX_WAIT = 10.0  # seconds: the longest a getMore is held, whatever it asks
DEFAULT_WAIT = 1.0  # MongoDB's default maxAwaitTimeMS
THREADS = 64
WRITES = frozenset(
    {
        "insert",
        "update",
        "delete",
        "findAndModify",
        "findandmodify",
        "bulkWrite",
        "commitTransaction",
        "drop",
        "dropDatabase",
        "renameCollection",
    }
)

Answer = tuple[int, dict[str, Any]]


class Writes:
    """A counter of completed writes and a condition to wait for the next one."""

    def __init__(self) -> None:
        self.count = 0
        self.closed = False  # the server is stopping: held getMores answer at once
        self.condition = threading.Condition()

    def close(self) -> None:
        with self.condition:
            self.closed = True
            self.condition.notify_all()

    def done(self) -> None:
        with self.condition:
            self.count += 1
            self.condition.notify_all()

    def wait_after(self, seen: int, timeout: float) -> int:
        with self.condition:
            self.condition.wait_for(lambda: self.count != seen or self.closed, timeout)
            return self.count


def check() -> list[str]:
    """What differs from the nx-27017 this launcher was written against (empty: nothing)."""
    problems: list[str] = []
    try:
        version = importlib.metadata.version("nx-27017")
        from nx_27017 import server
        from nx_27017.changestream import ChangeStreamManager
        from nx_27017.handler import NeoSQLiteHandler
    except Exception as exc:  # not installed, or it moved
        return [f"nx-27017 cannot be imported as expected ({type(exc).__name__}: {exc})"]
    if version != PINNED:
        problems.append(f"nx-27017 {version} is not the pinned {PINNED}")
    for method in ("handle_command", "handle_insert"):
        found = getattr(NeoSQLiteHandler, method, None)
        if not callable(found) or list(inspect.signature(found).parameters) != ["self", "msg"]:
            problems.append(f"NeoSQLiteHandler.{method} is not (self, msg)")
    if "_change_stream_manager" not in inspect.getsource(NeoSQLiteHandler.__init__):
        problems.append("NeoSQLiteHandler no longer keeps _change_stream_manager")
    if not callable(getattr(ChangeStreamManager, "get_stream", None)):
        problems.append("ChangeStreamManager.get_stream is gone")
    run_server = getattr(server, "run_server", None)
    if not inspect.iscoroutinefunction(run_server) or list(inspect.signature(run_server).parameters) != [
        "host",
        "port",
        "handler",
    ]:
        problems.append("nx_27017.server.run_server is not async (host, port, handler)")
    return problems


def _body(msg: dict[str, Any]) -> dict[str, Any] | None:
    for kind, section in msg.get("sections", ()):
        if kind == "body" and isinstance(section, dict):
            return section
    return None


def _holding(
    original: Callable[[Any, dict[str, Any]], Answer], writes: Writes
) -> Callable[[Any, dict[str, Any]], Answer]:
    def handle_command(self: Any, msg: dict[str, Any]) -> Answer:
        body = _body(msg)
        if body is None:
            return original(self, msg)
        if "getMore" not in body:
            answer = original(self, msg)
            if WRITES.intersection(body):
                writes.done()
            return answer
        try:
            stream = self._change_stream_manager.get_stream(int(body.get("getMore") or 0))
        except (TypeError, ValueError):
            stream = None
        if stream is None:
            return original(self, msg)  # a data cursor: nothing to wait for
        asked = body.get("maxTimeMS", body.get("maxAwaitTimeMS"))  # a getMore's maxTimeMS is its await time
        wait = DEFAULT_WAIT if not isinstance(asked, int | float) else max(0.0, float(asked) / 1000)
        deadline = time.monotonic() + min(wait, MAX_WAIT)
        seen = writes.count  # read before the getMore: a write in between is not missed
        answer = original(self, msg)
        while (
            not answer[1].get("cursor", {}).get("nextBatch")
            and not writes.closed
            and (remaining := deadline - time.monotonic()) > 0
        ):
            seen = writes.wait_after(seen, remaining)
            answer = original(self, msg)
        return answer

    return handle_command


def _waking(
    original: Callable[[Any, dict[str, Any]], Answer], writes: Writes
) -> Callable[[Any, dict[str, Any]], Answer]:
    def handle_insert(self: Any, msg: dict[str, Any]) -> Answer:
        try:
            return original(self, msg)
        finally:
            writes.done()

    return handle_insert


def install() -> None:
    """Patch nx-27017 in this process (after ``check`` found nothing)."""
    from nx_27017 import server
    from nx_27017.handler import NeoSQLiteHandler

    writes = Writes()
    NeoSQLiteHandler.handle_command = _holding(NeoSQLiteHandler.handle_command, writes)
    NeoSQLiteHandler.handle_insert = _waking(NeoSQLiteHandler.handle_insert, writes)
    original_run_server = server.run_server

    async def run_server(host: str, port: int, handler: Any) -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(THREADS, thread_name_prefix="nx"))
        try:
            await original_run_server(host, port, handler)
        finally:  # stopping: a getMore held in a thread (up to MAX_WAIT) would hold up the exit
            writes.close()

    server.run_server = run_server


def await_data_wanted(argv: list[str]) -> bool:
    """The launcher's ``--await-data true|false``, removed from ``argv``; without it, the
    setting as this process's environment gives it."""
    if AWAIT_DATA not in argv:
        return MongoOptions().nx_await
    at = argv.index(AWAIT_DATA)
    value = argv[at + 1] if at + 1 < len(argv) else ""
    del argv[at : at + 2]
    return value.lower() not in ("0", "false", "no", "off")


def main() -> None:
    wanted = await_data_wanted(sys.argv)
    problems = check() if wanted else ["switched off (ORDERS_LIVE_NX_AWAIT=false)"]
    mode = "awaitData" if not problems else "plain: " + "; ".join(problems)
    if "--data-dir" in sys.argv:
        folder = Path(sys.argv[sys.argv.index("--data-dir") + 1]).parent
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "nx-27017.mode").write_text(mode + "\n")
    if not problems:
        install()
    from nx_27017.nx_27017 import main as nx_main

    nx_main()


if __name__ == "__main__":
    main()
