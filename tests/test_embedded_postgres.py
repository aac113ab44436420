"""The embedded PostgreSQL (``serve --database postgres``, the demo) lets in only who holds its
password: a random one, kept in a file only its owner reads, and in the URL the service uses.
Any other local user who connects to 127.0.0.1 is refused (it used to be trust, as superuser)."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from orders_live.sources.postgres.embedded import (
    PASSWORD_FILE,
    USER,
    EmbeddedPostgres,
    become,
    server_binaries,
    server_user,
)

pytestmark = pytest.mark.database


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder the server's own user can reach (as root, PostgreSQL runs as ``postgres``)."""
    monkeypatch.delenv("PGPASSWORD", raising=False)  # nothing but the URL may carry a password
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    folder = Path(tempfile.mkdtemp(prefix="orders-live-embedded-pg-"))
    folder.chmod(0o755)
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


async def refused(url: str) -> str:
    """The server's refusal of a connection to ``url``, as text."""
    try:
        connection = await asyncpg.connect(url, timeout=10)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as refusal:
        return str(refusal)
    await connection.close()
    raise AssertionError(f"{url} was let in")


async def answers(url: str) -> bool:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return bool(await connection.fetchval("SELECT 1") == 1)
    finally:
        await connection.close()


async def assert_locked(server: EmbeddedPostgres, url: str) -> None:
    password = urlsplit(url).password
    assert password and len(password) >= 32
    assert await answers(url)
    port = server.port
    for stranger, refusal in [
        (f"postgresql://{USER}@127.0.0.1:{port}/orders_live", "password authentication failed"),  # was trust
        (f"postgresql://{USER}:wrong@127.0.0.1:{port}/orders_live", "password authentication failed"),
        (f"postgresql://postgres@127.0.0.1:{port}/postgres", "no pg_hba.conf entry"),  # another role
    ]:
        assert refusal in await refused(stranger), stranger
    kept = server.data_dir / PASSWORD_FILE
    assert kept.read_text().strip() == password
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    rules = [line.split() for line in (server.cluster / "pg_hba.conf").read_text().splitlines()]
    rules = [rule for rule in rules if rule and not rule[0].startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules), rules


async def test_the_embedded_postgresql_asks_for_a_random_password(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    url = await server.start()
    try:
        await assert_locked(server, url)
    finally:
        await server.stop()
    again = EmbeddedPostgres(data_dir)  # a restart keeps the password
    try:
        assert await again.start() == url.replace(f":{server.port}/", f":{again.port}/")
        await assert_locked(again, url.replace(f":{server.port}/", f":{again.port}/"))
    finally:
        await again.stop()


async def test_a_cluster_made_with_trust_is_given_a_password_at_its_next_start(data_dir: Path) -> None:
    """A data folder from before: initdb --auth=trust, no password file."""
    cluster = data_dir / "pg"
    cluster.mkdir(parents=True, mode=0o700)
    user = server_user()
    if user is not None:
        os.chown(cluster, user.pw_uid, user.pw_gid)
    initdb = [str(server_binaries() / "initdb"), "-D", str(cluster), "-U", USER, "--auth=trust", "--no-instructions"]
    made = await asyncio.create_subprocess_exec(*initdb, stdout=subprocess.DEVNULL, preexec_fn=become(user))
    assert await made.wait() == 0
    server = EmbeddedPostgres(data_dir)
    url = await server.start()
    try:
        await assert_locked(server, url)
    finally:
        await server.stop()
