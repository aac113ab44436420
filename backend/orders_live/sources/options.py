"""What only one database is told: typed sub-settings of ``Settings`` (``settings.mongo``,
``settings.postgres``), each read from the environment under the names it always had
(``ORDERS_LIVE_`` + name for MongoDB's, ``ORDERS_LIVE_PG_`` + name for PostgreSQL's). The
service hands them to the source it opens and to the embedded database it starts; a source
made without them reads the same variables. No driver here: ``settings`` imports this."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MongoOptions(BaseSettings):
    """Settings only the MongoDB source has (``ORDERS_LIVE_`` + name, upper case)."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_LIVE_", extra="ignore")

    idle_poll_cap: float = Field(
        0.2, gt=0, description="longest pause between empty getMores against a server without awaitData (nx-27017)"
    )
    nx_await: bool = Field(
        True,
        description=(
            "the embedded nx-27017 gets MongoDB's awaitData from its launcher (sources/mongo/nx_await.py);"
            " false: it runs as it is"
        ),
    )


class PostgresOptions(BaseSettings):
    """Settings only the PostgreSQL source has (``ORDERS_LIVE_PG_`` + name, upper case)."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_LIVE_PG_", extra="ignore")

    pool_size: int = Field(10, ge=1, description="connections in the pool for reads and writes")
    poll_interval: float = Field(
        2.0, gt=0, description="seconds between re-reads of the change log when no notification comes"
    )
    log_keep_rows: int = Field(100_000, ge=1, description="changes the log keeps at least (retention by rows)")
    log_keep_seconds: float = Field(86_400.0, gt=0, description="seconds the log keeps a change at least")
    retention_interval: float = Field(10.0, gt=0, description="seconds between retention passes")
    retention_batch: int = Field(5_000, ge=1, description="commits removed per retention statement")
    changes: Literal["auto", "wal", "triggers"] = Field(
        "auto",
        description=(
            "the change feed: wal reads the write-ahead log (logical replication; writers pay nothing),"
            " triggers logs each write in the writer's transaction; auto: wal when the server has"
            " wal_level=logical and the role may replicate, else triggers"
        ),
    )
    slot_retained_limit: int = Field(
        1 << 30,
        ge=1,
        description="bytes of WAL the feed's replication slot may hold back before /readyz says so",
    )
    bin: Path | None = Field(
        None,
        description="the folder of initdb and postgres for the embedded server (else pg_config's, else Debian's)",
    )
