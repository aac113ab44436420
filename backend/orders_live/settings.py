"""Configuration: one typed settings object, read from the environment. What only one database
is told is its sub-settings, ``mongo`` and ``postgres`` (``sources/options.py``), read with it
under their own names (``ORDERS_LIVE_IDLE_POLL_CAP``, ``ORDERS_LIVE_PG_POOL_SIZE``, …)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orders_live.identity.jwt_tokens import JwtRules
from orders_live.sources.options import MongoOptions, PostgresOptions


class Settings(BaseSettings):
    """Every setting, with its environment variable (``ORDERS_LIVE_`` + name, upper case)."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_LIVE_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "database_url", "DATABASE_URL", "ORDERS_LIVE_DATABASE_URL", "MONGO_URL", "ORDERS_LIVE_MONGO_URL"
        ),
        description=(
            "the database: mongodb://, mongodb+srv://, postgresql:// or memory://;"
            " unset: start the embedded database (embedded_database) under data_dir"
        ),
    )
    embedded_database: Literal["nx-27017", "postgres"] = Field(
        "nx-27017",
        description="which database to start under data_dir when database_url is unset",
    )
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=0, le=65535, description="port to listen on")
    data_dir: Path = Field(Path("data"), description="where the embedded database keeps its files")
    instance: str | None = Field(
        None, description="name under which this instance saves its resume position (default hostname:port)"
    )
    workers: int = Field(
        1,
        ge=1,
        description=(
            "processes serve runs, sharing its port (SO_REUSEPORT), each a full instance; auto: one per core."
            " Past 1, Engine.IO long-polling is refused (WebSocket only)"
        ),
    )
    worker: int | None = Field(
        None, ge=1, description="set by serve --workers in each worker: its number, part of its instance name"
    )
    history_size: int = Field(10_000, ge=1, description="recent changes kept in memory for catch-up")
    catch_up_rows: int = Field(
        10_000,
        ge=1,
        description=(
            "changes a catch-up may read back from the database's log, past memory; a client further behind"
            " gets too_far_behind (a resync)"
        ),
    )
    snapshot_page_orders: int = Field(
        1_000, ge=1, le=10_000, description="orders per snapshot page (snapshots, windows and resyncs are paged)"
    )
    snapshot_page_bytes: int = Field(
        512 * 1024,
        ge=16 * 1024,
        description="largest snapshot page, bytes: a page whose encoding is larger is split (no message exceeds it)",
    )
    queue_capacity: int = Field(
        1_000,
        ge=1,
        description=(
            "changes a client may fall behind before its changes are merged (conflated);"
            " past 10,000 merged orders it is resynced"
        ),
    )
    socket_send_buffer: int = Field(
        262_144, ge=0, description="kernel send buffer per client socket, bytes (0: the kernel's autotuning, up to MBs)"
    )
    sse_keepalive: float = Field(15.0, gt=0, description="seconds between keep-alive comments on an idle event stream")
    checkpoint_interval: float = Field(1.0, gt=0, description="seconds between saves of the resume position")
    max_body_bytes: int = Field(16_384, ge=256, description="largest accepted request body")
    database_timeout: float = Field(
        5.0, gt=0, description="seconds a request may wait on the database before it gets 503 database_unavailable"
    )
    http_idle_timeout: float = Field(
        15.0,
        gt=0,
        description="seconds an HTTP connection may sit without a complete request (headers that never end included)",
    )
    socketio_direct: bool = Field(
        True,
        description=(
            "write Socket.IO frames straight to each client's socket (false: the libraries' own path,"
            " also taken when the start-up check finds other library versions)"
        ),
    )
    frontend_dir: Path | None = Field(
        None, description="built dashboard to serve at / (default: frontend/dist next to the package)"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["text", "json"] = Field("text", description="text, or json (one object per line)")
    event_loop: Literal["asyncio", "uvloop"] = Field(
        "uvloop",
        description="the event loop of serve and demo: uvloop's (measured faster: docs/performance.md) or asyncio's",
    )
    freeze_heap: bool = Field(
        True,
        description=(
            "freeze the settled heap (gc.freeze) so that full collections walk only what is new: "
            "without it a full collection at 10,000 clients stops the loop for ~1 s (docs/performance.md)"
        ),
    )
    read_token: str | None = Field(
        None, description="when set (and no JWT option), required to connect and to read (REST, SSE, Socket.IO)"
    )
    write_token: str | None = Field(
        None, description="when set (and no JWT option), required to write; it also allows reading"
    )
    jwt_secret: str | None = Field(
        None,
        min_length=32,
        description="identities from JWTs signed with this HS256 secret (32 characters at least); shared tokens off",
    )
    jwt_public_keys: Path | None = Field(
        None,
        description=(
            "identities from JWTs verified with the public keys of this JWKS file (RS256, ES256, EdDSA, by kid),"
            " re-read when it changes; shared tokens off"
        ),
    )
    jwt_issuer: str | None = Field(None, description="when set, a JWT's iss must equal it")
    jwt_audience: str | None = Field(None, description="when set, a JWT's aud must hold it")
    jwt_role_claim: str = Field("role", min_length=1, description="the claim that holds the role")
    jwt_customer_claim: str = Field("customer", min_length=1, description="the claim that holds a customer's name")
    jwt_leeway: float = Field(0.0, ge=0, le=300, description="seconds of clock skew allowed on exp, nbf and iat")
    token_grace: float = Field(
        2.0, ge=0, le=5, description="seconds past a token's exp before a Socket.IO connection without a refresh ends"
    )
    revoked: Path | None = Field(
        None, description="a file of revoked JWT sub or jti values, one per line, re-read when it changes"
    )
    ticket_secret: str | None = Field(
        None,
        min_length=16,
        description=(
            "signs stream tickets, so that every instance accepts them (default: derived from jwt_secret,"
            " else from the shared tokens, else random per process)"
        ),
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="origins allowed cross-site (CORS and Socket.IO); empty: same origin only"
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Host header values accepted (name or name:port); empty: the bind address and localhost names;"
            " * accepts any (behind a proxy that sets Host). Other hosts get 421 before routing"
        ),
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description=(
            "proxies (addresses or networks) whose X-Forwarded-For names the client; every other peer's"
            " header is ignored. [] when no proxy runs on this machine"
        ),
    )
    remote_writes: bool = Field(
        False,
        description="with no tokens configured, accept writes from peers other than loopback (refused by default)",
    )
    metrics_token: str | None = Field(
        None,
        min_length=16,
        description=(
            "when set, /metrics and /readyz's details require it (Authorization: Bearer; else 401);"
            " unset: /metrics is open and /readyz's details go to loopback peers only"
        ),
    )
    auth_timeout: float = Field(
        5.0,
        gt=0,
        le=60,
        description="seconds a Socket.IO socket may stay open without an accepted connect before the server closes it",
    )
    max_connections: int = Field(
        10_000,
        ge=1,
        description="sockets at once: Socket.IO ones from their handshake (connected or not) and SSE streams",
    )
    max_connections_per_identity: int = Field(
        20, ge=1, description="Socket.IO and SSE connections one JWT identity (sub) may hold at once"
    )
    max_subscriptions: int = Field(
        20, ge=1, description="subscriptions one Socket.IO connection may hold, subscribes being answered included"
    )
    subscribe_rate: float = Field(
        5.0,
        gt=0,
        description="subscribe calls per second one JWT identity (sub), or else one connection, may make (burst 10)",
    )
    write_rate: float = Field(
        20.0, gt=0, description="REST writes per second one JWT identity (sub) may make (burst twice that)"
    )
    agent_actions_rate: float = Field(
        20.0,
        gt=0,
        description="records a second the agent action log takes, from all writers together (burst 2x); more: 429",
    )
    agent_actions_keep: int = Field(
        100_000, ge=1, description="records the agent action log keeps at most; its retention deletes older ones"
    )
    agent_actions_keep_days: float = Field(
        90.0, gt=0, description="days the agent action log keeps a record; its retention deletes older ones"
    )
    agent_actions_retention_interval: float = Field(
        60.0, gt=0, description="seconds between the agent action log's retention passes (the first at start)"
    )
    mongo: MongoOptions = Field(
        default_factory=MongoOptions, description="the MongoDB source's own settings (ORDERS_LIVE_ + name)"
    )
    postgres: PostgresOptions = Field(
        default_factory=PostgresOptions, description="the PostgreSQL source's own settings (ORDERS_LIVE_PG_ + name)"
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _one_per_core(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return os.cpu_count() or 1
        return value

    def jwt_rules(self) -> JwtRules:
        """What a JWT must carry besides its signature, as these settings say."""
        return JwtRules(
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            role_claim=self.jwt_role_claim,
            customer_claim=self.jwt_customer_claim,
            leeway=self.jwt_leeway,
        )

    def instance_name(self, bound_port: int) -> str:
        """The configured name, else this machine's host name and the bound port; a worker's
        with ``/worker-N`` after it (the workers share the port, never a checkpoint)."""
        name = self.instance or f"{socket.gethostname()}:{bound_port}"
        return name if self.worker is None else f"{name}/worker-{self.worker}"
