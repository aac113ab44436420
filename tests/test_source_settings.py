"""One settings model: what only one database is told (``MongoOptions``, ``PostgresOptions``)
are typed sub-settings of ``Settings`` (``settings.mongo``, ``settings.postgres``), read under the
environment names they always had, and they reach the source the service opens. No module of
the service reads the environment but through them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import orders_live
from conftest import running_service, settings_for
from orders_live.service import embedded_database
from orders_live.settings import Settings
from orders_live.sources.mongo.embedded import EmbeddedMongo
from orders_live.sources.mongo.nx_await import await_data_wanted
from orders_live.sources.options import MongoOptions, PostgresOptions
from orders_live.sources.postgres.connection import PostgresConnection
from orders_live.sources.postgres.embedded import EmbeddedPostgres, server_binaries

SERVICE_LAYERS = ("service.py", "settings.py", "transports", "hub", "sources", "identity", "domain", "runtime")


@pytest.mark.fast
def test_each_source_s_options_are_read_with_the_settings_under_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_LIVE_PG_POOL_SIZE", "3")
    monkeypatch.setenv("ORDERS_LIVE_PG_BIN", "/opt/pg/bin")
    monkeypatch.setenv("ORDERS_LIVE_IDLE_POLL_CAP", "0.5")
    monkeypatch.setenv("ORDERS_LIVE_NX_AWAIT", "false")
    settings = Settings()
    assert (settings.postgres.pool_size, settings.postgres.bin) == (3, Path("/opt/pg/bin"))
    assert (settings.mongo.idle_poll_cap, settings.mongo.nx_await) == (0.5, False)
    given = Settings(postgres=PostgresOptions(poll_interval=0.5), mongo=MongoOptions(idle_poll_cap=0.1))
    assert (given.postgres.poll_interval, given.postgres.pool_size, given.mongo.idle_poll_cap) == (0.5, 3, 0.1)


@pytest.mark.fast
def test_the_server_binaries_are_the_configured_folder(tmp_path: Path) -> None:
    for name in ("initdb", "postgres"):
        (tmp_path / name).write_text("#!/bin/sh\n")
    assert server_binaries(PostgresOptions(bin=tmp_path)) == tmp_path


@pytest.mark.fast
def test_the_service_reads_the_environment_only_through_its_settings() -> None:
    root = Path(orders_live.__file__).parent
    raw = re.compile(r"os\.environ|os\.getenv|getenv\(")
    files = [
        f for part in SERVICE_LAYERS for f in ([root / part] if part.endswith(".py") else (root / part).rglob("*.py"))
    ]
    assert len(files) > 50
    readers = [str(f.relative_to(root)) for f in files if raw.search(f.read_text())]
    assert readers == []


@pytest.mark.database
async def test_the_postgres_options_given_to_the_settings_reach_the_source(postgres_url: str) -> None:
    settings = settings_for(postgres_url, postgres=PostgresOptions(pool_size=3, poll_interval=0.5))
    async with running_service(settings) as service:
        connection = service.source.connection
        assert isinstance(connection, PostgresConnection)
        assert (connection.options.pool_size, connection.options.poll_interval) == (3, 0.5)
        assert connection.pool is not None and connection.pool.get_max_size() == 3


@pytest.mark.fast
def test_the_embedded_database_gets_its_source_s_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, mongo=MongoOptions(nx_await=False), postgres=PostgresOptions(bin=tmp_path))
    mongo = embedded_database(settings)
    assert isinstance(mongo, EmbeddedMongo) and mongo.options.nx_await is False
    postgres = embedded_database(settings.model_copy(update={"embedded_database": "postgres"}))
    assert isinstance(postgres, EmbeddedPostgres) and postgres.options == settings.postgres


@pytest.mark.database
async def test_the_launcher_takes_await_data_from_the_settings_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_LIVE_NX_AWAIT", "true")  # the service's settings say otherwise, and win
    server = EmbeddedMongo(tmp_path / "nx", options=MongoOptions(nx_await=False))
    await server.start()
    try:
        assert server.mode == "plain: switched off (ORDERS_LIVE_NX_AWAIT=false)"
    finally:
        await server.stop()


@pytest.mark.fast
def test_the_launcher_s_own_argument_is_taken_out_before_nx_27017_reads_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = ["nx_await", "--await-data", "false", "--port", "27017"]
    assert await_data_wanted(argv) is False
    assert argv == ["nx_await", "--port", "27017"]
    monkeypatch.setenv("ORDERS_LIVE_NX_AWAIT", "false")  # without the argument: the environment's
    assert await_data_wanted(argv) is False
    monkeypatch.delenv("ORDERS_LIVE_NX_AWAIT")
    assert await_data_wanted(argv) is True
