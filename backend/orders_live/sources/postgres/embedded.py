"""A private PostgreSQL server as a child process, for the demo and the tests.

It uses the server binaries already on the machine (``PostgresOptions.bin``, that is
``ORDERS_LIVE_PG_BIN``, else ``pg_config --bindir``, else Debian's
``/usr/lib/postgresql/<version>/bin``): ``initdb`` on
the first start into ``<data_dir>/pg``, then ``postgres`` on 127.0.0.1 only, on its own port,
with no Unix socket, logging to ``<data_dir>/postgres.log``. initdb and postgres refuse to
run as root, so under root the server runs as the ``postgres`` user (Debian's package creates
it) or else ``nobody``. It gets SIGTERM if the service dies, and is stopped (fast shutdown)
after the service has closed its connections.

The database superuser ``orders_live`` logs in with a random password (SCRAM-SHA-256), kept in
``<data_dir>/postgres.password`` (mode 0600, the server's user's) and put into the URL the
service uses: another local user who connects to 127.0.0.1 is refused. ``pg_hba.conf`` is
rewritten at each start to allow nothing else. A cluster made before this (trust, no password
file) gets a password at its next start, set in single-user mode before the server listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import asyncpg

from orders_live.sources.database_process import die_with_parent, free_port, stop_server, stop_stale_server
from orders_live.sources.options import PostgresOptions

log = logging.getLogger(__name__)
# The write-ahead log carries what logical decoding needs, so that the WAL feed
# (ORDERS_LIVE_PG_CHANGES=wal) can follow it; a few slots and senders for it.
LOGICAL = {"wal_level": "logical", "max_replication_slots": "10", "max_wal_senders": "10"}

START_TIMEOUT = 30.0
PASSWORD_FILE = "postgres.password"  # in data_dir: the superuser's password
USER = "orders_live"  # the database superuser initdb creates (password authentication, loopback only)
HBA = """# Written by orders-live at each start (sources/postgres/embedded.py): the superuser, with its
# password (SCRAM-SHA-256), over TCP on loopback; nothing else.
host all orders_live 127.0.0.1/32 scram-sha-256
host all orders_live ::1/128 scram-sha-256
"""


def server_binaries(options: PostgresOptions | None = None) -> Path:
    """The folder of ``initdb`` and ``postgres``; RuntimeError with what to install when none."""
    candidates: list[Path] = []
    configured = (options or PostgresOptions()).bin
    if configured is not None:
        candidates.append(configured)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(found.stdout.strip()))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    candidates.extend(debian)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise RuntimeError(
        "no PostgreSQL server binaries found (initdb, postgres): install Debian's postgresql"
        " (apt-get install postgresql) or set ORDERS_LIVE_PG_BIN to their folder"
    )


def server_user() -> pwd.struct_passwd | None:
    """Who the server runs as: this process's user, or under root a user initdb accepts."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("PostgreSQL refuses to run as root, and there is no 'postgres' or 'nobody' user")


def become(user: pwd.struct_passwd | None) -> Callable[[], None]:
    def child() -> None:  # pragma: no cover - runs in the child
        if user is not None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        die_with_parent()  # after setuid: a change of credentials clears the parent-death signal

    return child


async def create_database(server_url: str, name: str) -> None:
    """Create ``name`` on the server at ``server_url`` unless it exists (the name is an
    identifier, quoted as one)."""
    connection = await asyncpg.connect(server_url)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            quoted = '"' + name.replace('"', '""') + '"'
            await connection.execute(f"CREATE DATABASE {quoted}")
    finally:
        await connection.close()


