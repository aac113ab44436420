"""``orders-live serve --workers N``: a parent process and N workers on one port.

The parent binds the port first (so that port 0 becomes one real port for every worker, and
the port stays held while a worker restarts), starts the embedded database once when there is
no database URL, then starts each worker as ``python -m orders_live serve --host H --port P``
with the database's URL and its number in its environment (``DATABASE_URL``,
``ORDERS_LIVE_WORKER``). Each worker is a full instance following the database, listening
with ``SO_REUSEPORT``: the kernel spreads the connections over them. A worker's number is part
of its instance name, so each saves its own resume position.

A worker that exits while the parent is not stopping is started again after a growing,
capped, jittered delay (``Backoff``): its death is logged once, quietly for the first few,
loudly when it keeps dying. A worker that ran ``HEALTHY_AFTER`` seconds starts afresh.

SIGTERM or Ctrl-C to the parent: it sends SIGTERM to every worker, waits for them
(``STOP_WITHIN``, then SIGKILL), stops the embedded database, and the command says
``orders-live stopped`` once. The workers run in sessions of their own, so that a terminal's
Ctrl-C reaches the parent only, and they get SIGTERM if the parent dies (``die_with_parent``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys

import aiohttp

from orders_live.runtime.backoff import Backoff
from orders_live.settings import Settings
from orders_live.sources.database_process import die_with_parent, stop_server

log = logging.getLogger(__name__)

STOP_WITHIN = 30.0  # seconds the workers get to stop after SIGTERM; then SIGKILL
RESTART_FIRST, RESTART_CAP = 0.5, 30.0  # seconds: the first delay before a restart, and the longest
QUIET_DEATHS = 3  # deaths in a row logged at INFO; past them, WARNING
HEALTHY_AFTER = 30.0  # a worker that ran this long before dying starts its delays afresh
EMBEDDED_STOP_WITHIN = 20.0  # seconds the embedded database gets to stop (as Service.stop gives it)
LIVE_WAIT = 30.0  # seconds the banner waits for a worker's change feed to be live
PROBE_EVERY = 0.5  # seconds between two /readyz probes while waiting
DATABASE_VARIABLES = frozenset(
    {"DATABASE_URL", "ORDERS_LIVE_DATABASE_URL", "MONGO_URL", "ORDERS_LIVE_MONGO_URL"}
)  # the database's URL reaches a worker as DATABASE_URL alone (not on its command line: it may hold a password)
WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}  # probed on loopback


def workers_option(text: str) -> int | str:
    """``--workers``: a number of processes, 1 or more, or ``auto`` (one per core)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 or more) or auto") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count} workers: give 1 or more, or auto")
    return count


