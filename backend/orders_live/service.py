"""The running service: database (embedded or not), hub, REST, Socket.IO, SSE, in start/stop order.

Every background task of the service runs under one ``Supervisor`` (``Service.tasks``): the
hub's, the embedded database's watchdog, the source's jobs (``Source.jobs``), the agent action
tail and retention, the sweeps, the pings, the probes. Each is named, restarted after a death,
counted in ``orders_live_task_deaths_total`` and shown on ``/readyz`` while it is down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import prometheus_client
from aiohttp import web

from orders_live.domain.source import Source
from orders_live.hub import Hub
from orders_live.identity.authenticator import Authenticator, IdentityOptions
from orders_live.identity.limits import IdentityLimits
from orders_live.identity.refusal_throttle import RefusalThrottle
from orders_live.process_limits import raise_open_files_limit
from orders_live.runtime.heap import SettledHeap
from orders_live.runtime.pauses import GcPauses, LoopLag
from orders_live.runtime.supervisor import Supervisor
from orders_live.settings import Settings
from orders_live.sources import source_from_url
from orders_live.sources.embedded_watchdog import TASK as WATCHDOG_TASK
from orders_live.sources.embedded_watchdog import EmbeddedWatchdog
from orders_live.sources.mongo.embedded import EmbeddedMongo
from orders_live.sources.postgres.embedded import EmbeddedPostgres
from orders_live.transports.access import AccessPolicy, ConnectionBudget
from orders_live.transports.http.access import access_middleware, cors_headers
from orders_live.transports.http.access_log import PathOnlyAccessLog
from orders_live.transports.http.action_retention import TASK as RETENTION_TASK
from orders_live.transports.http.action_retention import ActionRetention
from orders_live.transports.http.action_tail import TASK as TAIL_TASK
from orders_live.transports.http.action_tail import ActionTail
from orders_live.transports.http.agent_actions import AgentActionsApi
from orders_live.transports.http.engine_polling import engine_polling_refused
from orders_live.transports.http.errors import json_errors
from orders_live.transports.http.forwarded_for import TrustedProxies, forwarded_for
from orders_live.transports.http.host_guard import AllowedHosts, host_guard
from orders_live.transports.http.live_page import LivePage
from orders_live.transports.http.malformed_requests import quiet_malformed_requests
from orders_live.transports.http.observability import Observability
from orders_live.transports.http.polling import PollingApi
from orders_live.transports.http.readiness import DatabaseGuard
from orders_live.transports.http.rest import OrdersApi
from orders_live.transports.http.sse import EventStreams
from orders_live.transports.http.stream_tickets import StreamTicketsApi
from orders_live.transports.metrics import TransportMetrics
from orders_live.transports.sessions import Sessions
from orders_live.transports.socketio import SocketGateway
from orders_live.transports.socketio.library_errors import engine_requests_refused

log = logging.getLogger(__name__)

PACKAGE_FRONTEND = Path(__file__).resolve().parents[2] / "frontend" / "dist"
STOP_STEP = 10.0  # seconds each step of a stop may take
LISTEN_BACKLOG = 4096  # connections the kernel holds for accept (capped by net.core.somaxconn;
# aiohttp's 128 dropped SYNs in a connect storm: clients waited for their 1 s, 3 s, 7 s retries)
SLOW_STEP = 0.5  # a step that took this long is logged with its time


class Service:
    def __init__(self, settings: Settings, source: Source | None = None, routes: Sequence[web.RouteDef] = ()) -> None:
        """``source``: a database to use as it is (tests); else one from ``database_url``, or
        the embedded database (nx-27017, or PostgreSQL) when that is unset. ``routes``: more
        endpoints outside ``/api/`` (the demo's token endpoint)."""
        self.settings = settings
        self.extra_routes = list(routes)
        self.embedded: EmbeddedMongo | EmbeddedPostgres | None = None
        self.source: Source | None = source
        self.hub: Hub | None = None
        self.gateway: SocketGateway | None = None
        self.streams: EventStreams | None = None
        self.action_tail: ActionTail | None = None
        self.agent_actions: AgentActionsApi | None = None
        self.action_retention: ActionRetention | None = None
        self.runner: web.AppRunner | None = None
        self.authenticator: Authenticator | None = None
        self.registry = prometheus_client.CollectorRegistry()
        self.port: int = settings.port
        self.gc_pauses = GcPauses(self.registry)
        self.loop_lag = LoopLag(self.registry, self.gc_pauses)
        self.heap: SettledHeap | None = None
        self.tasks = Supervisor()  # every background task of the service

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    async def start(self) -> None:
        settings = self.settings
        raise_open_files_limit(settings.max_connections)
        quiet_malformed_requests()
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        if self.source is None:
            self.source = source_from_url(await self._database_url(), settings.mongo, settings.postgres)
        source = self.source
        try:
            await source.connection.open()  # before any write is taken (the hub retries if this fails)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("the database is not reachable yet (%s); writes will fail until it is", exc)
        policy = AccessPolicy(settings.allowed_origins, remote_writes=settings.remote_writes)
        hosts = AllowedHosts(settings.allowed_hosts, settings.host)
        self.authenticator = authenticator = Authenticator(identity_options(settings))
        limits = IdentityLimits(settings.max_connections_per_identity, settings.subscribe_rate, settings.write_rate)
        sessions = Sessions(authenticator, limits)
        budget = ConnectionBudget(settings.max_connections)
        metrics = TransportMetrics(self.registry)
        app = web.Application(
            middlewares=[
                host_guard(hosts),
                forwarded_for(TrustedProxies(settings.trusted_proxies)),
                json_errors,
                *([engine_polling_refused("/socket.io/")] if settings.worker is not None else []),  # serve --workers
                access_middleware(policy, authenticator, limits, RefusalThrottle("request")),
                engine_requests_refused("/socket.io/", lambda reason: metrics.refused_packets.labels(reason).inc()),
            ],
            client_max_size=settings.max_body_bytes,
        )
        app.on_response_prepare.append(cors_headers(policy))
        self.runner = web.AppRunner(
            app,
            handle_signals=False,
            shutdown_timeout=1.0,
            access_log_class=PathOnlyAccessLog,
            keepalive_timeout=settings.http_idle_timeout,  # also ends requests whose headers never finish
        )
        # The instance name defaults to hostname:port; with port 0 it is known only once bound.
        self.hub = hub = Hub(
            source,
            instance="pending",
            history_size=settings.history_size,
            catch_up_rows=settings.catch_up_rows,
            catch_up_timeout=settings.database_timeout,
            checkpoint_interval=settings.checkpoint_interval,
            registry=self.registry,
            page_orders=settings.snapshot_page_orders,
            tasks=self.tasks,
        )
        self.gateway = gateway = SocketGateway(
            hub,
            metrics,
            queue_capacity=settings.queue_capacity,
            socket_send_buffer=settings.socket_send_buffer,
            direct=settings.socketio_direct,
            policy=policy,
            budget=budget,
            max_subscriptions=settings.max_subscriptions,
            subscribe_rate=settings.subscribe_rate,
            page_bytes=settings.snapshot_page_bytes,
            sessions=sessions,
            token_grace=settings.token_grace,
            auth_timeout=settings.auth_timeout,
            max_http_buffer_size=settings.max_body_bytes,
        )
        gateway.attach(app)
        database = DatabaseGuard(settings.database_timeout)
        app.add_routes(OrdersApi(hub, source.store, database).routes())
        self.streams = streams = EventStreams(
            hub,
            metrics,
            queue_capacity=settings.queue_capacity,
            keepalive=settings.sse_keepalive,
            socket_send_buffer=settings.socket_send_buffer,
            budget=budget,
            page_bytes=settings.snapshot_page_bytes,
            sessions=sessions,
        )
        app.add_routes(streams.routes())
        app.add_routes(StreamTicketsApi(authenticator).routes())
        app.add_routes(PollingApi(hub, database).routes())
        self.action_tail = action_tail = ActionTail(source.actions)
        self.agent_actions = agent_actions = AgentActionsApi(
            source.actions,
            action_tail,
            database,
            metrics,
            hub.owner_of,
            budget=budget,
            keepalive=settings.sse_keepalive,
            sessions=sessions,
            rate=settings.agent_actions_rate,
        )
        app.add_routes(agent_actions.routes())
        self.action_retention = ActionRetention(
            source.actions,
            settings.agent_actions_keep,
            settings.agent_actions_keep_days * 86_400,
            metrics.agent_actions_trimmed,
            settings.agent_actions_retention_interval,
        )
        observability = Observability(
            hub,
            source.connection,
            self.registry,
            lambda: {"socketio": len(gateway.connection_per_sid), "sse": streams.streams + agent_actions.streams},
            lambda: authenticator.problems + source.health.problems(),
            metrics_token=settings.metrics_token,
            worker=settings.worker,
        )
        app.add_routes(observability.routes())
        app.add_routes(LivePage().routes())
        app.add_routes(self.extra_routes)
        self._add_frontend(app)
        await self.runner.setup()
        # A worker of serve --workers shares its port with the others (the kernel spreads connections).
        site = web.TCPSite(
            self.runner, settings.host, settings.port, backlog=LISTEN_BACKLOG, reuse_port=settings.worker is not None
        )
        await site.start()
        self.port = int(self.runner.addresses[0][1])
        hub.instance = settings.instance_name(self.port)
        tasks = self.tasks
        if self.embedded is not None:  # started again if it dies
            tasks.start(WATCHDOG_TASK, EmbeddedWatchdog(self.embedded, settings.embedded_database).run)
        for metric, (text, read) in source.health.gauges.items():
            prometheus_client.Gauge(metric, text, registry=self.registry).set_function(read)
        for name, job in source.jobs.items():  # the database's own work (listening, retention)
            tasks.start(name, job)
        await hub.start()
        self.gc_pauses.install()
        tasks.start("loop.lag", self.loop_lag.run)
        if settings.freeze_heap:
            self.heap = SettledHeap(lambda: gateway.ended, lambda: len(gateway.connection_per_sid))
            tasks.start("heap.settle", self.heap.run)
        if gateway.engine.pings is not None:
            tasks.start("socketio.pings", gateway.engine.pings.run)
        tasks.start("identity.files", authenticator.watch)  # the JWKS and revocation files
        tasks.start("sse.sweep", streams.open.sweep)  # streams whose client left
        tasks.start("agent_actions.sweep", agent_actions.open.sweep)
        tasks.start(RETENTION_TASK, self.action_retention.run)
        tasks.start(TAIL_TASK, action_tail.run)
        log.info("orders-live listening on %s (instance %s), answering %s", self.url, hub.instance, hosts.describe())

    async def _database_url(self) -> str:
        if self.settings.database_url:
            log.info("using the database at DATABASE_URL (nothing embedded started)")
            return self.settings.database_url
        self.embedded = embedded_database(self.settings)
        return await self.embedded.start()

    def _add_frontend(self, app: web.Application) -> None:
        folder = self.settings.frontend_dir or PACKAGE_FRONTEND
        index = folder / "index.html"
        if not index.is_file():
            log.info("no built dashboard at %s: serving the API only", folder)
            return

        async def dashboard(_: web.Request) -> web.FileResponse:
            return web.FileResponse(index)

        app.router.add_get("/", dashboard)
        if (folder / "assets").is_dir():
            app.router.add_static("/assets", folder / "assets")

    async def stop(self) -> None:
        """Stop accepting, stop the writers and end the event streams, save the position, stop
        every background task, close the database, then stop the embedded server (closing a
        client against a stopped server hangs). Every step runs whatever the one before it
        raised, and each is bounded (``STOP_STEP``): one that fails or overruns is logged by
        name, in one line, and the next one runs, so that a stop always ends. A cancellation
        of the caller leaves at once."""
        if self.runner is not None:
            for site in list(self.runner.sites):
                await _step("stop listening", site.stop)
        if self.gateway is not None:
            await _step("close the Socket.IO clients", self.gateway.close)
        if self.streams is not None:
            await _step("end the event streams", self.streams.close)
        if self.agent_actions is not None:
            await _step("end the agent action streams", self.agent_actions.close)
        if self.hub is not None:
            await _step("stop the hub and save the position", self.hub.stop)
        await _step("stop the background tasks", self.tasks.stop)
        if self.runner is not None:
            await _step("close the HTTP server", self.runner.cleanup)
        if self.source is not None:
            await _step("close the database client", self.source.connection.close)
        if self.embedded is not None:
            await _step("stop the embedded database", self.embedded.stop, within=2 * STOP_STEP)
        self.gc_pauses.remove()
        if self.heap is not None:
            self.heap.release()


def embedded_database(settings: Settings) -> EmbeddedMongo | EmbeddedPostgres:
    """The embedded database ``settings`` ask for (not started), under ``data_dir``."""
    if settings.embedded_database == "postgres":
        return EmbeddedPostgres(settings.data_dir, options=settings.postgres)
    return EmbeddedMongo(settings.data_dir, options=settings.mongo)


def identity_options(settings: Settings) -> IdentityOptions:
    return IdentityOptions(
        read_token=settings.read_token,
        write_token=settings.write_token,
        jwt_secret=settings.jwt_secret,
        jwt_public_keys=settings.jwt_public_keys,
        rules=settings.jwt_rules(),
        revoked=settings.revoked,
        ticket_secret=settings.ticket_secret,
    )


async def _step(step: str, work: Callable[[], Awaitable[None]], within: float | None = None) -> None:
    """One step of a stop: bounded in time; a failure is logged in one line (no traceback)
    and swallowed, so that the next step runs. The caller's own cancellation propagates."""
    within = STOP_STEP if within is None else within
    started = time.monotonic()
    bound = asyncio.timeout(within)
    try:
        async with bound:
            await work()
    except TimeoutError as exc:
        if bound.expired():
            log.warning("stopping: %s took over %.0f s; going on without it", step, within)
        else:
            log.warning("stopping: %s failed (%s: %s); going on", step, type(exc).__name__, exc)
        return
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("stopping: %s failed (%s: %s); going on", step, type(exc).__name__, exc)
        return
    took = time.monotonic() - started
    if took >= SLOW_STEP:
        log.info("stopping: %s took %.1f s", step, took)
