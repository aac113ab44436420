"""The service as the bench measures it, as processes: one instance, or two on one database
behind Debian's nginx, started from the repository's own ``nginx/nginx.conf``.

The configuration is not copied: a folder gets a link to it and the two files it includes
(``orders-live-upstreams.conf``, ``orders-live-listen.conf``), written with the real addresses;
nginx runs in the foreground with that folder as its prefix and stops on SIGQUIT (graceful).
The fault test (``tests/nginx_front.py``) uses the same class."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

from orders_live.bench.loop_lag import Buckets, parse_buckets, worker_of

ROOT = Path(__file__).resolve().parents[3]  # backend/orders_live/bench/balancer.py → the repository
CONFIG = ROOT / "nginx" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
METRICS = (  # read from each instance's /metrics
    "orders_live_fanout_batch_changes_sum",
    "orders_live_fanout_batch_changes_count",
    "orders_live_changes_out_total",
    "orders_live_fanout_seconds_sum",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(processes: list[psutil.Process]) -> float:
    return float(sum(p.cpu_times().user + p.cpu_times().system for p in processes))


def rss(processes: list[psutil.Process]) -> float:
    return float(sum(p.memory_info().rss for p in processes))


def nginx_available() -> bool:
    return Path(NGINX).is_file()


def stop_process(process: subprocess.Popen[bytes], stop_signal: int, within: float) -> None:
    """Stop a server process with ``stop_signal``, then SIGKILL after ``within`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class NginxFront:
    """nginx on ``127.0.0.1:listen`` in front of the instances on ``ports`` (127.0.0.1),
    round robin as ``nginx.conf`` says; started and listening once the constructor returns."""

    def __init__(self, ports: list[int], listen: int, within: float = 15.0) -> None:
        if not nginx_available():
            raise RuntimeError(f"no nginx at {NGINX}: install Debian's nginx (scripts/test.sh does)")
        if not CONFIG.is_file():
            raise RuntimeError(f"no {CONFIG}: the balancer runs from a checkout of the repository")
        self.folder = Path(tempfile.mkdtemp(prefix="orders-live-nginx-"))
        (self.folder / "nginx.conf").symlink_to(CONFIG)
        servers = "".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in ports)
        (self.folder / "orders-live-upstreams.conf").write_text(servers)
        (self.folder / "orders-live-listen.conf").write_text(f"listen 127.0.0.1:{listen};\n")
        self.url = f"http://127.0.0.1:{listen}"
        self.process = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(self.folder),
                "-c",
                str(self.folder / "nginx.conf"),
                "-e",
                str(self.folder / "error.log"),
                "-g",
                f"daemon off; pid {self.folder / 'nginx.pid'};",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + within
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"nginx did not start: {self.errors()}") from None
                time.sleep(0.05)  # until it listens, or the deadline

    def errors(self) -> str:
        """The end of nginx's error log (kept until ``stop``)."""
        log = self.folder / "error.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def processes(self) -> list[psutil.Process]:
        """The master and its workers."""
        master = psutil.Process(self.process.pid)
        return [master, *master.children(recursive=True)]

    def stop(self) -> None:
        stop_process(self.process, signal.SIGQUIT, 10)
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Deployment:
    """The service instances (each its own process) and, with two, nginx in front of them."""

    services: list[asyncio.subprocess.Process]
    urls: list[str]  # each instance's own address (its /metrics)
    url: str  # where clients and REST writes go: the one instance, or nginx
    front: NginxFront | None = None
    label: str = field(default="")  # how the report names the cases: "" or "via nginx, 2 instances"
    database_pid: int | None = None  # an embedded database the bench itself started (external writer)
    workers: int = 1  # each instance's serve --workers

    def service_processes(self) -> list[psutil.Process]:
        """Each instance's process and, with ``--workers``, the workers it started."""
        found = []
        for service in self.services:
            main = psutil.Process(service.pid)
            found += [main, *(child for child in main.children(recursive=True) if _serves(child))]
        return found

    def database_processes(self) -> list[psutil.Process]:
        """An embedded database each instance started as its child (none with a URL), or the one
        the bench started for them (with its own children: PostgreSQL's backends)."""
        mains = [psutil.Process(service.pid) for service in self.services]
        found = [child for main in mains for child in main.children(recursive=True) if not _serves(child)]
        if self.database_pid is not None:
            server = psutil.Process(self.database_pid)
            found += [server, *server.children(recursive=True)]
        return found

    async def metrics(self) -> list[tuple[float, ...]]:
        """Per instance, from its own /metrics: (changes fanned out, fan-outs, deliveries, seconds
        spent fanning out) so far."""
        found = []
        async with aiohttp.ClientSession() as session:
            for url in self.urls:
                text = await metrics_text(session, url)
                values = dict.fromkeys(METRICS, 0.0)
                for line in text.splitlines():
                    name, _, value = line.partition(" ")
                    if name in values:
                        values[name] = float(value)
                found.append(tuple(values[name] for name in METRICS))
        return found

    async def lag_buckets(self) -> dict[str, Buckets]:
        """The event-loop lag histogram's cumulative counts of each instance, and under
        ``--workers`` of each worker (each answers /metrics for itself: asked over fresh
        connections until every worker has answered, or 10 tries per worker); none for a service
        that does not export it."""
        found: dict[str, Buckets] = {}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            for url in self.urls:
                seen: set[str | None] = set()
                for _ in range(10 * self.workers):
                    text = await metrics_text(session, url)
                    worker = worker_of(text)
                    buckets = parse_buckets(text)
                    if buckets is not None and worker not in seen:
                        found[f"{url} {worker}"] = buckets
                    seen.add(worker)
                    if len(seen) >= self.workers:
                        break
        return found

    async def terminate(self, within: float = 60.0) -> tuple[float | None, float]:
        """SIGTERM to every instance while its clients are connected: the seconds until the last
        one exited (None: not within ``within``, then killed) and the monotonic time it did."""
        started = time.monotonic()
        for service in self.services:
            if service.returncode is None:
                service.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(service.wait() for service in self.services)), within)
        except TimeoutError:
            for service in self.services:
                if service.returncode is None:
                    service.kill()
            await asyncio.gather(*(service.wait() for service in self.services))
            return None, time.monotonic()
        exited = time.monotonic()
        return exited - started, exited

    async def connected(self) -> float:
        """Clients connected to the instances now, every transport (their /metrics)."""
        total = 0.0
        async with aiohttp.ClientSession() as session:
            for url in self.urls:
                for line in (await metrics_text(session, url)).splitlines():
                    if line.startswith("orders_live_connected_clients{"):
                        total += float(line.rsplit(" ", 1)[1])
        return total

    async def until_no_clients(self, within: float) -> float:
        """Until no client is connected, or ``within`` seconds: how many are left."""
        deadline = time.monotonic() + within
        while True:
            left = await self.connected()
            if not left or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.5)  # the next look

    async def stop(self) -> None:
        if self.front is not None:
            await asyncio.to_thread(self.front.stop)
        for service in self.services:
            if service.returncode is None:
                service.terminate()
        await asyncio.wait_for(asyncio.gather(*(service.wait() for service in self.services)), 30)


async def start_deployment(
    folder: Path,
    database_url: str | None,
    through_nginx: bool,
    database_pid: int | None = None,
    env: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    log: Path | None = None,
    workers: int = 1,
) -> Deployment:
    """One instance, or (``through_nginx``) two on the same database behind nginx. ``env``: more
    settings for each instance (JWT mode, ``max_connections``); ``headers``: what a read needs
    then (a token); ``log``: a file for the instances' output (default: discarded); ``workers``:
    ``serve --workers`` (given only when not 1)."""
    if through_nginx and not database_url:
        raise ValueError("two instances share one database: give its URL")
    if through_nginx and not nginx_available():
        raise RuntimeError(f"--through-nginx: no nginx at {NGINX}: install Debian's nginx (scripts/test.sh does)")
    count = 2 if through_nginx else 1
    ports = [free_port() for _ in range(count)]
    services: list[asyncio.subprocess.Process] = []
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    deployment = Deployment(services, urls, "", database_pid=database_pid, workers=workers)
    output = log.open("ab") if log is not None else None  # each child holds its own copy
    try:
        for n, port in enumerate(ports):
            args = [sys.executable, "-m", "orders_live", "serve", "--port", str(port)]
            args += ["--data-dir", str(folder / f"instance-{n + 1}")]
            if database_url:
                args += ["--database-url", database_url]
            if workers != 1:
                args += ["--workers", str(workers)]
            name = f"bench-{n + 1}" if through_nginx else "bench"
            settings = {**os.environ, **(env or {}), "ORDERS_LIVE_LOG_LEVEL": "WARNING", "ORDERS_LIVE_INSTANCE": name}
            services.append(
                await asyncio.create_subprocess_exec(
                    *args,
                    env=settings,
                    stdout=output or asyncio.subprocess.DEVNULL,
                    stderr=output or asyncio.subprocess.DEVNULL,
                )
            )
        async with aiohttp.ClientSession(headers=headers) as session:
            await asyncio.gather(
                *(until_ready(session, url, service) for url, service in zip(deployment.urls, services, strict=True))
            )
        if through_nginx:
            deployment.front = await asyncio.to_thread(NginxFront, ports, free_port())
            deployment.url, deployment.label = deployment.front.url, f"via nginx, {count} instances"
        else:
            deployment.url = deployment.urls[0]
    except BaseException:
        await deployment.stop()
        raise
    finally:
        if output is not None:
            output.close()
    return deployment


async def metrics_text(session: aiohttp.ClientSession, url: str, attempts: int = 5) -> str:
    """An instance's /metrics; asked again (a second apart) when the connection fails: a
    service busy with thousands of clients may close a kept-alive connection as it is reused."""
    for attempt in range(1, attempts + 1):
        try:
            async with session.get(f"{url}/metrics") as response:
                return await response.text()
        except aiohttp.ClientConnectionError:
            if attempt == attempts:
                raise
            await asyncio.sleep(1.0)  # the next try
    raise AssertionError("unreachable")


def _serves(process: psutil.Process) -> bool:
    """A service process (an instance's worker) rather than its embedded database: a Python
    process that does not run a database module (nx-27017's wrapper)."""
    try:
        return process.name().startswith("python") and "orders_live.sources" not in " ".join(process.cmdline())
    except psutil.Error:
        return False


async def until_ready(
    session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process, within: float = 60.0
) -> None:
    """Until the instance answers ``/api/orders`` (its feed is live): or it exits, or ``within``."""
    deadline = time.monotonic() + within
    while process.returncode is None and time.monotonic() < deadline:
        try:
            async with session.get(f"{url}/api/orders?limit=1") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)  # the next try: the instance is still starting
    raise RuntimeError(f"the service at {url} did not start (exit code {process.returncode})")