class WorkerDied(Exception):
    def __init__(self, pid: int, code: int) -> None:
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        super().__init__(f"pid {pid} {how}")


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to ``host:port`` with ``SO_REUSEPORT``: the workers bind
    beside it; port 0 becomes a real one. Raises ``OSError`` when the port is taken."""
    family, kind, protocol, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    reserved = socket.socket(family, kind, protocol)
    try:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind(address)
    except OSError:
        reserved.close()
        raise
    return reserved


def shared_ticket_secret(settings: Settings) -> str | None:
    """A stream ticket taken from one worker must open a stream on another: when the ticket key
    would be random per process (``Authenticator._ticket_key``), the workers share one."""
    if settings.ticket_secret or settings.jwt_secret:
        return None
    shared_tokens = settings.read_token or settings.write_token
    if shared_tokens and settings.jwt_public_keys is None:
        return None  # derived from the tokens: the same in every worker
    return secrets.token_urlsafe(32)


class Workers:
    """The worker processes: started, restarted when they die, stopped."""

    def __init__(self, settings: Settings, count: int, port: int, database_url: str) -> None:
        self.settings, self.count, self.port = settings, count, port
        self.database_url = database_url
        self.ticket_secret = shared_ticket_secret(settings)
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self._keepers: list[asyncio.Task[None]] = []
        self.stopping = False

    def command(self) -> list[str]:
        return [sys.executable, "-m", "orders_live", "serve", "--host", self.settings.host, "--port", str(self.port)]

    def environment(self, number: int) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name.upper() not in DATABASE_VARIABLES}
        env.update(DATABASE_URL=self.database_url, ORDERS_LIVE_WORKER=str(number), ORDERS_LIVE_WORKERS=str(self.count))
        if self.ticket_secret is not None:
            env["ORDERS_LIVE_TICKET_SECRET"] = self.ticket_secret
        return env

    def start(self) -> None:
        for number in range(1, self.count + 1):
            self._keepers.append(asyncio.create_task(self._keep(number), name=f"workers.{number}"))

    async def _keep(self, number: int) -> None:
        """Run worker ``number``, and again whenever it exits, until ``stop``."""
        loop = asyncio.get_running_loop()
        backoff = Backoff(f"worker {number}", log, RESTART_FIRST, RESTART_CAP, quiet_failures=QUIET_DEATHS)
        while not self.stopping:
            started = loop.time()
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.command(),
                    env=self.environment(number),
                    stdin=asyncio.subprocess.DEVNULL,
                    start_new_session=True,  # a terminal's Ctrl-C reaches the parent, which stops the workers
                    preexec_fn=die_with_parent,
                )
            except OSError as exc:  # no process: counted as a death
                await backoff.wait(exc)
                continue
            self.processes[number] = process
            log.info("worker %d started (pid %d)", number, process.pid)
            code = await process.wait()
            if self.stopping:
                return
            if loop.time() - started > HEALTHY_AFTER:
                backoff.failures = 0
            await backoff.wait(WorkerDied(process.pid, code))

    async def stop(self) -> None:
        """No more restarts; SIGTERM to every worker; SIGKILL to those still running after
        ``STOP_WITHIN`` seconds."""
        self.stopping = True
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        running = [process for process in self.processes.values() if process.returncode is None]
        await asyncio.gather(*(stop_server(process, signal.SIGTERM, STOP_WITHIN) for process in running))
        log.info("%d workers stopped", len(running))


async def serve_workers(settings: Settings, stop: asyncio.Event) -> None:
    """The parent of ``settings.workers`` workers, until ``stop`` is set."""
    from orders_live.service import embedded_database  # here: the other commands start without the service

    try:
        reserved = reserve_port(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s port %d: %s", settings.host, settings.port, exc)
        raise SystemExit(1) from None
    port = int(reserved.getsockname()[1])
    embedded = None
    try:
        database_url = settings.database_url
        if database_url is None:
            embedded = embedded_database(settings)
            database_url = await embedded.start()
        else:
            log.info("using the database at DATABASE_URL (nothing embedded started)")
        workers = Workers(settings, settings.workers, port, database_url)
        workers.start()
        try:
            url = f"http://{settings.host}:{port}"
            await _until_live(url, settings.host, port, stop)
            if stop.is_set():
                return
            line = f"orders-live is running: open {url}/  ({settings.workers} workers; Ctrl-C stops it)"
            if settings.log_format == "json":
                logging.getLogger("orders_live").info(line)
            else:
                print(line, flush=True)
            await stop.wait()
        finally:
            await workers.stop()
    finally:
        reserved.close()
        if embedded is not None:
            try:
                async with asyncio.timeout(EMBEDDED_STOP_WITHIN):
                    await embedded.stop()
            except TimeoutError:
                log.warning(
                    "stopping: the embedded database took over %.0f s; going on without it", EMBEDDED_STOP_WITHIN
                )


async def _until_live(url: str, host: str, port: int, stop: asyncio.Event) -> None:
    """Until a worker's ``/readyz`` answers 200 (the banner's URL then works at once), ``stop``
    is set, or ``LIVE_WAIT`` has passed (then a warning says so)."""
    probe_host = WILDCARD_HOSTS.get(host, host)
    probe = f"http://{f'[{probe_host}]' if ':' in probe_host else probe_host}:{port}/readyz"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIVE_WAIT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while not stop.is_set() and loop.time() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(probe) as response:
                    if response.status == 200:
                        return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_EVERY):
                    await stop.wait()
    if not stop.is_set():
        log.warning("no worker's change feed is live after %.0f s (see the lines above): %s", LIVE_WAIT, url)