class EmbeddedPostgres:
    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        database: str = "orders_live",
        server_settings: Mapping[str, str] | None = None,
        options: PostgresOptions | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.options = options  # where its binaries are (None: from the environment)
        self.port = port
        self.database = database
        self.server_settings = dict(server_settings or {})
        self.process: asyncio.subprocess.Process | None = None
        self.password: str | None = None  # read or made at start

    @property
    def cluster(self) -> Path:
        return self.data_dir / "pg"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.data_dir / PASSWORD_FILE

    def url(self, database: str | None = None) -> str:
        login = f"{USER}:{self.password}" if self.password else USER
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database or self.database}"

    async def start(self) -> str:
        binaries = server_binaries(self.options)
        user = server_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale_server()
        had_password = self.password_file.is_file()
        self.password = self._password(user)
        if not (self.cluster / "PG_VERSION").is_file():
            await self._initdb(binaries, user)
        elif not had_password:
            await self._set_password(binaries, user)
        self._write_hba(user)
        self.port = self.port or free_port()
        options = {"listen_addresses": "127.0.0.1", "unix_socket_directories": "", **LOGICAL, **self.server_settings}
        arguments = [f"--{name}={value}" for name, value in options.items()]
        with self.log_file.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                str(binaries / "postgres"),
                "-D",
                str(self.cluster),
                "-p",
                str(self.port),
                *arguments,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,  # Ctrl-C reaches us, not it: we stop it after closing our pool
                preexec_fn=become(user),
            )
        await self._wait_until_answering()
        await self.create_database(self.database)
        log.info(
            "embedded database PostgreSQL (pid %d, %s) on port %d, files in %s",
            self.process.pid,
            binaries.parent.name,
            self.port,
            self.cluster,
        )
        return self.url()

    async def _initdb(self, binaries: Path, user: pwd.struct_passwd | None) -> None:
        self.cluster.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            os.chown(self.cluster, user.pw_uid, user.pw_gid)
        with self.log_file.open("ab") as output:
            initdb = await asyncio.create_subprocess_exec(
                str(binaries / "initdb"),
                "-D",
                str(self.cluster),
                "-U",
                USER,
                "--auth=scram-sha-256",
                f"--pwfile={self.password_file}",
                "-E",
                "UTF8",
                "--no-instructions",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                preexec_fn=become(user),
            )
            if await initdb.wait() != 0:
                raise RuntimeError(f"initdb failed with {initdb.returncode}; see {self.log_file}")

    def _password(self, user: pwd.struct_passwd | None) -> str:
        """The superuser's password, from its file, else a new random one written there (0600,
        owned by the server's user: initdb reads it)."""
        path = self.password_file
        if path.is_file():
            path.chmod(0o600)
            password = path.read_text().strip()
            if password:
                return password
        password = secrets.token_hex(24)
        fresh = path.with_name(f".{path.name}.new")
        fresh.unlink(missing_ok=True)
        descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(password + "\n")
        if user is not None:
            os.chown(fresh, user.pw_uid, user.pw_gid)
        fresh.replace(path)
        return password

    async def _set_password(self, binaries: Path, user: pwd.struct_passwd | None) -> None:
        """A cluster made with trust: set the superuser's password in single-user mode (the
        server is not running, so nobody can connect meanwhile)."""
        log.info("embedded PostgreSQL: giving %s a password (%s)", USER, self.password_file)
        with self.log_file.open("ab") as output:
            single = await asyncio.create_subprocess_exec(
                str(binaries / "postgres"),
                "--single",
                "-D",
                str(self.cluster),
                "-c",
                "password_encryption=scram-sha-256",
                "postgres",
                stdin=asyncio.subprocess.PIPE,
                stdout=output,
                stderr=output,
                start_new_session=True,
                preexec_fn=become(user),
            )
            await single.communicate(f"ALTER ROLE {USER} PASSWORD '{self.password}';\n".encode())
        if single.returncode != 0:
            raise RuntimeError(f"could not set the embedded PostgreSQL's password; see {self.log_file}")

    def _write_hba(self, user: pwd.struct_passwd | None) -> None:
        """Password logins of the superuser over loopback, nothing else (no trust)."""
        path = self.cluster / "pg_hba.conf"
        fresh = path.with_name("pg_hba.conf.new")
        fresh.write_text(HBA)
        fresh.chmod(0o600)
        if user is not None:
            os.chown(fresh, user.pw_uid, user.pw_gid)
        fresh.replace(path)

    async def _wait_until_answering(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"PostgreSQL exited with {self.process.returncode}; see {self.log_file}")
            try:
                connection = await asyncpg.connect(self.url("postgres"), timeout=2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.process.wait(), 0.05)
                continue
            await connection.close()
            return
        await self.stop()
        raise RuntimeError(f"PostgreSQL did not answer on port {self.port} within {START_TIMEOUT:.0f}s")

    async def create_database(self, name: str) -> None:
        await create_database(self.url("postgres"), name)

    def _stop_stale_server(self) -> None:
        """A server left running on this cluster (its parent was killed) is stopped."""
        try:
            pid = int((self.cluster / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        stop_stale_server(pid, b"postgres", self.cluster, signal.SIGINT, "PostgreSQL")

    async def stop(self) -> None:
        process, self.process = self.process, None
        if await stop_server(process, signal.SIGINT, 15):  # SIGINT: fast shutdown
            log.info("embedded database stopped")
